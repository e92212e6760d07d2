"""Motion rules: each looks at one action before it is applied.

A plan that is safe in words can still move unsafely: a learned policy may command a
jump, a place beside an object at the table's edge may reach past it, a straight carry
may sweep through something fragile. These rules see every commanded end-effector
target. A rule returns the action to apply (repaired, where it can be) or refuses it.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from fmrobot.interfaces import ActionContext
from fmrobot.safety.geometry import Bounds, matches, where
from fmrobot.safety.zones import KeepOutZone, zones_in
from fmrobot.types import Action, SafetyViolation


class MotionRule(Protocol):
    name: str

    def check(self, action: Action, context: ActionContext) -> tuple[Action | None, SafetyViolation | None]:
        """(action to apply, None) if fine; (repaired action, violation with repaired=True) after a
        repair; (None, violation) to refuse."""
        ...


def _refuse(rule: str, context: ActionContext, reason: str) -> tuple[None, SafetyViolation]:
    return None, SafetyViolation(rule=rule, step_index=None, reason=f"{context.call}: {reason}")


class MaxEndEffectorSpeed:
    """The commanded target may move at most `max_speed` m/s; a faster command is shortened.

    Speed is measured between consecutive commanded targets (the first against the measured
    end effector): that is the motion the controller is asked to follow.
    """

    name = "max_ee_speed"

    def __init__(self, max_speed: float):
        self.max_speed = max_speed

    def check(self, action: Action, context: ActionContext) -> tuple[Action | None, SafetyViolation | None]:
        start = np.asarray(context.previous.ee_position if context.previous is not None
                           else context.obs.robot.ee_pose.position)
        delta = np.asarray(action.ee_position) - start
        distance = float(np.linalg.norm(delta))
        stride = self.max_speed * context.obs.dt
        if distance <= stride * (1 + 1e-6):
            return action, None
        target = tuple(float(v) for v in start + delta * (stride / distance))
        repaired = action.model_copy(update={"ee_position": target})
        return repaired, SafetyViolation(
            rule=self.name, step_index=None, repaired=True,
            reason=f"{context.call}: commanded {distance / context.obs.dt:.2f} m/s, limited to {self.max_speed} m/s",
        )


class EndEffectorBounds:
    """The commanded end-effector target must stay inside the workspace box."""

    name = "workspace_bounds"

    def __init__(self, bounds: Bounds):
        self.bounds = bounds

    def check(self, action: Action, context: ActionContext) -> tuple[Action | None, SafetyViolation | None]:
        if self.bounds.contains(action.ee_position):
            return action, None
        return _refuse(self.name, context, f"end-effector target {where(action.ee_position)} is outside the "
                                           f"workspace ({self.bounds})")


class KeepOutVolumes:
    """The commanded end-effector target must stay out of every keep-out zone's volume."""

    name = "keep_out"

    def __init__(self, zones: Sequence[KeepOutZone]):
        self.zones = tuple(zones)

    def check(self, action: Action, context: ActionContext) -> tuple[Action | None, SafetyViolation | None]:
        for region in zones_in(self.zones, context.scene):
            if region.contains(action.ee_position):
                return _refuse(self.name, context, f"end-effector target {where(action.ee_position)} is inside "
                                                   f"the keep-out zone {region}")
        return action, None


class ReleaseSite:
    """Nothing is let go above a keep-out zone or a fragile object, at any height: it would
    fall in or onto it. A release is a gripper command that opens a closed gripper."""

    name = "release"

    def __init__(self, zones: Sequence[KeepOutZone], fragile: Sequence[str], margin: float = 0.03):
        self.zones, self.fragile, self.margin = tuple(zones), tuple(fragile), margin

    def check(self, action: Action, context: ActionContext) -> tuple[Action | None, SafetyViolation | None]:
        robot = context.obs.robot
        closed = (context.previous.gripper >= 0.5 if context.previous is not None
                  else robot.gripper_width < 0.9 * robot.gripper_max_width)
        if not closed or action.gripper >= 0.5:
            return action, None
        x, y = robot.ee_pose.position[:2]
        for region in zones_in(self.zones, context.scene):
            if region.contains_xy((x, y)):
                return _refuse(self.name, context, f"opening the gripper at {where((x, y))} would drop what it "
                                                   f"holds into the keep-out zone {region.name}")
        for thing in context.scene.objects:
            if matches(thing.label, self.fragile) and all(
                    abs(v - c) <= e / 2 + self.margin for v, c, e in zip((x, y), thing.position, thing.extent)):
                return _refuse(self.name, context, f"opening the gripper at {where((x, y))} would drop what it "
                                                   f"holds onto the fragile {thing.label}")
        return action, None


class PathClearance:
    """The gripper's path to the target must not touch anything the call does not name.

    The environment sweeps the robot's hand and open fingers, and what they hold, from where
    the end effector is to the commanded target, with its closest-point queries. Objects the
    call names are exempt (a pick must reach its object); what the robot already touches
    moves with it rather than standing in its way. Only the gripper is swept, not the arm
    behind it. `protect` limits the check to objects whose labels match its shell patterns;
    None checks every object.
    """

    name = "collision"

    def __init__(self, margin: float, protect: Sequence[str] | None):
        self.margin, self.protect = margin, None if protect is None else tuple(protect)

    def check(self, action: Action, context: ActionContext) -> tuple[Action | None, SafetyViolation | None]:
        if context.probe is None:
            return action, None
        start = context.obs.robot.ee_pose.position
        hit = context.probe.sweep(start, action.ee_position, action.ee_orientation, self.margin, context.involved,
                                  self.protect)
        if hit is None:
            return action, None
        contact = "would hit" if hit.distance < 0 else f"would pass {hit.distance * 100:.1f} cm from"
        return _refuse(self.name, context, f"the gripper moving from {where(start)} to {where(action.ee_position)} "
                                           f"{contact} the {hit.label} at {where(hit.at)}")
