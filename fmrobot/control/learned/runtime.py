"""Running a learned skill policy closed loop: predict an action chunk, execute part of it, predict again.

`ChunkedSkillPolicy` is the `Policy` both learned policies share; they differ only in how
a chunk is predicted (`_predict_normalized`). It keeps the last `obs_horizon` observations
of the current call, executes the first `execute_steps` actions of each predicted chunk
(receding horizon), and ends the call when the next action to execute says `done`. The
checks after that are the skill's own post-conditions, not learned: a pick must end with
something between the fingers.
"""

from __future__ import annotations

import math
import pickle
import zipfile
import zlib
from collections import deque
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.data.features import (
    ACTION_DIM,
    OBSERVATION_DIM,
    OPEN_FRACTION,
    HeldTracker,
    SkillContext,
    decode_action,
    observation_features,
    quaternion_yaw,
    robot_state_row,
    skill_context,
)
from fmrobot.assets import ShippedFiles
from fmrobot.control.skills import STANDARD_SKILLS
from fmrobot.errors import ConfigError, SkillArgumentError, one_line
from fmrobot.types import Action, Observation, SceneDescription, SkillCall, SkillSpec, SkillStatus

CHECKPOINT_FORMAT = "fmrobot-policy"
CHECKPOINT_VERSION = 1
SHIPPED_DIR = Path(__file__).parent / "checkpoints"


class TrainingConfig(BaseModel):
    """How `python -m fmrobot.train` optimizes the policy (ignored when running one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=8000, ge=1)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-6, ge=0.0)
    warmup_steps: int = Field(default=300, ge=0)
    ema_decay: float = Field(default=0.999, ge=0.0, lt=1.0)  # weights evaluated are an exponential average


class LearnedPolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A shipped checkpoint's name (fmrobot/control/learned/checkpoints/<name>_<policy>.pt) or a path to one.
    checkpoint: str = "pick_place"
    execute_steps: int = Field(default=8, ge=1)  # actions of each predicted chunk run before predicting again
    # A call may take this many times as many steps as the longest demonstration of its skill.
    max_steps_factor: float = Field(default=2.0, gt=1.0)
    min_grasp_width: float = Field(default=0.004, ge=0.0)  # narrower after a pick: it closed on nothing
    # The architecture a new checkpoint gets from `python -m fmrobot.train`; a loaded one brings its own.
    horizon: int = Field(default=16, ge=1)  # actions per predicted chunk
    obs_horizon: int = Field(default=2, ge=1)  # observations the prediction is conditioned on
    hidden: int = Field(default=512, ge=8)
    training: TrainingConfig = TrainingConfig()


def shipped_checkpoints(kind: str) -> ShippedFiles:
    return ShippedFiles(SHIPPED_DIR, f"_{kind}.pt")


def checkpoint_path(kind: str, checkpoint: str) -> Path:
    """The file `checkpoint` names: the name of a checkpoint shipped for policy `kind`, or a path."""
    shipped = shipped_checkpoints(kind)
    path = shipped.find(checkpoint)
    if path is None:
        raise ConfigError(f"policy={kind}: no checkpoint at {checkpoint}; shipped checkpoints: {shipped.listing()}; "
                          f"train one with `python -m fmrobot.train policy={kind} task=<task>` and pass "
                          f"policy.checkpoint=<path to its policy.pt>")
    return path


def load_checkpoint(kind: str, checkpoint: str) -> dict[str, Any]:
    import torch

    path = checkpoint_path(kind, checkpoint)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; torch.load's error for others is cryptic
        raise ConfigError(f"{path} is not a policy checkpoint: expected a file written by torch.save (as "
                          f"`python -m fmrobot.train policy={kind}` writes policy.pt)")
    try:  # weights_only: a checkpoint holds tensors and plain values, never code to run
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch suggests weights_only=False here; fmrobot never runs code from a checkpoint.
        raise ConfigError(f"{path} holds Python objects besides tensors and plain values; fmrobot loads only "
                          f"checkpoints that cannot run code: write it again with `python -m fmrobot.train "
                          f"policy={kind}`") from None
    except Exception as error:
        raise ConfigError(f"could not read the policy checkpoint {path}: {one_line(str(error), 300)}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not an fmrobot policy checkpoint")
    if data.get("kind") != kind:
        raise ConfigError(f"{path} holds a policy={data.get('kind')} checkpoint, not policy={kind}")
    if data.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"{path} has checkpoint version {data.get('version')}; this fmrobot reads "
                          f"{CHECKPOINT_VERSION}")
    return data


class ChunkedSkillPolicy:
    """A `Policy` executing skill calls from a trained checkpoint."""

    kind: ClassVar[str]
    Config = LearnedPolicyConfig

    def __init__(self, config: LearnedPolicyConfig | None = None, checkpoint: dict[str, Any] | None = None):
        import torch

        self.config = config or self.Config()
        data = checkpoint if checkpoint is not None else load_checkpoint(self.kind, self.config.checkpoint)
        self.info: dict[str, Any] = data["info"]
        self.skill_names: list[str] = list(data["skills"])
        self.horizon, self.obs_horizon = int(data["horizon"]), int(data["obs_horizon"])
        self.max_call_frames: dict[str, int] = dict(data["max_call_frames"])
        self.architecture_info: dict[str, Any] = dict(data["architecture"])
        self.model, self.normalizer = self.build_networks(self.architecture_info, len(self.skill_names))
        self.model.load_state_dict(data["model"])
        self.normalizer.load_state_dict(data["normalizer"])
        self.model.eval()
        self._torch = torch
        by_name = {s.name: s for s in STANDARD_SKILLS}
        self.skills: Sequence[SkillSpec] = tuple(by_name[n] for n in self.skill_names if n in by_name)
        self._held = HeldTracker()
        self._call: SkillCall | None = None
        self._context: SkillContext | None = None
        self._history: deque[np.ndarray] = deque(maxlen=self.obs_horizon)
        self._queue: list[tuple[Action, bool]] = []
        self._last_step = -1
        self._steps = 0
        self._closure = 0.0  # the gripper command last sent
        self._yaw = 0.0  # the wrist's yaw in the last observation
        self._limit = 0
        self._finished: SkillStatus | None = None
        self._reason = ""

    # ------------------------------------------------------------------ what subclasses provide

    @classmethod
    def build_networks(cls, architecture: dict[str, Any], num_skills: int):
        """(model, normalizer) for an architecture dict as `architecture()` wrote it."""
        raise NotImplementedError

    @classmethod
    def architecture(cls, config: LearnedPolicyConfig, num_skills: int) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def objective(cls, architecture: dict[str, Any]):
        """The training loss: loss(model, cond, targets, generator) -> scalar tensor, where `cond` is the
        conditioning (models.conditioning) and `targets` the normalized action chunks of a batch."""
        raise NotImplementedError

    def _predict_normalized(self, cond, generator) -> Any:
        """(1, horizon, ACTION_DIM) normalized chunk for conditioning `cond`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Policy

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None:
        if call.skill not in self.skill_names:
            raise SkillArgumentError(f"policy={self.kind} was trained on skills {', '.join(self.skill_names)}; "
                                     f"it cannot execute {call.skill!r}")
        spec = next(s for s in self.skills if s.name == call.skill)
        self._held.started(call, spec, scene, obs)
        self._call, self._context = call, skill_context(call, spec, scene, self._held.held)
        self._history.clear()
        self._queue, self._last_step, self._steps = [], -1, 0
        self._closure = 0.0 if obs.robot.gripper_width >= OPEN_FRACTION * obs.robot.gripper_max_width else 1.0
        self._limit = int(math.ceil(self.config.max_steps_factor * self.max_call_frames.get(call.skill, 100)))
        self._finished, self._reason = None, ""
        # Sampling noise is drawn from the situation, so the same episode always runs the same way.
        key = f"{call}|{np.round(robot_state_row(obs), 4).tolist()}|{self._context.anchor}"
        self._generator = self._torch.Generator().manual_seed(zlib.crc32(key.encode()))
        self._observe(obs)

    def status(self, obs: Observation) -> SkillStatus:
        if self._finished is not None:
            return self._finished
        if self._call is None:
            raise RuntimeError("reset(call, scene, obs) must come before act/status")
        self._observe(obs)
        if self._steps >= self._limit:
            return self._finish(SkillStatus.FAILURE, f"{self._call}: policy={self.kind} did not finish within "
                                                     f"{self._limit} steps")
        if not self._queue:
            self._queue = self._predict()
        if self._queue[0][1]:
            if self._call.skill == "pick":
                if self._closure < 0.5:
                    return self._finish(SkillStatus.FAILURE, f"{self._call}: policy={self.kind} ended the pick "
                                                             "without closing the gripper")
                if obs.robot.gripper_width <= self.config.min_grasp_width:
                    return self._finish(SkillStatus.FAILURE, f"{self._call}: gripper closed on nothing")
            return self._finish(SkillStatus.SUCCESS, "")
        return SkillStatus.RUNNING

    def act(self, obs: Observation) -> Action:
        self._observe(obs)
        if not self._queue:
            self._queue = self._predict()
        action, _ = self._queue.pop(0)
        self._steps += 1
        self._closure = action.gripper
        return action

    def failure_reason(self) -> str:
        return self._reason

    # ------------------------------------------------------------------ internals

    def _finish(self, status: SkillStatus, reason: str) -> SkillStatus:
        self._finished, self._reason = status, reason
        assert self._call is not None
        self._held.ended(self._call, status is SkillStatus.SUCCESS)
        return status

    def _observe(self, obs: Observation) -> None:
        if obs.step == self._last_step:
            return
        assert self._context is not None
        state = robot_state_row(obs)
        features = observation_features(self._context, state)
        self._yaw = quaternion_yaw(state[3:7])
        if not self._history:
            self._history.extend([features] * self.obs_horizon)
        self._history.append(features)
        self._last_step = obs.step

    def _predict(self) -> list[tuple[Action, bool]]:
        from fmrobot.control.learned.models import conditioning

        torch = self._torch
        assert self._context is not None and self._call is not None
        history = torch.from_numpy(np.stack(self._history)).view(1, self.obs_horizon, OBSERVATION_DIM)
        skill = torch.tensor([self.skill_names.index(self._call.skill)])
        with torch.no_grad():
            cond = conditioning(self.normalizer, history, skill, len(self.skill_names))
            chunk = self.normalizer.unnormalize_actions(self._predict_normalized(cond, self._generator))[0]
        vectors = chunk.numpy().reshape(self.horizon, ACTION_DIM)[: self.config.execute_steps]
        return [decode_action(self._context, v, near_yaw=self._yaw) for v in vectors]
