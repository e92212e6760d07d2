"""Scripted manipulation skills: waypoint trajectories through inverse kinematics.

The policy commands absolute end-effector targets (the environment solves IK) and
closes the loop on the observation: every waypoint must actually be reached, a grasp
must leave the fingers apart (something is between them), a carried object must stay
in the gripper until it is released, and a pusher that cannot move on has hit something.

During a skill the policy sees only the robot, so it keeps the scene it was given up
to date with its own doings: a plan of several steps runs on the scene perceived
before the first one, and where an object was put is known only to the policy until
the runner looks again. Positions it changed are forgotten as soon as a fresh scene
arrives.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.control.segments import Check, Grip, Move, Segment, SegmentRunner
from fmrobot.control.skills import (
    SIDE_DIRECTIONS,
    STANDARD_SKILLS,
    PickParameters,
    PlaceBetweenParameters,
    PlaceNextToParameters,
    PlaceParameters,
    PushParameters,
)
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
    obstacle_clearance: float = Field(default=0.03, gt=0.0)  # ... and above and beside anything it passes
    release_clearance: float = Field(default=0.02, ge=0.0)  # held object's bottom above the target's top
    max_grasp_depth: float = Field(default=0.02, gt=0.0)  # how far below the top the fingers close
    tolerance: float = Field(default=0.012, gt=0.0)
    # The fingers close only once the descent has really arrived: closing while still 1 cm
    # above the grasp height tilts small blocks picked off a tower (stack_blocks, towers_of_hanoi).
    grasp_tolerance: float = Field(default=0.003, gt=0.0)
    close_seconds: float = Field(default=0.5, gt=0.0)
    open_seconds: float = Field(default=0.3, gt=0.0)
    min_grasp_width: float = Field(default=0.004, ge=0.0)  # narrower means the gripper closed on nothing
    home_position: tuple[float, float, float] = (0.38, 0.0, 1.03)  # resting pose of the gripper, out of view
    # place into a target this wide or wider (a tray), or flat (a zone on the table): a free spot
    # inside it, away from what is already there; smaller ones (bowls) get their centre.
    spread_width: float = Field(default=0.18, gt=0.0)
    flat_height: float = Field(default=0.012, gt=0.0)  # targets thinner than this are regions on the table
    wall_inset: float = Field(default=0.035, ge=0.0)  # a container's walls take this much of its footprint
    spread_gap: float = Field(default=0.015, ge=0.0)  # free space wanted between objects in one target
    spread_step: float = Field(default=0.005, gt=0.0)  # grid of candidate spots
    # place_next_to: free space between the target's footprint and the placed object's, enough
    # for the opening fingers (they reach ~5 cm from the centre) to miss a bowl's rim
    beside_gap: float = Field(default=0.035, ge=0.0)
    # push: the closed fingertips are the pusher
    push_speed: float = Field(default=0.06, gt=0.0, le=0.5)  # m/s along the stroke
    pusher_radius: float = Field(default=0.012, gt=0.0)  # half the closed fingertips' thickness
    push_standoff: float = Field(default=0.04, gt=0.0)  # free space behind the object where the pusher descends
    min_push_height: float = Field(default=0.015, gt=0.0)  # end effector above the table while pushing
    push_retreat: float = Field(default=0.03, ge=0.0)  # back off before lifting, so the fingers do not drag it


class ScriptedPolicy:
    """Executes the standard skills (fmrobot/control/skills.py) on the perceived scene."""

    Config = ScriptedPolicyConfig
    skills: Sequence[SkillSpec] = STANDARD_SKILLS

    def __init__(self, config: ScriptedPolicyConfig | None = None):
        self.config = config or ScriptedPolicyConfig()
        self._runner: SegmentRunner | None = None
        self._held: DetectedObject | None = None
        self._held_grasp_depth = 0.0
        # Objects this policy moved since `_scene` was perceived, where it put them.
        self._scene: SceneDescription | None = None
        self._moved: dict[str, DetectedObject] = {}

    # ------------------------------------------------------------------ Policy

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None:
        start = Action(
            ee_position=obs.robot.ee_pose.position,
            ee_orientation=obs.robot.ee_pose.orientation,
            gripper=0.0 if obs.robot.gripper_width > 0.9 * obs.robot.gripper_max_width else 1.0,
        )
        if scene is not self._scene:  # freshly perceived: it knows better than our bookkeeping
            self._scene, self._moved = scene, {}
        if call.skill == "pick":
            params = PickParameters.model_validate(dict(call.args))
            segments = self._pick(self._find(scene, params.object), obs, start)
        elif call.skill == "place":
            params = PlaceParameters.model_validate(dict(call.args))
            segments = self._place(self._find(scene, params.target), scene, obs, start)
        elif call.skill == "place_next_to":
            beside = PlaceNextToParameters.model_validate(dict(call.args))
            segments = self._place_next_to(self._find(scene, beside.target), beside.side, obs, start)
        elif call.skill == "place_between":
            between = PlaceBetweenParameters.model_validate(dict(call.args))
            segments = self._place_between(self._find(scene, between.first), self._find(scene, between.second),
                                           obs, start)
        elif call.skill == "push":
            push = PushParameters.model_validate(dict(call.args))
            segments = self._push(self._find(scene, push.object), self._find(scene, push.target), obs, start)
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

    # ------------------------------------------------------------------ what the policy knows of the scene

    def _find(self, scene: SceneDescription, label: str) -> DetectedObject:
        found = scene.find(label)
        return self._moved.get(found.label, found)

    def _others(self, scene: SceneDescription, *exclude: DetectedObject) -> list[DetectedObject]:
        """The scene's objects where they are now, except the held one and `exclude`."""
        skip = {o.label for o in exclude} | ({self._held.label} if self._held else set())
        return [self._moved.get(o.label, o) for o in scene.objects if o.label not in skip]

    def _moved_to(self, thing: DetectedObject, xy: tuple[float, float], bottom: float) -> None:
        self._moved[thing.label] = thing.model_copy(
            update={"position": (float(xy[0]), float(xy[1]), bottom + 0.5 * thing.extent[2])})

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
                 speed=c.approach_speed, tolerance=c.grasp_tolerance),
            Grip(name="pick: close", closure=1.0, seconds=c.close_seconds),
            Check(name="pick: grasp", condition=holding, failure=f"gripper closed on nothing at {target.label}"),
            Move(name="pick: lift", position=above, orientation=orientation, gripper=1.0, speed=c.approach_speed,
                 tolerance=c.tolerance),
            Check(name="pick: hold", condition=holding, failure=f"{target.label} slipped out while lifting"),
            Check(name="pick: done", condition=remember, failure=""),
        ]

    def _place(self, target: DetectedObject, scene: SceneDescription, obs: Observation,
               start: Action) -> list[Segment]:
        spot: tuple[float, float] | None = (target.position[0], target.position[1])
        if self._spreads(target):
            spot = self._free_spot(target, self._others(scene, target))
            if spot is None:
                return _fail("place", f"no free spot left in the {target.label}")
        # Released above the rim, it drops to the container's floor (or lies on the zone).
        return self._put_down("place", spot, target.top_z, target.top_z, obs, start, rests_on=_bottom(target))

    def _place_next_to(self, target: DetectedObject, side: str, obs: Observation, start: Action) -> list[Segment]:
        dx, dy = SIDE_DIRECTIONS[side]
        reach = 0.5 * (target.extent[0] if dx else target.extent[1]) + self.config.beside_gap + self._held_radius()
        spot = (target.position[0] + dx * reach, target.position[1] + dy * reach)
        return self._put_down("place_next_to", spot, _bottom(target), target.top_z, obs, start)

    def _place_between(self, first: DetectedObject, second: DetectedObject, obs: Observation,
                       start: Action) -> list[Segment]:
        a, b = np.asarray(first.position[:2]), np.asarray(second.position[:2])
        room = float(np.linalg.norm(a - b)) - _radius(first) - _radius(second)
        needed = 2 * self._held_radius()
        if room < needed:
            return _fail("place_between", f"no room between the {first.label} and the {second.label}: "
                                          f"{room * 100:.1f} cm free, the held object needs {needed * 100:.1f} cm")
        spot = tuple(float(v) for v in (a + b) / 2)
        return self._put_down("place_between", spot, min(_bottom(first), _bottom(second)),
                              max(first.top_z, second.top_z), obs, start)

    def _put_down(self, skill: str, spot: tuple[float, float], support: float, clear: float, obs: Observation,
                  start: Action, rests_on: float | None = None) -> list[Segment]:
        """Carry the held object over `spot` above everything up to height `clear`, lower it until its
        bottom is just above `support`, let go and back off upwards. It comes to rest with its bottom
        at `rests_on` (`support` unless said otherwise)."""
        c = self.config
        if obs.robot.gripper_width <= c.min_grasp_width:
            return _fail(skill, "the gripper holds nothing to place")
        held = self._held
        held_height = held.extent[2] if held else 0.05
        # The fingers hold the object `grasp depth` below its top, so its bottom hangs this far below them.
        hang = held_height - (self._held_grasp_depth if held else 0.02)
        x, y = spot
        orientation = start.ee_orientation
        carry_z = max(start.ee_position[2], clear + c.carry_clearance + hang,
                      self._tallest_on_the_way(start.ee_position[:2], spot) + c.obstacle_clearance + hang)
        release = (x, y, support + c.release_clearance + hang)
        over = (x, y, carry_z)

        def still_held(o: Observation) -> str | None:
            if o.robot.gripper_width <= c.min_grasp_width:
                return "the held object slipped out of the gripper"
            return None

        def forget(o: Observation) -> bool:
            if held is not None:
                self._moved_to(held, spot, support if rests_on is None else rests_on)
            self._held = None
            return True

        return [
            Move(name=f"{skill}: raise", position=(*start.ee_position[:2], carry_z), orientation=orientation,
                 gripper=1.0, speed=c.approach_speed, tolerance=c.tolerance, guard=still_held),
            Move(name=f"{skill}: carry", position=over, orientation=orientation, gripper=1.0, speed=c.speed,
                 tolerance=c.tolerance, guard=still_held),
            Move(name=f"{skill}: lower", position=release, orientation=orientation, gripper=1.0,
                 speed=c.approach_speed, tolerance=c.tolerance, guard=still_held),
            Grip(name=f"{skill}: release", closure=0.0, seconds=c.open_seconds),
            Move(name=f"{skill}: retreat", position=over, orientation=orientation, gripper=0.0,
                 speed=c.approach_speed, tolerance=c.tolerance),
            Check(name=f"{skill}: done", condition=forget, failure=""),
        ]

    def _push(self, thing: DetectedObject, target: DetectedObject, obs: Observation, start: Action) -> list[Segment]:
        """Slide `thing` along the table until its centre is on `target`'s: descend behind it on the line
        from the target through it, push through with the closed fingertips, back off and lift."""
        c = self.config
        here, goal = np.asarray(thing.position[:2]), np.asarray(target.position[:2])
        if _inside(thing, target):
            return [Check(name="push: done", condition=lambda o: True, failure="")]
        if self._held is not None and obs.robot.gripper_width > c.min_grasp_width:
            return _fail("push", f"the gripper holds the {self._held.label}; pushing needs an empty gripper")
        direction = (goal - here) / float(np.linalg.norm(goal - here))
        contact = 0.5 * min(thing.extent[:2]) + c.pusher_radius  # pusher centre to object centre, touching
        support = _bottom(thing)
        z = support + max(0.5 * thing.extent[2], c.min_push_height)
        safe_z = max(thing.top_z, target.top_z) + c.approach_height
        begin = here - direction * (contact + c.push_standoff)
        end = goal - direction * contact
        back = end - direction * c.push_retreat
        orientation = yaw_quaternion(_pusher_yaw(direction))

        def closed(o: Observation) -> bool:
            return o.robot.gripper_width <= c.min_grasp_width

        def moved(o: Observation) -> bool:
            self._moved_to(thing, (float(goal[0]), float(goal[1])), support)
            return True

        def point(xy: np.ndarray, height: float) -> tuple[float, float, float]:
            return (float(xy[0]), float(xy[1]), height)

        return [
            Move(name="push: raise", position=(*start.ee_position[:2], max(start.ee_position[2], safe_z)),
                 orientation=start.ee_orientation, gripper=start.gripper, speed=c.approach_speed,
                 tolerance=c.tolerance),
            Grip(name="push: close", closure=1.0, seconds=c.close_seconds),
            Check(name="push: closed", condition=closed,
                  failure="the fingers did not close: something is in the gripper, and pushing needs it empty"),
            Move(name="push: approach", position=point(begin, safe_z), orientation=orientation, gripper=1.0,
                 speed=c.speed, tolerance=c.tolerance),
            Move(name="push: descend", position=point(begin, z), orientation=orientation, gripper=1.0,
                 speed=c.approach_speed, tolerance=c.tolerance),
            Move(name="push: stroke", position=point(end, z), orientation=orientation, gripper=1.0,
                 speed=c.push_speed, tolerance=c.tolerance),
            Move(name="push: back off", position=point(back, z), orientation=orientation, gripper=1.0,
                 speed=c.approach_speed, tolerance=c.tolerance),
            Move(name="push: lift", position=point(back, safe_z), orientation=orientation, gripper=1.0,
                 speed=c.approach_speed, tolerance=c.tolerance),
            Check(name="push: done", condition=moved, failure=""),
        ]

    # ------------------------------------------------------------------ placement geometry

    def _tallest_on_the_way(self, start: Sequence[float], spot: Sequence[float]) -> float:
        """Top of the tallest object (besides the held one) that the held object would pass over
        or beside on a straight carry from `start` to `spot`; the table if there is none."""
        a, b = np.asarray(start[:2], dtype=float), np.asarray(spot[:2], dtype=float)
        span = b - a
        length2 = float(span @ span)
        tallest = 0.0
        for other in self._others(self._scene) if self._scene is not None else []:
            p = np.asarray(other.position[:2])
            t = 0.0 if length2 < 1e-12 else float(np.clip((p - a) @ span / length2, 0.0, 1.0))
            if np.linalg.norm(p - (a + t * span)) < _radius(other) + self._held_radius() + self.config.obstacle_clearance:
                tallest = max(tallest, other.top_z)
        return tallest

    def _held_radius(self) -> float:
        return _radius(self._held) if self._held else 0.025

    def _spreads(self, target: DetectedObject) -> bool:
        """Large or flat targets hold several objects side by side; bowls hold them at their centre."""
        return target.extent[2] < self.config.flat_height or min(target.extent[:2]) >= self.config.spread_width

    def _free_spot(self, target: DetectedObject, others: Sequence[DetectedObject]) -> tuple[float, float] | None:
        """The spot in the target's footprint farthest from what is already in it, preferring its centre
        once there is `spread_gap` of room; None when every spot overlaps another object."""
        c = self.config
        inset = 0.0 if target.extent[2] < c.flat_height else c.wall_inset
        radius = self._held_radius()
        half = [max(0.5 * e - inset - radius, 0.0) for e in target.extent[:2]]
        cx, cy = target.position[:2]
        xs = cx + np.arange(-half[0], half[0] + 1e-9, c.spread_step)
        ys = cy + np.arange(-half[1], half[1] + 1e-9, c.spread_step)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        if not len(grid):
            return None
        room = np.full(len(grid), np.inf)
        for other in others:
            free = np.linalg.norm(grid - np.asarray(other.position[:2]), axis=1) - _radius(other) - radius
            room = np.minimum(room, free)
        # Enough room is as good as more: among those, the one nearest the centre keeps the rest free.
        score = np.minimum(room, c.spread_gap) - 1e-3 * np.linalg.norm(grid - (cx, cy), axis=1)
        best = int(np.argmax(score))
        if room[best] < 0.0:
            return None
        return float(grid[best, 0]), float(grid[best, 1])


def _fail(skill: str, reason: str) -> list[Segment]:
    return [Check(name=skill, condition=lambda o: False, failure=reason)]


def _radius(thing: DetectedObject) -> float:
    """Half the object's footprint: enough room around its centre for it."""
    return 0.5 * max(thing.extent[0], thing.extent[1])


def _bottom(thing: DetectedObject) -> float:
    return thing.position[2] - 0.5 * thing.extent[2]


def _inside(thing: DetectedObject, region: DetectedObject) -> bool:
    """The object's centre well inside the region's footprint (a quarter of its size from the edge)."""
    return all(abs(thing.position[i] - region.position[i]) < 0.25 * region.extent[i] for i in (0, 1))


def _pusher_yaw(direction: np.ndarray) -> float:
    """Fingers side by side across the push, so their narrow edges make the pusher: the backs of
    the fingers bulge, and a bulge high up tips the object over instead of sliding it. Fingers
    are symmetric under half a turn, so the wrist never turns more than a quarter."""
    heading = math.atan2(direction[1], direction[0])
    return (heading + math.pi / 2) % math.pi - math.pi / 2


def _gripper_yaw(object_yaw: float | None) -> float:
    """Align the fingers with a face of a square footprint, turning as little as possible."""
    if object_yaw is None:
        return 0.0
    return (object_yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4
