"""One episode as a Rerun recording (.rrd): what the cameras saw, what perception found, where the
gripper went, and what the planner, the shield and the skills did, on one timeline.

`RerunRecorder` watches an episode (an EpisodeRecorder and a PerceptionRecorder, fmrobot/interfaces.py)
and keeps what only the running episode shows: the frames each perception was given with the scene
made from them, and the end-effector at every control step. `save` then lays these out with the
episode's trace events and writes the file; rerun-sdk is imported only there. `rerun <file>` opens it.

Timelines: `step` (the control step) and `sim_time` (simulated seconds). Entities:

    world/cameras/<camera>                    the camera's pose in the world (Transform3D)
    world/cameras/<camera>/image              each perception's frame, with the camera model (Pinhole)
    world/cameras/<camera>/image/detections   perception's 2-D boxes, labelled "label score"
    world/objects                             the perceived objects as 3-D boxes in the world frame
    world/robot/ee, world/robot/ee_path       the end effector at each control step, and its path so far
    world/robot/target                        the position each action commanded
    robot/gripper_width                       metres between the fingers
    video                                     the episode's video frames (only an episode that records video)
    planner/decision                          the latest planner decision, in full (TextDocument)
    log/episode, log/perception, log/planner, log/help, log/shield, log/skills     the trace as text logs

No frame is rendered for the recording: it holds the frames the perceptor was given (none for a
perceptor that reads no images) and the video the episode recorded anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmrobot.trace import (
    CrashEvent,
    DecisionEvent,
    FaultEvent,
    HelpEvent,
    HomeEvent,
    PerceptionEvent,
    PlanningErrorEvent,
    ResetEvent,
    ResultEvent,
    SafetyEvent,
    SimulationErrorEvent,
    SkillEvent,
    TraceEvent,
)
from fmrobot.types import (
    Action,
    CameraFrame,
    EpisodeResult,
    EpisodeSpec,
    Observation,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
)

STEP, SECONDS = "step", "sim_time"
JPEG_QUALITY = 90  # camera frames are stored as JPEG: a tenth of the raw size, and they look the same
#: Box colours, by the label's place in the task's vocabulary, so one object keeps its colour.
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40), (128, 128, 0))
#: Text log levels (Rerun's names).
INFO, WARN, ERROR, CRITICAL = "INFO", "WARN", "ERROR", "CRITICAL"


@dataclass(frozen=True)
class Look:
    """One perception: the observation's step, the frames it held, and the scene perceived from them."""

    step: int
    frames: tuple[CameraFrame, ...]
    scene: SceneDescription


@dataclass(frozen=True)
class Pose:
    """The end effector at one control step, and the position the action applied in it aimed for."""

    position: tuple[float, float, float]
    gripper_width: float
    target: tuple[float, float, float] | None = None


class RerunRecorder:
    """Watches one episode for its Rerun recording; `save` writes it."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.spec: EpisodeSpec | None = None
        self.dt = 0.0  # simulated seconds per control step
        self.start_step = 0
        self.looks: list[Look] = []
        self.poses: dict[int, Pose] = {}  # control step -> the end effector then
        self.skill_ends: list[int] = []  # the step each skill call (planned or not) ended at, in order

    # ------------------------------------------------------------------ watching (EpisodeRecorder)

    def begin(self, episode: EpisodeSpec, obs: Observation) -> None:
        self._clear()
        self.spec, self.dt, self.start_step = episode, obs.dt, obs.step
        self._pose(obs)

    def perceived(self, obs: Observation, scene: SceneDescription) -> None:
        self.looks.append(Look(step=obs.step, frames=obs.frames, scene=scene))
        self._pose(obs)

    def skill_started(self, call: SkillCall, spec: SkillSpec, scene: SceneDescription, obs: Observation) -> None:
        pass  # the trace's skill events say what each call did

    def step(self, obs: Observation, action: Action) -> None:
        self._pose(obs, target=action.ee_position)

    def skill_ended(self, call: SkillCall, obs: Observation, status: SkillStatus) -> None:
        self.skill_ends.append(obs.step)
        self._pose(obs)

    def end(self, result: EpisodeResult) -> None:
        pass  # the trace's result event says how it ended

    def _pose(self, obs: Observation, target: Sequence[float] | None = None) -> None:
        known = self.poses.get(obs.step)
        aim = tuple(target) if target is not None else known.target if known is not None else None
        self.poses[obs.step] = Pose(position=tuple(obs.robot.ee_pose.position),
                                    gripper_width=float(obs.robot.gripper_width), target=aim)

    # ------------------------------------------------------------------ writing

    def event_steps(self, events: Sequence[TraceEvent]) -> list[int]:
        """The control step each trace event happened at. Events carry no step, but their order does:
        the k-th perception event is the k-th perception seen here, the k-th skill (or home) event the
        k-th skill call that ended, and the events between happened where the last of those left off."""
        looks, ends = iter(self.looks), iter(self.skill_ends)
        step, steps = self.start_step, []
        for event in events:
            if isinstance(event, PerceptionEvent):
                look = next(looks, None)
                step = look.step if look is not None else step
            elif isinstance(event, (SkillEvent, HomeEvent)):
                step = next(ends, step)
            elif isinstance(event, (ResultEvent, CrashEvent)) and self.poses:
                step = max(step, max(self.poses))
            steps.append(event.step if isinstance(event, FaultEvent) and event.step is not None else step)
        return steps

    def save(self, path: str | Path, events: Sequence[TraceEvent], video: Sequence[np.ndarray] = (),
             video_steps: Sequence[int] = ()) -> Path:
        """Write the episode's recording to `path` (.rrd): what was watched, the trace `events`, and the
        video frames (`video_steps`: the control step of each) if the episode recorded one."""
        import rerun as rr  # heavy (a 170 MB wheel with its own runtime): only when a recording is asked for

        if len(video) != len(video_steps):
            raise ValueError(f"{len(video)} video frames but {len(video_steps)} frame steps")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = rr.RecordingStream("fmrobot")
        stream.save(path)
        stream.set_log_time_enabled(False)  # written after the episode: wall-clock time would say nothing
        try:
            _Writer(rr, stream, self).write(events, video, video_steps)
        finally:
            stream.disconnect()  # flushes and closes the file
        return path


class _Writer:
    """Logs one watched episode into a recording stream."""

    def __init__(self, rr: Any, stream: Any, recorder: RerunRecorder):
        self.rr, self.stream, self.recorder = rr, stream, recorder
        spec = recorder.spec
        self.vocabulary = list(spec.task.vocabulary) if spec is not None else []

    def at(self, step: int) -> None:
        self.stream.set_time(STEP, sequence=step)
        self.stream.set_time(SECONDS, duration=step * self.recorder.dt)

    def text(self, entity: str, text: str, level: str = INFO) -> None:
        self.stream.log(entity, self.rr.TextLog(text, level=level))

    def write(self, events: Sequence[TraceEvent], video: Sequence[np.ndarray], video_steps: Sequence[int]) -> None:
        rr, recorder = self.rr, self.recorder
        self.stream.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)  # the simulator's world is z up
        if recorder.spec is not None:
            self.stream.send_recording_name(f"{recorder.spec.task.name} seed {recorder.spec.seed}")
        self.robot()
        for look in recorder.looks:
            self.at(look.step)
            self.look(look)
        for frame, step in zip(video, video_steps):
            self.at(step)
            self.stream.log("video", rr.Image(np.ascontiguousarray(frame)).compress(jpeg_quality=JPEG_QUALITY))
        for event, step in zip(events, recorder.event_steps(events)):
            self.at(step)
            self.event(event)

    def times(self, steps: Sequence[int]) -> list[Any]:
        steps = np.asarray(steps, dtype=np.int64)
        seconds = steps * self.recorder.dt
        return [self.rr.TimeColumn(STEP, sequence=steps), self.rr.TimeColumn(SECONDS, duration=seconds)]

    def robot(self) -> None:
        """The end effector, one row per control step; sent as columns (one call per stream, not per step)."""
        rr, poses = self.rr, self.recorder.poses
        steps = sorted(poses)
        if not steps:
            return
        positions = np.asarray([poses[s].position for s in steps], dtype=float)
        ones = np.ones(len(steps))
        self.stream.send_columns("world/robot/ee", indexes=self.times(steps),
                                 columns=rr.Points3D.columns(positions=positions, radii=0.01 * ones))
        self.stream.send_columns("world/robot/ee_path", indexes=self.times(steps), columns=rr.LineStrips3D.columns(
            strips=[positions[:i + 1] for i in range(len(steps))], radii=0.003 * ones))
        self.stream.send_columns("robot/gripper_width", indexes=self.times(steps),
                                 columns=rr.Scalars.columns(scalars=[poses[s].gripper_width for s in steps]))
        aimed = [s for s in steps if poses[s].target is not None]
        if aimed:
            self.stream.send_columns("world/robot/target", indexes=self.times(aimed), columns=rr.Points3D.columns(
                positions=np.asarray([poses[s].target for s in aimed], dtype=float), radii=0.006 * np.ones(len(aimed))))

    def color(self, label: str) -> tuple[int, int, int]:
        index = self.vocabulary.index(label) if label in self.vocabulary else len(self.vocabulary)
        return PALETTE[index % len(PALETTE)]

    def look(self, look: Look) -> None:
        rr, objects = self.rr, look.scene.objects
        for frame in look.frames:
            camera = f"world/cameras/{frame.name}"
            pose, model = frame.extrinsics, frame.intrinsics
            self.stream.log(camera, rr.Transform3D(translation=pose.position,
                                                   quaternion=rr.Quaternion(xyzw=pose.orientation)))
            self.stream.log(f"{camera}/image", rr.Pinhole(image_from_camera=model.matrix(), width=model.width,
                                                          height=model.height, camera_xyz=rr.ViewCoordinates.RDF))
            self.stream.log(f"{camera}/image", rr.Image(np.ascontiguousarray(frame.rgb)).compress(
                jpeg_quality=JPEG_QUALITY))
            seen = [o for o in objects if o.box_2d is not None and (o.camera is None or o.camera == frame.name)]
            self.stream.log(f"{camera}/image/detections", rr.Boxes2D(
                array=np.asarray([o.box_2d for o in seen], dtype=float).reshape(-1, 4),
                array_format=rr.Box2DFormat.XYXY, labels=[f"{o.label} {o.score:.2f}" for o in seen],
                colors=[self.color(o.label) for o in seen]))
        self.stream.log("world/objects", rr.Boxes3D(
            centers=np.asarray([o.position for o in objects], dtype=float).reshape(-1, 3),
            half_sizes=0.5 * np.asarray([o.extent for o in objects], dtype=float).reshape(-1, 3),
            rotation_axis_angles=[rr.RotationAxisAngle(axis=(0.0, 0.0, 1.0), radians=o.yaw or 0.0) for o in objects],
            labels=[f"{o.label} {o.score:.2f}" for o in objects], colors=[self.color(o.label) for o in objects]))

    def event(self, event: TraceEvent) -> None:
        if isinstance(event, ResetEvent):
            self.text("log/episode", f"{event.task} seed {event.seed}: {event.instruction!r}")
        elif isinstance(event, PerceptionEvent):
            seen = ", ".join(f"{o.label} {o.score:.2f} at ({o.position[0]:.3f}, {o.position[1]:.3f}, "
                             f"{o.position[2]:.3f})" for o in event.scene.objects)
            self.text("log/perception", f"{event.scene.source or 'perception'}: {seen or 'nothing seen'}",
                      INFO if event.scene.objects else WARN)
        elif isinstance(event, DecisionEvent):
            self.decision(event)
        elif isinstance(event, HelpEvent):
            options = "; ".join(f"{i}) {o}" for i, o in enumerate(event.options))
            self.text("log/help", f"asked: {event.question} [{options}]; answer: {event.answer}",
                      INFO if event.answer is not None else WARN)
        elif isinstance(event, SafetyEvent):
            verdict = event.verdict
            found = "; ".join(f"{v.rule}{' (repaired)' if v.repaired else ''}: {v.reason}" for v in verdict.violations)
            if verdict.allowed:
                self.text("log/shield", f"plan allowed{': ' + found if found else ''}")
            else:
                self.text("log/shield", f"plan refused: {found or 'no reason given'}", WARN)
        elif isinstance(event, (SkillEvent, HomeEvent)):
            what = "home (out of the cameras' view)" if isinstance(event, HomeEvent) else str(event.call)
            failed = event.status is SkillStatus.FAILURE
            self.text("log/skills", f"{what}: {event.status.value} after {event.env_steps} steps"
                      f"{': ' + event.reason if event.reason else ''}", ERROR if failed else INFO)
        elif isinstance(event, PlanningErrorEvent):
            self.text("log/planner", f"{event.type}: {event.error}" + (" (asking again)" if event.replanning else ""),
                      WARN if event.replanning else ERROR)
        elif isinstance(event, SimulationErrorEvent):
            self.text("log/episode", f"physics: {event.error}", ERROR)
        elif isinstance(event, FaultEvent):
            self.text("log/episode", f"injected fault {event.fault}: {event.effect}", WARN)
        elif isinstance(event, ResultEvent):
            self.result(event)
        elif isinstance(event, CrashEvent):
            self.text("log/episode", f"crashed: {event.error}", CRITICAL)
        else:  # an event kind newer than this writer: its trace line, as it is
            self.text(f"log/{event.event}", json.dumps(event.to_json(), sort_keys=True))

    def decision(self, event: DecisionEvent) -> None:
        record = event.decision
        steps = " -> ".join(record.plan) if record.plan else "(no plan)"
        final = " (final)" if record.final else ""
        asks = f"; asks for help: {record.help.question}" if record.help is not None else ""
        self.text("log/planner", f"{steps}{final}, confidence {record.confidence:.2f}; {record.rationale}{asks}")
        lines = ["### Plan", *(f"{i + 1}. `{s}`" for i, s in enumerate(record.plan or []))]
        if not record.plan:
            lines.append("(none)")
        lines += ["", f"final: {record.final}, confidence: {record.confidence:.2f}", "", "### Rationale", "",
                  record.rationale or "(none)"]
        if record.help is not None:
            lines += ["", "### Help request", "", record.help.question,
                      *(f"- {i}: {o}" for i, o in enumerate(record.help.options))]
        self.stream.log("planner/decision", self.rr.TextDocument("\n".join(lines), media_type="text/markdown"))

    def result(self, event: ResultEvent) -> None:
        for refusal in event.safety.refusals:
            self.text("log/shield", f"refused: {refusal.rule}: {refusal.reason}", WARN)
        if event.safety.repairs:
            self.text("log/shield", "repaired actions: " + ", ".join(f"{rule} x{n}" for rule, n in
                                                                     event.safety.repairs.items()))
        unmet = [name for name, ok in event.predicates.items() if not ok]
        if event.success:
            self.text("log/episode", "success")
        else:
            self.text("log/episode", f"failed: {event.failure or 'no reason given'}"
                      f"{' (unmet: ' + ', '.join(unmet) + ')' if unmet else ''}", ERROR)
