"""Closed-loop motion primitives that scripted skills are sequenced from.

Each segment turns observations into actions and reports when it is done or has
failed. A move interpolates the commanded target toward its waypoint at a bounded
speed and finishes when the measured end-effector pose gets there, so a blocked or
unreachable waypoint shows up as a timeout with a reason, not as a silent hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from fmrobot.types import Action, Observation, Quat, SkillStatus


@dataclass(kw_only=True)
class Segment:
    name: str
    # Checked before every step of this segment; returns a failure reason or None.
    guard: Callable[[Observation], str | None] | None = None

    def start(self, obs: Observation, command: Action) -> None:
        self.steps = 0

    def act(self, obs: Observation, command: Action) -> Action:
        raise NotImplementedError

    def status(self, obs: Observation, command: Action) -> tuple[SkillStatus, str]:
        raise NotImplementedError


@dataclass(kw_only=True)
class Move(Segment):
    position: tuple[float, float, float]
    orientation: Quat
    gripper: float
    speed: float  # m/s of the commanded target
    tolerance: float = 0.01
    slack_seconds: float = 2.0
    _timeout: int = field(default=0, init=False)

    def start(self, obs: Observation, command: Action) -> None:
        super().start(obs, command)
        distance = float(np.linalg.norm(np.subtract(self.position, command.ee_position)))
        self._timeout = int((distance / self.speed + self.slack_seconds) / obs.dt) + 1

    def act(self, obs: Observation, command: Action) -> Action:
        self.steps += 1
        current = np.asarray(command.ee_position)
        delta = np.asarray(self.position) - current
        distance = float(np.linalg.norm(delta))
        stride = self.speed * obs.dt
        target = self.position if distance <= stride else tuple((current + delta * (stride / distance)).tolist())
        return Action(ee_position=target, ee_orientation=self.orientation, gripper=self.gripper)

    def status(self, obs: Observation, command: Action) -> tuple[SkillStatus, str]:
        error = float(np.linalg.norm(np.subtract(obs.robot.ee_pose.position, self.position)))
        if error <= self.tolerance and np.allclose(command.ee_position, self.position):
            return SkillStatus.SUCCESS, ""
        if self.steps >= self._timeout:
            where = ", ".join(f"{v:.3f}" for v in self.position)
            return SkillStatus.FAILURE, (
                f"{self.name}: end effector did not reach ({where}) within {self._timeout} steps "
                f"(still {error * 100:.1f} cm away); target unreachable or blocked"
            )
        return SkillStatus.RUNNING, ""


@dataclass(kw_only=True)
class Grip(Segment):
    """Hold the pose while the gripper opens or closes for a fixed time."""

    closure: float
    seconds: float

    def act(self, obs: Observation, command: Action) -> Action:
        self.steps += 1
        return Action(ee_position=command.ee_position, ee_orientation=command.ee_orientation, gripper=self.closure)

    def status(self, obs: Observation, command: Action) -> tuple[SkillStatus, str]:
        if self.steps * obs.dt >= self.seconds:
            return SkillStatus.SUCCESS, ""
        return SkillStatus.RUNNING, ""


@dataclass(kw_only=True)
class Check(Segment):
    """A condition on the observation that must hold at this point of the skill."""

    condition: Callable[[Observation], bool]
    failure: str

    def act(self, obs: Observation, command: Action) -> Action:  # never asked: it finishes at once
        return command

    def status(self, obs: Observation, command: Action) -> tuple[SkillStatus, str]:
        if self.condition(obs):
            return SkillStatus.SUCCESS, ""
        return SkillStatus.FAILURE, f"{self.name}: {self.failure}"


class SegmentRunner:
    """Runs segments in order; any failure ends the skill with that segment's reason."""

    def __init__(self, segments: list[Segment], obs: Observation, command: Action):
        self.segments = segments
        self.index = 0
        self.command = command
        self.reason = ""
        self._finished: SkillStatus | None = None
        if segments:
            segments[0].start(obs, command)

    def status(self, obs: Observation) -> SkillStatus:
        if self._finished is not None:
            return self._finished
        while self.index < len(self.segments):
            segment = self.segments[self.index]
            problem = segment.guard(obs) if segment.guard is not None else None
            if problem:
                return self._finish(SkillStatus.FAILURE, f"{segment.name}: {problem}")
            status, reason = segment.status(obs, self.command)
            if status is SkillStatus.FAILURE:
                return self._finish(status, reason)
            if status is SkillStatus.RUNNING:
                return status
            self.index += 1
            if self.index < len(self.segments):
                self.segments[self.index].start(obs, self.command)
        return self._finish(SkillStatus.SUCCESS, "")

    def act(self, obs: Observation) -> Action:
        if self.index >= len(self.segments):
            return self.command
        self.command = self.segments[self.index].act(obs, self.command)
        return self.command

    def _finish(self, status: SkillStatus, reason: str) -> SkillStatus:
        self._finished, self.reason = status, reason
        return status
