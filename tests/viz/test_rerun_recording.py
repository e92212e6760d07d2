"""Rerun recordings of episodes: every stream is in the .rrd, read back with the Rerun SDK, at its step."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.execution import RunJob, run_one
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.planning.oracle import OraclePlanner
from fmrobot.runner import Runner
from fmrobot.safety.basic import BasicShield
from fmrobot.trace import (
    DecisionEvent,
    DecisionRecord,
    HelpEvent,
    HomeEvent,
    PerceptionEvent,
    ResetEvent,
    ResultEvent,
    SafetyEvent,
    SkillEvent,
)
from fmrobot.types import (
    Action,
    CameraFrame,
    CameraIntrinsics,
    DetectedObject,
    EpisodeSpec,
    HelpRequest,
    Observation,
    Plan,
    Pose,
    RobotState,
    SafetyReport,
    SafetyVerdict,
    SafetyViolation,
    SceneDescription,
    SkillCall,
    SkillStatus,
    TaskSpec,
)
from fmrobot.viz.rerun_recording import RerunRecorder
from tests.fakes import BrokenPolicy, FlakyPolicy

#: What every recording of an episode that perceived, planned and moved holds.
STREAMS = ("/world/cameras/front", "/world/cameras/front/image", "/world/cameras/front/image/detections",
           "/world/objects", "/world/robot/ee", "/world/robot/ee_path", "/world/robot/target", "/robot/gripper_width",
           "/planner/decision", "/log/episode", "/log/perception", "/log/planner", "/log/shield", "/log/skills")


def read_back(path: Path) -> dict[str, dict[str, list[Any]]]:
    """entity path -> column -> values (one per logged row), read with the Rerun SDK."""
    from rerun.chunk import RrdReader

    entities: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for chunk in RrdReader(path).store().stream().to_chunks():
        batch = chunk.to_record_batch()
        for name in batch.schema.names:
            entities[chunk.entity_path][name].extend(batch.column(name).to_pylist())
    return entities


def texts(entity: dict[str, list[Any]]) -> list[tuple[int, str, str]]:
    """(step, level, text) of each row of a text log."""
    return [(step, level[0], text[0]) for step, level, text in
            zip(entity["step"], entity["TextLog:level"], entity["TextLog:text"]) if text is not None]


# --------------------------------------------------------------------------- a synthetic episode (fast)


def observation(step: int, frames: tuple[CameraFrame, ...] = ()) -> Observation:
    robot = RobotState(joint_positions=np.zeros(7), joint_velocities=np.zeros(7),
                       ee_pose=Pose(position=(0.4 + 0.01 * step, 0.0, 0.9)), gripper_width=0.08 - 0.001 * step,
                       gripper_max_width=0.08)
    return Observation(step=step, time=step * 0.05, dt=0.05, robot=robot, frames=frames)


def camera_frame() -> CameraFrame:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[10:20, 30:40] = (200, 30, 30)
    return CameraFrame(name="front", rgb=rgb, depth=np.ones((48, 64), np.float32),
                       intrinsics=CameraIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0),
                       extrinsics=Pose(position=(1.0, 0.0, 1.5), orientation=(0.0, 0.0, 0.0, 1.0)))


def test_a_watched_episode_is_written_with_every_stream_at_the_step_it_happened(tmp_path):
    block = DetectedObject(label="red block", score=0.9, position=(0.5, 0.1, 0.65), extent=(0.04, 0.04, 0.04),
                           yaw=0.3, box_2d=(30.0, 10.0, 40.0, 20.0), camera="front")
    scene = SceneDescription(objects=(block,), source="oracle")
    pick = SkillCall(skill="pick", args={"object": "red block"})
    asked = HelpRequest(question="which block?", options=("the red block", "none of these"))
    recorder = RerunRecorder()
    task = TaskSpec(name="pick_place", description="", skills=("pick", "place"), templates=(),
                    vocabulary=("red block", "blue bowl"))
    recorder.begin(EpisodeSpec(task=task, seed=3, instruction="pick up the red block", oracle_plan=Plan(steps=())),
                   observation(0))
    recorder.perceived(observation(0, (camera_frame(),)), scene)
    recorder.perceived(observation(0, (camera_frame(),)), scene)  # a fresh look after the shield refused
    for step in range(10):
        recorder.step(observation(step), Action(ee_position=(0.5, 0.1, 0.7)))
    recorder.skill_ended(pick, observation(10), SkillStatus.FAILURE)
    recorder.skill_ended(SkillCall(skill="home"), observation(10), SkillStatus.SUCCESS)
    failure = "gave up after 1 replans; last failure: the grasp slipped"
    events = [
        ResetEvent(task="pick_place", seed=3, instruction="pick up the red block", given_instruction=False,
                   judged_by="task", goal={}),
        PerceptionEvent(scene=scene),
        DecisionEvent(decision=DecisionRecord(plan=[str(pick)], final=True, help=None, confidence=0.8,
                                              rationale="scores: pick red block -1.2, pick blue block -3.4")),
        SafetyEvent(verdict=SafetyVerdict(allowed=False, plan=None, violations=(
            SafetyViolation(rule="workspace", step_index=0, reason="red block is out of reach"),))),
        PerceptionEvent(scene=scene),
        DecisionEvent(decision=DecisionRecord(plan=None, final=None, help=asked, confidence=0.4, rationale="unsure")),
        HelpEvent(question="which block?", options=list(asked.options), answer="the red block"),
        SafetyEvent(verdict=SafetyVerdict(allowed=True, plan=None)),
        SkillEvent(step_index=0, call=pick, status=SkillStatus.FAILURE, reason="the grasp slipped", env_steps=10),
        HomeEvent(step_index=-1, call=SkillCall(skill="home"), status=SkillStatus.SUCCESS),
        ResultEvent(success=False, predicates={"success": False, "block_lifted": False}, failure=failure,
                    safety=SafetyReport()),
    ]
    assert recorder.event_steps(events) == [0] * 8 + [10] * 3

    path = recorder.save(tmp_path / "rerun" / "episode.rrd", events)
    recording = read_back(path)

    shield = texts(recording["/log/shield"])
    assert shield[0] == (0, "WARN", "plan refused: workspace: red block is out of reach") and shield[1][1] == "INFO"
    assert texts(recording["/log/skills"]) == [
        (10, "ERROR", "pick(object='red block'): failure after 10 steps: the grasp slipped"),
        (10, "INFO", "home (out of the cameras' view): success after 0 steps")]
    assert texts(recording["/log/episode"])[-1] == (10, "ERROR", f"failed: {failure} (unmet: success, block_lifted)")
    assert "scores: pick red block -1.2" in texts(recording["/log/planner"])[0][2]
    assert texts(recording["/log/help"]) == [
        (0, "INFO", "asked: which block? [0) the red block; 1) none of these]; answer: the red block")]
    decisions = recording["/planner/decision"]["TextDocument:text"]
    assert len(decisions) == 2 and "pick(object='red block')" in decisions[0][0] and "which block?" in decisions[1][0]
    detections = recording["/world/cameras/front/image/detections"]
    assert detections["Boxes2D:labels"] == [["red block 0.90"]] * 2
    assert detections["Boxes2D:centers"][0] == [[35.0, 15.0]] and detections["Boxes2D:half_sizes"][0] == [[5.0, 5.0]]
    boxes = recording["/world/objects"]
    assert np.allclose(boxes["Boxes3D:centers"][0], [block.position])
    assert boxes["Boxes3D:labels"][0] == ["red block 0.90"]
    assert np.allclose(boxes["Boxes3D:half_sizes"][0], [[0.02, 0.02, 0.02]])
    assert len(recording["/world/cameras/front/image"]["EncodedImage:blob"]) == 2
    path_rows = recording["/world/robot/ee_path"]
    assert path_rows["step"] == list(range(11)) and len(path_rows["LineStrips3D:strips"][-1][0]) == 11
    assert np.allclose(path_rows["LineStrips3D:strips"][-1][0][-1], (0.5, 0.0, 0.9))
    assert [t.total_seconds() for t in path_rows["sim_time"]][-1] == pytest.approx(0.5)
    assert recording["/robot/gripper_width"]["Scalars:scalars"][10] == pytest.approx([0.07])


def test_asking_for_recordings_without_the_sdk_is_one_line_saying_what_to_install(monkeypatch):
    import importlib.util

    from fmrobot.errors import ConfigError
    from fmrobot.stack import RunSettings

    assert RunSettings.from_config({"record": {"rerun": True}}).record.rerun
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rerun" else found(name, *a))
    with pytest.raises(ConfigError) as caught:
        RunSettings.from_config({"record": {"rerun": True}})
    message = str(caught.value)
    assert "\n" not in message and "rerun-sdk" in message and "pip install 'fmrobot[viz]'" in message
    assert not RunSettings.from_config({"record": {"rerun": False}}).record.rerun  # off needs nothing


# --------------------------------------------------------------------------- real episodes (slow)


def oracle_runner(env, policy=None) -> Runner:
    return Runner(env=env, perceptor=OraclePerceptor(), planner=OraclePlanner(), policy=policy or ScriptedPolicy(),
                  shield=BasicShield())


@pytest.mark.slow
def test_a_run_with_rerun_writes_each_episode_with_every_stream(pick_place_env, tmp_path):
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(0,),
                 video_seeds=frozenset({0}), rerun=True)
    result = run_one(oracle_runner(pick_place_env), job, 0)
    assert result.success and result.rerun_file == "rerun/seed_000000.rrd"
    recording = read_back(tmp_path / result.rerun_file)
    for entity in (*STREAMS, "/video"):
        assert entity in recording and len(recording[entity]["step"]) > 0, f"{entity} missing or empty"
    video = recording["/video"]
    assert video["step"] == pick_place_env.video_frame_steps() and all(video["EncodedImage:blob"])
    detections = recording["/world/cameras/front/image/detections"]["Boxes2D:labels"][0]
    objects = recording["/world/objects"]["Boxes3D:labels"][0]
    assert len(detections) >= 2 and sorted(detections) == sorted(objects)  # pick_place: blocks and bowls
    ee = recording["/world/robot/ee"]
    assert ee["step"] == list(range(result.env_steps + 1))  # every control step, and the state the last one left
    assert [level for _, level, _ in texts(recording["/log/skills"])] == ["INFO", "INFO"]
    assert texts(recording["/log/episode"])[-1][1:] == ("INFO", "success")


@pytest.mark.slow
def test_a_failed_episode_records_its_failures_and_reason(pick_place_env, tmp_path):
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(1,), rerun=True)
    result = run_one(oracle_runner(pick_place_env, FlakyPolicy(failures=100)), job, 1)
    assert not result.success and result.rerun_file == "rerun/seed_000001.rrd"
    recording = read_back(tmp_path / result.rerun_file)
    assert "/video" not in recording  # this episode recorded no video, and none is rendered for the recording
    skills = texts(recording["/log/skills"])
    assert [level for _, level, text in skills if not text.startswith("home")] == ["ERROR"] * 3
    assert len(recording["/world/cameras/front/image/detections"]["step"]) == 3  # a fresh look before each replan
    step, level, text = texts(recording["/log/episode"])[-1]
    assert level == "ERROR" and result.failure_reason in text and step == result.env_steps


@pytest.mark.slow
def test_a_crashed_episode_is_recorded_up_to_the_crash(pick_place_env, tmp_path):
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(2,), rerun=True)
    result = run_one(oracle_runner(pick_place_env, BrokenPolicy()), job, 2)
    assert result.crashed and result.rerun_file == "rerun/seed_000002.rrd"
    recording = read_back(tmp_path / result.rerun_file)
    # The policy raised choosing the fourth action: the last state seen is the third action's
    assert recording["/world/robot/ee"]["step"] == [0, 1, 2]
    assert texts(recording["/log/episode"])[-1] == (2, "CRITICAL", "crashed: RuntimeError: policy bug")
