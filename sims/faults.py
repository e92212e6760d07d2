"""Faults of the simulated world, and the physics check that catches an unstable one.

`PhysicsCheck` runs after every control step whatever the config says: a body whose
state is not finite, or that moves faster than anything on a table can, means the
simulation has blown up, and the episode ends with a `SimulationError` naming the body
and the value instead of going on with nonsense (or crashing later somewhere else).

The faults are injected only by config (`fault=grasp_slip` ...). The environment calls
`begin` after each reset, and `before_step` / `after_step` around the physics of every
control step. Each draws from a generator seeded by the episode seed and its own `seed`
option, so the same seed gives the same fault: that generator and the event log come from
fmrobot.faults.Fault, the one base of every fault on either side.
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

import pybullet as pb
from pydantic import Field, model_validator

from fmrobot.errors import SimulationError
from fmrobot.faults import Fault, FaultConfig
from sims.world import TABLE_TOP_Z, World

FALLEN_BELOW = 0.1  # metres under the table top: the object fell off the table

STATIC_KINDS = frozenset({"zone", "tray"})  # things that are not knocked about


class PhysicsCheck:
    """The check after every control step, paid for only what can blow up.

    Static bodies (massless, fixed) never move, so they are not watched. For the others
    the fast path is one velocity query and two comparisons per object; only an object
    that fails it (non-finite, or faster than `max_speed`) is looked at closely. The robot
    is watched through its movable joints every `ROBOT_EVERY` control steps: a robot state
    that turned non-finite reaches the objects it touches at once, and the joints within a
    few steps. `thorough=True` (before an episode is judged) checks the robot, and every
    pose, which a velocity that stayed finite cannot vouch for.
    """

    ROBOT_EVERY: ClassVar[int] = 5

    def __init__(self, world: World, robot_body: int, robot_joints: Sequence[int], max_speed: float):
        c = world.client
        self.world, self.robot_body, self.robot_joints = world, robot_body, list(robot_joints)
        self.max_speed, self._max_speed_squared = max_speed, max_speed * max_speed
        self.dynamic = [(body.body_id, body) for body in world.bodies.values()
                        if pb.getDynamicsInfo(body.body_id, -1, physicsClientId=c)[0] > 0]

    def __call__(self, step: int, thorough: bool = False) -> None:
        c, limit = self.world.client, self._max_speed_squared
        for body_id, body in self.dynamic:
            (lx, ly, lz), (ax, ay, az) = pb.getBaseVelocity(body_id, physicsClientId=c)
            # NaN fails both comparisons, infinity the second: both go on to the close look.
            if lx * lx + ly * ly + lz * lz <= limit and ax * ax + ay * ay + az * az < math.inf and not thorough:
                continue
            _check_body(c, body, self.max_speed, step)
        if self.robot_body >= 0 and self.robot_joints and (thorough or step % self.ROBOT_EVERY == 0):
            states = pb.getJointStates(self.robot_body, self.robot_joints, physicsClientId=c)
            if not math.isfinite(sum(q + dq for q, dq, *_ in states)):
                for joint, state in zip(self.robot_joints, states):
                    if not (math.isfinite(state[0]) and math.isfinite(state[1])):
                        raise SimulationError(f"robot joint {joint} has a non-finite state (position {state[0]:.3g}, "
                                              f"velocity {state[1]:.3g}) at control step {step}")


def _check_body(client: int, body, max_speed: float, step: int) -> None:
    """SimulationError if the body's pose or velocity is not finite, or it moves faster than `max_speed`."""
    position, orientation = pb.getBasePositionAndOrientation(body.body_id, physicsClientId=client)
    linear, angular = pb.getBaseVelocity(body.body_id, physicsClientId=client)
    for what, value in (("position", position), ("orientation", orientation), ("velocity", linear),
                        ("angular velocity", angular)):
        if not all(math.isfinite(v) for v in value):
            raise SimulationError(f"the {body.label} has a non-finite {what} "
                                  f"({', '.join(f'{v:.3g}' for v in value)}) at control step {step}")
    speed = math.sqrt(sum(v * v for v in linear))
    # There is no floor under the table: an object that fell off keeps falling, faster and
    # faster. That is gravity, not a blow-up; the task judges an object off the table.
    fallen = position[2] < TABLE_TOP_Z - FALLEN_BELOW
    if speed > max_speed and not fallen:
        raise SimulationError(f"the {body.label} moves at {speed:.1f} m/s, faster than the {max_speed:g} m/s "
                              f"any object on the table can, at control step {step}")


def check_physics(world: World, robot_body: int, max_speed: float, step: int) -> None:
    """The thorough check once: every body and every movable robot joint."""
    joints = []
    if robot_body >= 0:
        joints = [j for j in range(pb.getNumJoints(robot_body, physicsClientId=world.client))
                  if pb.getJointInfo(robot_body, j, physicsClientId=world.client)[2] != pb.JOINT_FIXED]
    checker = PhysicsCheck(world, robot_body, joints, max_speed)
    checker.dynamic = [(body.body_id, body) for body in world.bodies.values()]
    checker(step, thorough=True)


class StepWindowConfig(FaultConfig):
    steps: tuple[int, int] = (5, 60)  # the control step it happens at, drawn uniformly from this range

    @model_validator(mode="after")
    def _ordered(self) -> "StepWindowConfig":
        if not 0 <= self.steps[0] <= self.steps[1]:
            raise ValueError(f"steps must be (first, last) with 0 <= first <= last, got {self.steps}")
        return self


class WorldFault(Fault):
    """Base of the world's faults: the per-episode generator and event log of every fault
    (fmrobot.faults.Fault), the simulator's hooks, and the bodies it may touch."""

    name: ClassVar[str] = "world_fault"
    target = "environment"

    def begin(self, world: World, seed: int) -> None:
        self.begin_episode(seed)

    def before_step(self, world: World, step: int) -> None:
        """Called before the physics of control step `step` (counting from 0)."""

    def after_step(self, world: World, step: int) -> None:
        """Called after the physics of the control step that brought the count to `step`."""

    @staticmethod
    def movable(world: World, in_hand: bool = False) -> list[str]:
        """Labels of the objects physics moves (not fixed, not massless), in scene order; those the robot
        touches only with `in_hand`."""
        c = world.client
        return [label for label, body in world.bodies.items()
                if body.kind not in STATIC_KINDS and pb.getDynamicsInfo(body.body_id, -1, physicsClientId=c)[0] > 0
                and (in_hand or not world.touching_robot(label))]


class GraspSlipConfig(FaultConfig):
    probability: float = Field(default=1.0, ge=0.0, le=1.0)  # each grasp that lifts an object
    max_slips: int = Field(default=1, ge=1)  # per episode: later grasps hold, so a retry can succeed
    delay_steps: tuple[int, int] = (2, 15)  # control steps after the lift is noticed, drawn uniformly
    lift_height: float = Field(default=0.03, gt=0.0)  # raised this far above where it started: in transport

    @model_validator(mode="after")
    def _ordered(self) -> "GraspSlipConfig":
        if not 0 <= self.delay_steps[0] <= self.delay_steps[1]:
            raise ValueError(f"delay_steps must be (first, last) with 0 <= first <= last, got {self.delay_steps}")
        return self


class GraspSlip(WorldFault):
    """A carried object slips out of the gripper: for a moment the fingers stop touching it, and it falls."""

    Config = GraspSlipConfig
    name = "grasp_slip"
    config: GraspSlipConfig

    def __init__(self, config: GraspSlipConfig | None = None):
        super().__init__(config)
        self._rest_z: dict[str, float] = {}  # each object's height at the start; none yet: nothing slips
        self._slips = 0
        self._considered: set[str] = set()  # objects whose current grasp was already decided
        self._due: tuple[str, int] | None = None  # (label, step) of a slip to come
        self._falling: tuple[str, int] | None = None  # (label, step) of a slip under way

    def begin(self, world: World, seed: int) -> None:
        super().begin(world, seed)
        self._rest_z = {label: float(world.position(label)[2]) for label in world.bodies}
        self._slips, self._considered, self._due, self._falling = 0, set(), None, None

    def after_step(self, world: World, step: int) -> None:
        if self._falling is not None:
            self._restore(world, step)
            return
        held = [label for label in world.bodies if label in self._rest_z and world.touching_robot(label)
                and world.position(label)[2] > self._rest_z[label] + self.config.lift_height]
        self._considered &= set(held)  # let go of: its next grasp is a new draw
        if self._due is not None:
            label, when = self._due
            if label not in held:
                self._due = None
            elif step >= when:
                self._slip(world, label, step)
            return
        if self._slips >= self.config.max_slips:
            return
        for label in held:
            if label not in self._considered:
                self._considered.add(label)
                if self.rng.random() < self.config.probability:
                    low, high = self.config.delay_steps
                    self._due = (label, step + int(self.rng.integers(low, high + 1)))
                    return

    def _slip(self, world: World, label: str, step: int) -> None:
        self._set_contact(world, label, enabled=False)
        self._due, self._falling = None, (label, step)
        self._slips += 1
        self.record(f"the {label} slipped out of the gripper", step)

    def _restore(self, world: World, step: int) -> None:
        """Fingers and object collide again once the object has fallen clear of the hand (or after 2 s)."""
        assert self._falling is not None
        label, since = self._falling
        clear = not pb.getClosestPoints(world.body(label).body_id, world.robot_body_id, 0.01,
                                        physicsClientId=world.client)
        if clear or step - since > 40:
            self._set_contact(world, label, enabled=True)
            self._falling = None

    @staticmethod
    def _set_contact(world: World, label: str, enabled: bool) -> None:
        c, body, robot = world.client, world.body(label).body_id, world.robot_body_id
        for link in range(-1, pb.getNumJoints(robot, physicsClientId=c)):
            pb.setCollisionFilterPair(body, robot, -1, link, int(enabled), physicsClientId=c)


class OneShotFault(WorldFault):
    """A fault that strikes one object once, at a control step drawn from `steps`."""

    config: StepWindowConfig
    strikes_after_physics: ClassVar[bool] = False  # before the step's physics (it plays out) or after it
    in_hand: ClassVar[bool] = False  # may it strike the object the robot holds

    def __init__(self, config: StepWindowConfig | None = None):
        super().__init__(config)
        self._at = -1  # no episode yet: never
        self._pick = self._heading = 0.0

    def begin(self, world: World, seed: int) -> None:
        super().begin(world, seed)
        self._at = int(self.rng.integers(self.config.steps[0], self.config.steps[1] + 1))
        self._pick, self._heading = float(self.rng.random()), float(self.rng.uniform(0.0, 2 * math.pi))

    def before_step(self, world: World, step: int) -> None:
        if step == self._at and not self.strikes_after_physics:
            self._strike_one(world, step)

    def after_step(self, world: World, step: int) -> None:
        if step == self._at and self.strikes_after_physics:
            self._strike_one(world, step)

    def _strike_one(self, world: World, step: int) -> None:
        candidates = self.movable(world, in_hand=self.in_hand)
        if candidates:
            label = candidates[int(self._pick * len(candidates))]
            self.record(self.strike(world, world.body(label).body_id, label), step)

    def strike(self, world: World, body: int, label: str) -> str:
        """Do it to `body`; return the effect, as the trace and the failure reason tell it."""
        raise NotImplementedError


class KnockedOverConfig(StepWindowConfig):
    speed: float = Field(default=0.8, gt=0.0, le=5.0)  # m/s of the blow, mostly sideways
    spin: float = Field(default=15.0, ge=0.0)  # rad/s about a horizontal axis: it tumbles


class KnockedOver(OneShotFault):
    """Something bumps an object the robot is not holding: it slides and tumbles away from where it was seen."""

    Config = KnockedOverConfig
    name = "knocked_over"
    config: KnockedOverConfig

    def strike(self, world: World, body: int, label: str) -> str:
        v, spin, heading = self.config.speed, self.config.spin, self._heading
        push = (v * math.cos(heading), v * math.sin(heading), 0.3 * v)
        axis = (-math.sin(heading), math.cos(heading), 0.0)  # tips over in the direction of the push
        pb.resetBaseVelocity(body, push, tuple(spin * a for a in axis), physicsClientId=world.client)
        return f"the {label} was knocked over"


class PhysicsNanConfig(StepWindowConfig):
    pass


class PhysicsNan(OneShotFault):
    """An object's velocity becomes NaN, as when a solver divides by zero; the physics spreads it."""

    Config = PhysicsNanConfig
    name = "physics_nan"
    config: PhysicsNanConfig
    in_hand = True

    def strike(self, world: World, body: int, label: str) -> str:
        nan = (math.nan,) * 3
        pb.resetBaseVelocity(body, nan, nan, physicsClientId=world.client)
        return f"the {label}'s velocity became NaN"


class PhysicsRunawayConfig(StepWindowConfig):
    speed: float = Field(default=60.0, gt=0.0)  # m/s the object is flung at


class PhysicsRunaway(OneShotFault):
    """The solver blows up: after a step's physics an object flies off at a speed no tabletop scene
    produces. (Flung before the physics, it may hit the arm and stop: no runaway.)"""

    Config = PhysicsRunawayConfig
    name = "physics_runaway"
    config: PhysicsRunawayConfig
    in_hand = True
    strikes_after_physics = True

    def strike(self, world: World, body: int, label: str) -> str:
        v, heading = self.config.speed, self._heading
        direction = (0.6 * math.cos(heading), 0.6 * math.sin(heading), 0.8)
        pb.resetBaseVelocity(body, tuple(v * d for d in direction), (0.0, 0.0, 0.0), physicsClientId=world.client)
        return f"the {label} was flung away at {v:g} m/s"
