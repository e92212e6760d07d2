"""Scripted pick and place: waypoint trajectories through inverse kinematics.

The policy commands absolute end-effector targets (the environment solves IK) and
closes the loop on the observation: every waypoint must actually be reached, a grasp
must leave the fingers apart (something is between them), and a carried object must
stay in the gripper until it is released.
"""

from __future__ import annotations

import math
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.control.motion import Check, Grip, Move, Segment, SegmentRunner
from fmrobot.control.skills import STANDARD_SKILLS, PickParameters, PlaceParameters
from fmrobot.errors import SkillArgumentError
from fmrobot.types import (
    Action,
    DetectedObject,
    Observation,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
    yaw_quaternion,
)


class ScriptedPolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    speed: float = Field(default=0.4, gt=0.0, le=2.0)  # m/s of free-space moves
    approach_speed: float = Field(default=0.15, gt=0.0, le=1.0)  # m/s near objects
    approach_height: float = Field(default=0.10, gt=0.0)  # above the object's top
    carry_clearance: float = Field(default=0.10, gt=0.0)  # held object's bottom above the target's top
    release_clearance: float = Field(default=0.02, ge=0.0)  # held object's bottom above the target's top
    max_grasp_depth: float = Field(default=0.02, gt=0.0)  # how far below the top the fingers close
    tolerance: float = Field(default=0.012, gt=0.0)
    close_seconds: float = Field(default=0.5, gt=0.0)
    open_seconds: float = Field(default=0.3, gt=0.0)
    min_grasp_width: float = Field(default=0.004, ge=0.0)  # narrower means the gripper closed on nothing
    home_position: tuple[float, float, float] = (0.38, 0.0, 1.03)  # resting pose of the gripper, out of view


class ScriptedPolicy:
    """Executes `pick(object)`, `place(target)` and `home()` on the perceived scene."""

    Config = ScriptedPolicyConfig
    skills: Sequence[SkillSpec] = STANDARD_SKILLS

    def __init__(self, config: ScriptedPolicyConfig | None = None):
        self.config = config or ScriptedPolicyConfig()
        self._runner: SegmentRunner | None = None
        self._held: DetectedObject | None = None
        self._held_grasp_depth = 0.0

    # ------------------------------------------------------------------ Policy

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None:
        start = Action(
            ee_position=obs.robot.ee_pose.position,
            ee_orientation=obs.robot.ee_pose.orientation,
            gripper=0.0 if obs.robot.gripper_width > 0.9 * obs.robot.gripper_max_width else 1.0,
        )
        if call.skill == "pick":
            params = PickParameters.model_validate(dict(call.args))
            segments = self._pick(scene.find(params.object), obs, start)
        elif call.skill == "place":
            params = PlaceParameters.model_validate(dict(call.args))
            segments = self._place(scene.find(params.target), obs, start)
        elif call.skill == "home":
            segments = [Move(name="home", position=self.config.home_position, orientation=start.ee_orientation,
                             gripper=start.gripper, speed=self.config.speed, tolerance=self.config.tolerance)]
        else:
            raise SkillArgumentError(
                f"scripted policy cannot execute {call.skill!r}; skills: {', '.join(s.name for s in self.skills)}"
            )
        self._runner = SegmentRunner(segments, obs, start)

    def act(self, obs: Observation) -> Action:
        return self._active().act(obs)

    def status(self, obs: Observation) -> SkillStatus:
        return self._active().status(obs)

    def failure_reason(self) -> str:
        return self._runner.reason if self._runner else ""

    def _active(self) -> SegmentRunner:
        if self._runner is None:
            raise RuntimeError("reset(call, scene, obs) must come before act/status")
        return self._runner

    # ------------------------------------------------------------------ skills

    def _pick(self, target: DetectedObject, obs: Observation, start: Action) -> list[Segment]:
        c = self.config
        x, y, _ = target.position
        top = target.top_z
        depth = min(c.max_grasp_depth, 0.5 * target.extent[2])
        orientation = yaw_quaternion(_gripper_yaw(target.yaw))
        above = (x, y, top + c.approach_height)
        grasp = (x, y, top - depth)

        def holding(o: Observation) -> bool:
            return o.robot.gripper_width > c.min_grasp_width

        def remember(o: Observation) -> bool:
            self._held, self._held_grasp_depth = target, depth
            return True

        return [
            Move(name="pick: approach", position=above, orientation=orientation, gripper=0.0, speed=c.speed,
                 tolerance=c.tolerance),
            Move(name="pick: descend", position=grasp, orientation=orientation, gripper=0.0,
                 speed=c.approach_speed, tolerance=c.tolerance),
            Grip(name="pick: close", closure=1.0, seconds=c.close_seconds),
            Check(name="pick: grasp", condition=holding, failure=f"gripper closed on nothing at {target.label}"),
            Move(name="pick: lift", position=above, orientation=orientation, gripper=1.0, speed=c.approach_speed,
                 tolerance=c.tolerance),
            Check(name="pick: hold", condition=holding, failure=f"{target.label} slipped out while lifting"),
            Check(name="pick: done", condition=remember, failure=""),
        ]

    def _place(self, target: DetectedObject, obs: Observation, start: Action) -> list[Segment]:
        c = self.config
        if obs.robot.gripper_width <= c.min_grasp_width:
            return [Check(name="place", condition=lambda o: False, failure="the gripper holds nothing to place")]
        held_height = self._held.extent[2] if self._held else 0.05
        # The fingers hold the object `grasp depth` below its top, so its bottom hangs this far below them.
        hang = held_height - (self._held_grasp_depth if self._held else 0.02)
        x, y, _ = target.position
        top = target.top_z
        orientation = start.ee_orientation
        carry_z = max(start.ee_position[2], top + c.carry_clearance + hang)
        release = (x, y, top + c.release_clearance + hang)
        over = (x, y, carry_z)

        def still_held(o: Observation) -> str | None:
            if o.robot.gripper_width <= c.min_grasp_width:
                return "the held object slipped out of the gripper"
            return None

        def forget(o: Observation) -> bool:
            self._held = None
            return True

        return [
            Move(name="place: raise", position=(*start.ee_position[:2], carry_z), orientation=orientation,
                 gripper=1.0, speed=c.approach_speed, tolerance=c.tolerance, guard=still_held),
            Move(name="place: carry", position=over, orientation=orientation, gripper=1.0, speed=c.speed,
                 tolerance=c.tolerance, guard=still_held),
            Move(name="place: lower", position=release, orientation=orientation, gripper=1.0,
                 speed=c.approach_speed, tolerance=c.tolerance, guard=still_held),
            Grip(name="place: release", closure=0.0, seconds=c.open_seconds),
            Move(name="place: retreat", position=over, orientation=orientation, gripper=0.0,
                 speed=c.approach_speed, tolerance=c.tolerance),
            Check(name="place: done", condition=forget, failure=""),
        ]


def _gripper_yaw(object_yaw: float | None) -> float:
    """Align the fingers with a face of a square footprint, turning as little as possible."""
    if object_yaw is None:
        return 0.0
    return (object_yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4
