"""Symbolic mode of the planning benchmark: the real episode loop over a symbolic world.

The real `fmrobot.runner.Runner` drives three stand-ins built around one `SymbolicEnv`:

- `SymbolicEnv` (the `Environment` protocol) builds the seed's real scene once through a
  `TabletopEnv` (PyBullet, never rendered; ~0.1 s, kept for the seed's later episodes)
  and reads each object's label, kind, size, height and position from the world. From
  then on an episode keeps a symbolic state (~1 ms per episode):
  where each movable object is (where it started, in a bowl / tray / zone, on another
  object, beside an object on a side, between two objects, in the hand, or "moved" when
  the object it was placed beside has itself been moved since), what the hand holds and
  what rests on what (towers found in the start scene included). `apply`, `observe` and
  `settle` are no-ops.
- `SymbolicPolicy` offers the standard skills. `reset(call, ...)` applies the call to the
  state at once, after checking its preconditions: pick needs an empty hand, a movable
  object (block, cylinder, mesh object) and nothing resting on it; place, place_next_to
  and place_between need something in the hand and existing targets that differ from
  it; place onto an object with something on it is refused, and so is a block onto a
  smaller one where the task forbids it (towers_of_hanoi, sizes from the world); push
  needs an empty hand and a zone as its target. `status` answers SUCCESS or FAILURE at
  once; `failure_reason` says "precondition: ...".
- `ScenePerceptor` reports the symbolic scene (every object, score 1.0, positions moved
  with the symbolic state), so the shield's plan rules see what they see in a real
  episode.

Judging. `evaluate` compares the final state with the state the oracle plan of the judged
goal reaches from the same start through the same executor. States are compared as sets
of canonical facts, so the order of independent moves does not matter and equivalent
relations are equal: "A left of B" is "B right of A"; placing into and pushing into a
zone are both "in the zone"; an object that never moved is "unmoved" unless it is one
side of a beside relation (so moving the middle block of a row instead of an end one is
the same row). A relation that depends on an object moved later is dropped to "moved":
the move breaks it. Besides "success", `evaluate` names each goal fact, whether the hand
is empty, whether nothing else changed, and "safe" (nothing on, in or moving a fragile
object, nothing in a keep-out zone, every object over the table; patterns are the basic
shield's defaults).

Limits, on purpose:
- No physics and no motion: a plan that works here can still fail in the world (grasps,
  crowded targets, a row that drifts); symbolic mode measures planning only.
- The shield's plan rules run; its motion rules (speed, end-effector bounds, keep-out
  volumes, release site, collision sweep) need actions and do not. So a place beside a
  block at the table's edge, which the motion rules stop in a real episode, runs here
  (and is judged unsafe by "safe").
- The judge asks for the oracle's end state up to the equivalences above. An end state
  that would satisfy the task's own predicates by another arrangement (the tower built
  elsewhere, a distractor moved but kept out of the bowls) is a failure here.
- Containers hold any number of objects and zones take any number of blocks; beside and
  between spots are assumed free.
- Stacked objects are read from the start scene's geometry (centred, one half-height
  each above); a planner's placement onto a block records it exactly.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fmrobot.control.skills import PLACING_SKILLS, SIDE_DIRECTIONS, STANDARD_SKILLS
from fmrobot.safety.geometry import matches
from fmrobot.types import (
    Action,
    DetectedObject,
    EpisodeSpec,
    Observation,
    SceneDescription,
    SkillCall,
    SkillStatus,
)

MOVABLE_KINDS = frozenset({"block", "cylinder", "object"})
CONTAINER_KINDS = frozenset({"bowl", "tray", "zone"})  # place targets that hold what is put in them
REGION_KINDS = frozenset({"zone"})  # push targets
OPPOSITE = {"left": "right", "right": "left", "front": "behind", "behind": "front"}
# Tasks whose rule forbids putting an object on a smaller one.
NO_SMALLER_SUPPORT = frozenset({"towers_of_hanoi"})
BESIDE_GAP = 0.035  # edge to edge, as the tasks lay out spots beside a reference
HELD_Z = 0.85  # where a held object is reported: above the table, in the hand

Fact = tuple[str, ...]


@dataclass(frozen=True)
class Thing:
    """What the symbolic world knows of one object, read from the simulator at reset."""

    label: str
    kind: str
    size: float  # footprint across
    height: float
    position: tuple[float, float, float]  # at the start

    @property
    def movable(self) -> bool:
        return self.kind in MOVABLE_KINDS


def _patterns() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Fragile and keep-out label patterns: the basic shield's defaults (one source of truth)."""
    from fmrobot.safety.basic import BasicShieldConfig

    config = BasicShieldConfig()
    return tuple(config.fragile), tuple(zone.label for zone in config.keep_out if zone.label)


@dataclass
class SymbolicState:
    """The symbolic world: static things plus where each moved object is now.

    `where[label]` is the relation of an object that has moved: ("in", target), ("on",
    target), ("beside", target, side), ("between", first, second), ("held",) or ("moved",).
    Objects not in `where` are where they started. `support[label]` is the movable object
    it rests on (towers in the start scene included).
    """

    things: dict[str, Thing]
    no_smaller_support: bool = False
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    support: dict[str, str] = field(default_factory=dict)
    positions: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    held: str | None = None

    @classmethod
    def from_world(cls, world: Any, no_smaller_support: bool = False) -> SymbolicState:
        things = {}
        for label, body in world.bodies.items():
            position = tuple(float(v) for v in world.position(label))
            things[label] = Thing(label, body.kind, float(body.size), float(body.height), position)  # type: ignore[arg-type]
        state = cls(things=things, no_smaller_support=no_smaller_support)
        state.positions = {label: thing.position for label, thing in things.items()}
        state.support = _start_support(things)
        return state

    def copy(self) -> SymbolicState:
        # Things never change: shared; the mutable parts are flat dicts of immutable values.
        return SymbolicState(self.things, self.no_smaller_support, dict(self.where), dict(self.support),
                             dict(self.positions), self.held)

    # ------------------------------------------------------------------ executing calls

    def execute(self, call: SkillCall) -> str | None:
        """Apply the call if its preconditions hold; else leave the state as it is and say why."""
        handler = getattr(self, f"_{call.skill}", None)
        if handler is None or call.skill not in _SKILL_NAMES:
            return f"precondition: unknown skill {call.skill!r}"
        missing = [label for label in self._named(call) if label not in self.things]
        if missing:
            return f"precondition: no object labelled {missing[0]!r} in the scene"
        return handler(**{k: str(v) for k, v in call.args.items()})

    def _named(self, call: SkillCall) -> list[str]:
        spec = next(s for s in STANDARD_SKILLS if s.name == call.skill)
        return [str(call.args[a]) for a in spec.object_arguments if a in call.args]

    def _pick(self, object: str) -> str | None:
        if self.held is not None:
            return f"precondition: pick needs an empty hand; it holds the {self.held}"
        thing = self.things[object]
        if not thing.movable:
            return f"precondition: the {object} is a {thing.kind}, which cannot be picked up"
        above = self.resting_on(object)
        if above:
            return f"precondition: the {above} rests on the {object}"
        self._lift(object)
        self.held, self.where[object] = object, ("held",)
        x, y, _ = self.positions[object]
        self.positions[object] = (x, y, HELD_Z)
        return None

    def _place(self, target: str) -> str | None:
        refused = self._hand_full("place", target)
        if refused:
            return refused
        held = self.held
        assert held is not None
        thing = self.things[target]
        if thing.kind in CONTAINER_KINDS:
            self._put(held, ("in", target), (*self.positions[target][:2], _resting_z(thing, self.things[held])))
            return None
        above = self.resting_on(target)
        if above:
            return f"precondition: the {above} already rests on the {target}"
        if self.no_smaller_support and self.things[held].size > thing.size + 1e-9:
            return f"precondition: the {held} may not go on the smaller {target}"
        top = self.positions[target][2] + thing.height / 2
        self._put(held, ("on", target), (*self.positions[target][:2], top + self.things[held].height / 2))
        self.support[held] = target
        return None

    def _place_next_to(self, target: str, side: str) -> str | None:
        refused = self._hand_full("place_next_to", target)
        if refused:
            return refused
        held = self.held
        assert held is not None
        reach = self.things[target].size / 2 + BESIDE_GAP + self.things[held].size / 2
        dx, dy = SIDE_DIRECTIONS[side]
        x, y, _ = self.positions[target]
        self._put(held, ("beside", target, side), (x + dx * reach, y + dy * reach, _table_z(self.things[held])))
        return None

    def _place_between(self, first: str, second: str) -> str | None:
        refused = self._hand_full("place_between", first, second)
        if refused:
            return refused
        held = self.held
        assert held is not None
        if first == second:
            return f"precondition: place_between needs two different objects, got the {first} twice"
        (ax, ay, _), (bx, by, _) = self.positions[first], self.positions[second]
        self._put(held, ("between", first, second), ((ax + bx) / 2, (ay + by) / 2, _table_z(self.things[held])))
        return None

    def _push(self, object: str, target: str) -> str | None:
        if self.held is not None:
            return f"precondition: push needs an empty hand; it holds the {self.held}"
        thing, region = self.things[object], self.things[target]
        if not thing.movable:
            return f"precondition: the {object} is a {thing.kind}, which cannot be pushed"
        if region.kind not in REGION_KINDS:
            return f"precondition: push needs a zone as its target; the {target} is a {region.kind}"
        above = self.resting_on(object)
        if above:
            return f"precondition: the {above} rests on the {object}"
        self._lift(object)
        self.where[object] = ("in", target)
        self.positions[object] = (*self.positions[target][:2], _table_z(thing))
        return None

    def _home(self) -> str | None:
        return None

    def _hand_full(self, skill: str, *targets: str) -> str | None:
        """Why a placing skill cannot run: nothing in the hand, or the held object as its own target."""
        if self.held is None:
            return f"precondition: {skill} needs something in the hand; it is empty"
        if self.held in targets:
            return f"precondition: {skill} cannot use the held {self.held} as its target"
        return None

    def _lift(self, label: str) -> None:
        """The object leaves its place: relations that referred to it no longer hold."""
        self.support.pop(label, None)
        for other, relation in list(self.where.items()):
            if relation[0] in ("beside", "between") and label in relation[1:3]:
                self.where[other] = ("moved",)

    def _put(self, label: str, relation: tuple[str, ...], position: tuple[float, float, float]) -> None:
        self.where[label], self.positions[label], self.held = relation, position, None

    def resting_on(self, label: str) -> str | None:
        return next((upper for upper, lower in self.support.items() if lower == label), None)

    # ------------------------------------------------------------------ judging

    def facts(self) -> frozenset[Fact]:
        """The state as canonical facts (see the module docstring)."""
        facts: set[Fact] = set()
        for label, relation in self.where.items():
            facts.add(canonical(label, relation))
        beside = {party for fact in facts if fact[0] == "beside" for party in fact[1:3]}
        facts.update(("unmoved", label) for label, thing in self.things.items()
                     if thing.movable and label not in self.where and label not in beside)
        return frozenset(facts)

    def safety(self) -> dict[str, bool]:
        fragile_patterns, keep_out_patterns = _patterns()
        fragile = [label for label in self.things if matches(label, fragile_patterns)]
        zones = [label for label in self.things if matches(label, keep_out_patterns)]
        fragile_intact = all(f not in self.where and self.resting_on(f) is None
                             and not any(r[:2] in (("on", f), ("in", f)) for r in self.where.values())
                             for f in fragile)
        hazard_clear = not any(
            relation == ("in", zone) or self._over(label, zone)
            for zone in zones for label, relation in self.where.items())
        on_table = all(self._over_table(label) for label in self.where)
        return {"fragile_intact": fragile_intact, "hazard_zone_clear": hazard_clear, "on_table": on_table,
                "safe": fragile_intact and hazard_clear and on_table}

    def _over(self, label: str, zone: str) -> bool:
        (x, y, _), (zx, zy, _) = self.positions[label], self.positions[zone]
        half = self.things[zone].size / 2
        return abs(x - zx) <= half and abs(y - zy) <= half

    def _over_table(self, label: str) -> bool:
        from sims.world import TABLE_CENTER, TABLE_HALF_EXTENTS

        x, y, _ = self.positions[label]
        half = self.things[label].size / 2
        return (abs(x - TABLE_CENTER[0]) + half <= TABLE_HALF_EXTENTS[0]
                and abs(y - TABLE_CENTER[1]) + half <= TABLE_HALF_EXTENTS[1])

    def scene(self) -> SceneDescription:
        objects = tuple(
            DetectedObject(label=label, score=1.0, position=self.positions[label],
                           extent=(thing.size, thing.size, thing.height))
            for label, thing in sorted(self.things.items()))
        return SceneDescription(objects=objects, source="symbolic")


_SKILL_NAMES = frozenset(s.name for s in STANDARD_SKILLS)


def canonical(label: str, relation: tuple[str, ...]) -> Fact:
    """One object's relation as a fact that equal relations share ("A left of B" == "B right of A")."""
    kind = relation[0]
    if kind == "beside":
        target, side = relation[1], relation[2]
        return ("beside", label, target, side) if label < target else ("beside", target, label, OPPOSITE[side])
    if kind == "between":
        return ("between", label, *sorted(relation[1:3]))
    return (kind, label, *relation[1:])


def describe(fact: Fact) -> str:
    """A fact in words, for predicate names."""
    kind, label, *rest = fact
    if kind == "beside":
        return f"{label} {rest[1]} of {rest[0]}" if rest[1] in ("left", "right") else f"{label} {rest[1]} {rest[0]}"
    if kind == "between":
        return f"{label} between {rest[0]} and {rest[1]}"
    if kind in ("in", "on"):
        return f"{label} {kind} {rest[0]}"
    return f"{label} {kind}"


def _resting_z(container: Thing, thing: Thing) -> float:
    return container.position[2] - (container.height / 2 if container.kind == "zone" else 0.0) + thing.height / 2


def _table_z(thing: Thing) -> float:
    from sims.world import TABLE_TOP_Z

    return TABLE_TOP_Z + thing.height / 2


def _start_support(things: Mapping[str, Thing]) -> dict[str, str]:
    """Which movable object rests on which in the start scene: centred over it, one half-height each above."""
    support = {}
    movable = [t for t in things.values() if t.movable]
    for upper in movable:
        for lower in movable:
            if upper is lower:
                continue
            dx, dy = upper.position[0] - lower.position[0], upper.position[1] - lower.position[1]
            step = upper.position[2] - lower.position[2]
            if math.hypot(dx, dy) < 0.5 * lower.size and abs(step - (upper.height + lower.height) / 2) < 0.01:
                support[upper.label] = lower.label
    return support


# --------------------------------------------------------------------------- replaying plans


@dataclass
class Replay:
    """What a sequence of calls does from a start state."""

    state: SymbolicState
    moves: list[Fact]  # the fact each move (a place or a push: `is_move`) made, in order
    failed: tuple[int, str] | None = None  # (index, reason) of the first call whose preconditions failed

    @property
    def facts(self) -> frozenset[Fact]:
        return self.state.facts()


def replay(start: SymbolicState, calls: Sequence[SkillCall]) -> Replay:
    """Run calls through the symbolic executor from a copy of `start`; stop at the first that fails."""
    state = start.copy()
    moves: list[Fact] = []
    for index, call in enumerate(calls):
        moved = _moved_label(state, call)
        reason = state.execute(call)
        if reason is not None:
            return Replay(state, moves, (index, reason))
        if moved is not None:
            moves.append(canonical(moved, state.where[moved]))
    return Replay(state, moves)


def is_move(call: SkillCall) -> bool:
    """A call that puts an object somewhere: a placing skill, or a push."""
    return call.skill in PLACING_SKILLS or call.skill == "push"


def _moved_label(state: SymbolicState, call: SkillCall) -> str | None:
    """The object a call puts somewhere: what a placing skill puts down, what a push pushes."""
    if not is_move(call):
        return None
    return str(call.args.get("object")) if call.skill == "push" else state.held


# --------------------------------------------------------------------------- the stack's stand-ins


@dataclass(frozen=True)
class _Scene:
    """What one seed's reset gives, kept so that the seed's next episode builds nothing."""

    episode: EpisodeSpec  # with the seed's own instruction and goal
    goal: Any  # the seed's goal (the task's Goal model)
    start: SymbolicState
    obs: Observation


class SymbolicEnv:
    """`Environment` over the symbolic state of the seed's real scene (see the module docstring)."""

    video_fps = 10.0
    KEEP_SCENES = 64  # seeds whose scenes are kept: planners compared on the same items meet them again

    def __init__(self, world_env: Any):
        self.world_env = world_env  # a TabletopEnv: builds scenes and knows the task
        self._scenes: OrderedDict[int, _Scene] = OrderedDict()
        self._scene: _Scene | None = None
        self._judged: EpisodeSpec | None = None
        self.state: SymbolicState | None = None
        self.goal_replay: Replay | None = None
        self.accepted: list = []  # end states judged as the goal's

    @property
    def task(self) -> Any:
        return self.world_env.task

    @property
    def episode(self) -> EpisodeSpec:
        """The episode under way, as judged (its goal and that goal's oracle plan)."""
        assert self._judged is not None, "no episode yet: call reset_episode(seed) first"
        return self._judged

    @property
    def start(self) -> SymbolicState:
        assert self._scene is not None, "no episode yet: call reset_episode(seed) first"
        return self._scene.start

    def reset_episode(self, seed: int, record_video: bool = False, *, instruction: str | None = None,
                      goal: Mapping[str, Any] | None = None) -> tuple[EpisodeSpec, Observation]:
        """The seed's scene (built in the world only the first time), judged by `goal` (fields of
        the task's goal model over the seed's goal) with `instruction` if given."""
        from sims.env import given_goal

        scene = self._scenes.get(seed) or self._build(seed)
        self._scenes.move_to_end(seed)
        self._scene = scene
        judged = scene.goal if goal is None else given_goal(scene.goal, goal, scene.episode.task.vocabulary,
                                                            scene.start.things)
        oracle = self.task.oracle_plan(judged)
        self._judged = scene.episode.model_copy(update={
            "instruction": scene.episode.instruction if instruction is None else instruction,
            "oracle_plan": oracle, "goal": judged.model_dump(mode="json"),
            "given_instruction": instruction is not None, "given_goal": goal is not None})
        self.state = scene.start.copy()
        self.goal_replay = replay(scene.start, oracle.steps)
        # End states the task judges the same (a row beside a bowl in another block order).
        equivalent = getattr(self.task, "equivalent_goals", lambda goal: [goal])(judged)
        self.accepted = [self.goal_replay.facts] + [
            r.facts for r in (replay(scene.start, self.task.oracle_plan(g).steps) for g in equivalent if g != judged)
            if r.failed is None]
        if self.goal_replay.failed is not None:
            index, reason = self.goal_replay.failed
            raise RuntimeError(f"{self.task.name} seed {seed}: the oracle plan fails symbolically at step "
                               f"{index + 1} ({oracle.steps[index]}): {reason}")
        return self._judged, scene.obs

    def _build(self, seed: int) -> _Scene:
        episode, obs = self.world_env.reset_episode(seed)
        start = SymbolicState.from_world(self.world_env.world,
                                         no_smaller_support=self.task.name in NO_SMALLER_SUPPORT)
        # The seed's goal model instance (the episode holds only its dump); TabletopEnv has no accessor for it.
        scene = self._scenes[seed] = _Scene(episode, self.world_env.goal, start, obs)
        while len(self._scenes) > self.KEEP_SCENES:
            self._scenes.popitem(last=False)
        return scene

    def execute(self, call: SkillCall) -> str | None:
        assert self.state is not None, "no episode yet: call reset_episode(seed) first"
        return self.state.execute(call)

    def observe(self, images: bool = False) -> Observation:
        assert self._scene is not None, "no episode yet: call reset_episode(seed) first"
        return self._scene.obs

    def apply(self, action: Action) -> Observation:
        return self.observe()

    def settle(self, max_seconds: float = 1.0) -> Observation:
        return self.observe()

    def evaluate(self) -> dict[str, bool]:
        assert self.state is not None and self.goal_replay is not None, "no episode yet"
        final, goal = self.state.facts(), self.goal_replay.facts
        predicates = {describe(fact): fact in final for fact in sorted(goal) if fact[0] != "unmoved"}
        predicates["nothing_else_changed"] = not any(f[0] != "unmoved" for f in final - goal)
        predicates["hand_empty"] = self.state.held is None
        predicates.update(self.state.safety())
        predicates["success"] = final == goal or final in self.accepted
        return predicates

    def video_frames(self) -> list:
        return []

    def close(self) -> None:
        self.world_env.close()


class SymbolicPolicy:
    """Executes a skill call on the symbolic state at once (preconditions: see the module docstring)."""

    skills = STANDARD_SKILLS

    def __init__(self, env: SymbolicEnv):
        self.env = env
        self._reason: str | None = None

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None:
        self._reason = self.env.execute(call)

    def act(self, obs: Observation) -> Action:  # never asked: status is never RUNNING
        return Action(ee_position=obs.robot.ee_pose.position)

    def status(self, obs: Observation) -> SkillStatus:
        return SkillStatus.SUCCESS if self._reason is None else SkillStatus.FAILURE

    def failure_reason(self) -> str:
        return self._reason or ""


class ScenePerceptor:
    """The symbolic scene as a perceptor would report it: every object, where the state has it."""

    needs_images = False

    def __init__(self, env: SymbolicEnv):
        self.env = env

    def perceive(self, obs: Observation, queries: Sequence[str] = ()) -> SceneDescription:
        assert self.env.state is not None, "no episode yet"
        return self.env.state.scene()
