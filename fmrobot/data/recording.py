"""Record what the runner does in an episode, frame by frame, with skill boundaries and outcome.

One frame per applied action: the robot state the action was chosen in, the action, and
the skill call it belongs to (with the geometry a learned policy is conditioned on, see
fmrobot/data/features.py). When a skill finishes successfully one more frame
is added, the state it ended in with `done` set: that frame teaches a policy when to stop,
and it is not an applied action (replay skips it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmrobot.data.features import (
    CONTEXT_DIM,
    RAW_ACTION_DIM,
    STATE_DIM,
    HeldTracker,
    SkillContext,
    action_row,
    robot_state_row,
    skill_context,
)
from fmrobot.types import (
    Action,
    EpisodeResult,
    EpisodeSpec,
    Observation,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
)


@dataclass
class EpisodeRecord:
    """One recorded episode as arrays (T frames) plus its outcome."""

    seed: int
    task: str
    instruction: str
    success: bool
    predicates: dict[str, bool]
    skills: list[str]  # skill names; frames refer to them by index
    state: np.ndarray  # (T, STATE_DIM)
    action: np.ndarray  # (T, RAW_ACTION_DIM)
    skill_index: np.ndarray  # (T,) int
    call_index: np.ndarray  # (T,) int: which skill call of the episode (home moves count too)
    context: np.ndarray  # (T, CONTEXT_DIM)
    done: np.ndarray  # (T,) bool: the skill's closing frame, not an applied action
    final_state: np.ndarray  # (STATE_DIM,) robot state when the episode was judged
    calls: list[str] = field(default_factory=list)  # each call as text, e.g. "pick(object='red block')"
    # (T,) int: the control step each frame's state was observed at (lines camera frames up with rows)
    steps: np.ndarray | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"seed": self.seed, "task": self.task, "instruction": self.instruction, "success": self.success,
                "predicates": self.predicates, "skills": self.skills, "calls": self.calls}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), state=self.state, action=self.action,
                 skill_index=self.skill_index, call_index=self.call_index, context=self.context, done=self.done,
                 final_state=self.final_state, **({} if self.steps is None else {"steps": self.steps}))
        tmp.replace(path)  # a worker killed mid-write leaves no half episode behind

    @classmethod
    def load(cls, path: Path) -> "EpisodeRecord":
        with np.load(path) as data:
            meta: dict[str, Any] = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in ("state", "action", "skill_index", "call_index", "context", "done",
                                          "final_state", "steps") if k in data}
        return cls(**meta, **arrays)

    def __len__(self) -> int:
        return len(self.state)


class DemoRecorder:
    """An `EpisodeRecorder` that keeps every frame of one episode in memory."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.record: EpisodeRecord | None = None
        self._episode: EpisodeSpec | None = None
        self._rows: dict[str, list] = {}
        self._skills: list[str] = []
        self._calls: list[str] = []
        self._held = HeldTracker()
        self._context: SkillContext | None = None
        self._last_action: Action | None = None
        self._obs: Observation | None = None

    def begin(self, episode: EpisodeSpec, obs: Observation) -> None:
        self._clear()
        self._episode, self._obs = episode, obs
        self._rows = {k: [] for k in ("state", "action", "skill_index", "call_index", "context", "done", "steps")}

    def skill_started(self, call: SkillCall, spec: SkillSpec, scene: SceneDescription, obs: Observation) -> None:
        self._held.started(call, spec, scene, obs)
        self._context = skill_context(call, spec, scene, self._held.held)
        if call.skill not in self._skills:
            self._skills.append(call.skill)
        self._calls.append(str(call))
        self._last_action = None

    def step(self, obs: Observation, action: Action) -> None:
        self._add(obs, action, done=False)
        self._last_action = action

    def skill_ended(self, call: SkillCall, obs: Observation, status: SkillStatus) -> None:
        if self._context is None:  # refused before it started: nothing was recorded for it
            return
        succeeded = status is SkillStatus.SUCCESS
        if succeeded:
            hold = self._last_action or Action(ee_position=obs.robot.ee_pose.position,
                                               ee_orientation=obs.robot.ee_pose.orientation,
                                               gripper=0.0)
            self._add(obs, hold, done=True)
        self._held.ended(call, succeeded)
        self._context = None
        self._obs = obs

    def end(self, result: EpisodeResult) -> None:
        assert self._episode is not None, "end() before begin()"
        rows = self._rows
        final = robot_state_row(self._obs) if self._obs is not None else np.zeros(STATE_DIM, np.float32)
        self.record = EpisodeRecord(
            seed=result.seed, task=result.task, instruction=result.instruction, success=result.success,
            predicates={k: bool(v) for k, v in result.predicates.items()}, skills=list(self._skills),
            state=_stack(rows["state"], (0, STATE_DIM), np.float32),
            action=_stack(rows["action"], (0, RAW_ACTION_DIM), np.float32),
            skill_index=np.asarray(rows["skill_index"], dtype=np.int16),
            call_index=np.asarray(rows["call_index"], dtype=np.int16),
            context=_stack(rows["context"], (0, CONTEXT_DIM), np.float32),
            done=np.asarray(rows["done"], dtype=bool),
            final_state=final, calls=list(self._calls), steps=np.asarray(rows["steps"], dtype=np.int64),
        )

    def _add(self, obs: Observation, action: Action, done: bool) -> None:
        assert self._context is not None, "step() outside a skill"
        self._rows["state"].append(robot_state_row(obs))
        self._rows["action"].append(action_row(action))
        self._rows["skill_index"].append(self._skills.index(self._context.skill))
        self._rows["call_index"].append(len(self._calls) - 1)
        self._rows["context"].append(self._context.as_array())
        self._rows["done"].append(done)
        self._rows["steps"].append(obs.step)
        self._obs = obs


def _stack(rows: list, empty_shape: tuple[int, int], dtype) -> np.ndarray:
    return np.stack(rows).astype(dtype) if rows else np.zeros(empty_shape, dtype)
