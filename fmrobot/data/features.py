"""What a learned skill policy sees and says, as flat vectors, shared by recording, training and running.

A skill call is turned into a `SkillContext` (the skill, and the geometry of the object it
acts on, taken from the perceived scene). Observations and actions are then expressed
relative to that object's top centre (the anchor), so a policy trained on blocks at some
places generalizes to blocks at others: "descend to 2 cm below the anchor" reads the same
wherever the block is.

Yaw appears as (cos 4y, sin 4y): a square footprint and a parallel gripper are symmetric
under quarter turns, and this encoding is continuous where the angle itself wraps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmrobot.types import Action, DetectedObject, Observation, SceneDescription, SkillCall, SkillSpec, yaw_quaternion

#: Per observation frame: ee - anchor (3), ee yaw (2), gripper opening (1), target extent (3),
#: target yaw (2), held object's extent (3).
OBSERVATION_DIM = 14
#: Per step: ee target - anchor (3), yaw (2), gripper closure (1), done (1).
ACTION_DIM = 7
DONE_INDEX = 6
OPEN_FRACTION = 0.9  # a gripper this far open or more holds nothing
# How a dataset stores them (fmrobot/data/dataset.py): robot state, context of the call, raw action.
STATE_DIM = 9  # ee position, ee quaternion, gripper width, gripper max width
CONTEXT_DIM = 10  # anchor, target extent, target yaw, held extent
RAW_ACTION_DIM = 8  # ee target position, quaternion, gripper closure


@dataclass(frozen=True)
class SkillContext:
    """The skill being executed and the geometry it is conditioned on."""

    skill: str
    anchor: tuple[float, float, float]  # top centre of the object the skill acts on
    target_extent: tuple[float, float, float]
    target_yaw: float | None
    held_extent: tuple[float, float, float]  # (0, 0, 0) when the gripper holds nothing

    def as_array(self) -> np.ndarray:
        """(11,) anchor, extent, yaw (nan when unknown), held extent: how a dataset stores it."""
        yaw = math.nan if self.target_yaw is None else self.target_yaw
        return np.array([*self.anchor, *self.target_extent, yaw, *self.held_extent], dtype=np.float32)

    @classmethod
    def from_array(cls, skill: str, values: np.ndarray) -> "SkillContext":
        v = [float(x) for x in values]
        return cls(skill=skill, anchor=(v[0], v[1], v[2]), target_extent=(v[3], v[4], v[5]),
                   target_yaw=None if math.isnan(v[6]) else v[6], held_extent=(v[7], v[8], v[9]))



def skill_context(call: SkillCall, spec: SkillSpec, scene: SceneDescription,
                  held: DetectedObject | None) -> SkillContext:
    """The context of `call`: its first object argument's geometry, and what the gripper holds."""
    held_extent = tuple(float(e) for e in held.extent) if held is not None else (0.0, 0.0, 0.0)
    names = call.objects(spec)
    if not names:  # e.g. home: nothing to anchor to but the world origin
        return SkillContext(call.skill, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), None, held_extent)
    target = scene.find(names[0])
    x, y, _ = target.position
    return SkillContext(call.skill, (float(x), float(y), float(target.top_z)),
                        tuple(float(e) for e in target.extent), target.yaw, held_extent)


class HeldTracker:
    """Which object the gripper holds, from the skill calls that succeeded (pick takes, placing frees).

    A wide-open gripper holds nothing, whatever came before: that is what resets the
    bookkeeping between episodes, and after a place that failed having let go.
    """

    def __init__(self) -> None:
        self.held: DetectedObject | None = None
        self._picking: DetectedObject | None = None

    def started(self, call: SkillCall, spec: SkillSpec, scene: SceneDescription, obs: Observation) -> None:
        if obs.robot.gripper_width >= OPEN_FRACTION * obs.robot.gripper_max_width:
            self.held = None
        names = call.objects(spec)
        self._picking = scene.find(names[0]) if call.skill == "pick" and names else None

    def ended(self, call: SkillCall, succeeded: bool) -> None:
        if not succeeded:
            return
        if call.skill == "pick":
            self.held = self._picking
        elif call.skill.startswith("place"):
            self.held = None


def yaw_features(yaw: float | None) -> tuple[float, float]:
    if yaw is None:
        return 0.0, 0.0
    return math.cos(4.0 * yaw), math.sin(4.0 * yaw)


def quaternion_yaw(q) -> float:
    """Rotation about world z of a gripper pointing down, from its quaternion (x, y, z, w)."""
    x, y, z, w = q
    # heading of the gripper's x axis projected on the table
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def observation_features(context: SkillContext, state: np.ndarray) -> np.ndarray:
    """(OBSERVATION_DIM,) from a robot state row: ee position (3), ee quaternion (4), gripper width, max width."""
    ee = state[:3] - np.asarray(context.anchor)
    yaw = yaw_features(quaternion_yaw(state[3:7]))
    opening = state[7] / max(float(state[8]), 1e-6)
    return np.array([*ee, *yaw, opening, *context.target_extent, *yaw_features(context.target_yaw),
                     *context.held_extent], dtype=np.float32)


def robot_state_row(obs: Observation) -> np.ndarray:
    r = obs.robot
    return np.array([*r.ee_pose.position, *r.ee_pose.orientation, r.gripper_width, r.gripper_max_width],
                    dtype=np.float32)



def action_row(action: Action) -> np.ndarray:
    """(8,) how a dataset stores an action: ee target position, orientation quaternion, gripper closure."""
    return np.array([*action.ee_position, *action.ee_orientation, action.gripper], dtype=np.float32)



def encode_action(context: SkillContext, raw: np.ndarray, done: bool) -> np.ndarray:
    target = raw[:3] - np.asarray(context.anchor)
    return np.array([*target, *yaw_features(quaternion_yaw(raw[3:7])), raw[7], float(done)], dtype=np.float32)


def decode_action(context: SkillContext, vector: np.ndarray, near_yaw: float = 0.0) -> tuple[Action, bool]:
    """The action a predicted vector stands for, and whether it says the skill is done.

    The vector gives the wrist's yaw up to quarter turns; of those, the one nearest
    `near_yaw` (the wrist's yaw now) is taken. Near a block's diagonal, +45 and -45
    degrees are the same grasp, and choosing afresh for every chunk would swing the
    wrist a quarter turn back and forth while the fingers are beside the block.
    """
    position = tuple(float(v) for v in np.asarray(context.anchor) + vector[:3])
    yaw = math.atan2(float(vector[4]), float(vector[3])) / 4.0
    yaw += round((near_yaw - yaw) / (math.pi / 2)) * (math.pi / 2)
    gripper = 1.0 if vector[5] > 0.5 else 0.0  # demonstrations only open or close: half-closed is noise
    return (Action(ee_position=position, ee_orientation=yaw_quaternion(yaw), gripper=gripper),
            bool(vector[DONE_INDEX] > 0.5))
