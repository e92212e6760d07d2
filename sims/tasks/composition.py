"""Task composition for generalization level L4: any task, then a spatial placement.

`ComposedTask` wraps a task: it sets up the task's scene, adds one more movable object
in a colour the scene does not use, and appends a clause from another task family to
the instruction ("..., then put the teal cylinder to the left of the navy bowl"). No task
asks for such a pair at L1-L3, so a stack that learned tasks one at a time meets an
unseen composition. Success needs the task's own success and the clause's.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, SerializeAsAny

from fmrobot.types import Plan, SkillCall, TaskSpec
from sims.tasks.base import Goal, Task, free_spot
from sims.tasks.blocks_and_bowls import add_movable, at_rest
from sims.tasks.regions import SIDE_DIRECTIONS, SIDE_WORDS, beside
from sims.world import World

REFERENCE_KINDS = ("bowl", "zone", "tray")  # objects that stay put, preferred as references
CLEARANCE = 0.045  # room around the added object: the open fingers reach ~4.5 cm from its centre
EXTRA_STEPS = 500  # control steps the clause may add to the task's budget


class SpatialClause(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    object: str
    side: str
    reference: str


class ComposedGoal(Goal):
    main: SerializeAsAny[Goal]
    clause: SpatialClause


class ComposedTask(Task[ComposedGoal]):
    """`inner`, then put one more object beside one of the scene's objects."""

    def __init__(self, inner: Task):
        self.inner = inner
        self.config = inner.config
        self.level = inner.level
        self.name = inner.name

    def spec(self) -> TaskSpec:
        inner = self.inner.spec()
        skills = inner.skills + tuple(s for s in ("pick", "place_next_to") if s not in inner.skills)
        extra = tuple(f"{c} {self.shape}" for c in self.palette(()) if f"{c} {self.shape}" not in inner.vocabulary)
        return inner.model_copy(update={
            "description": f"{inner.description} Then put one more object beside a named one.",
            "skills": skills, "vocabulary": inner.vocabulary + extra, "max_steps": inner.max_steps + EXTRA_STEPS,
        })

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, ComposedGoal]:
        instruction, main = self.inner.setup(world, rng)
        used = {body.color for body in world.bodies.values()}
        free = [c for c in self.palette(()) if c not in used]
        if not free:
            raise ValueError(f"level {self.level.name if self.level else None}: no colour left for the composed "
                             f"clause; the scene uses {sorted(used)}")
        color = free[int(rng.integers(len(free)))]
        label = f"{color} {self.shape}"
        add_movable(world, rng, self.shape, label, color, self._free_spot(world, rng), size=0.04)
        references = [name for name, body in world.bodies.items() if body.kind in REFERENCE_KINDS] or [
            name for name, body in world.bodies.items() if name != label and body.kind != "clutter"]
        reference = references[int(rng.integers(len(references)))]
        side = self._open_side(world, rng, reference, label)
        clause = SpatialClause(object=label, side=side, reference=reference)
        text = f"{instruction}, then put the {label} {SIDE_WORDS[side]} the {reference}"
        return text, ComposedGoal(main=main, clause=clause)

    def predicates(self, world: World, goal: ComposedGoal) -> dict[str, bool]:
        main = self.inner.predicates(world, goal.main)
        c = goal.clause
        clause = {
            f"{c.object} {c.side} of {c.reference}": beside(world, c.object, c.reference, c.side),
            f"{c.object} at rest": at_rest(world, c.object),
            f"{c.object} released": not world.touching_robot(c.object),
        }
        task = {f"task: {name}": ok for name, ok in main.items() if name != "success"}
        return {**task, **clause, "task_success": main["success"], "success": main["success"] and all(clause.values())}

    def oracle_plan(self, goal: ComposedGoal) -> Plan:
        c = goal.clause
        steps = self.inner.oracle_plan(goal.main).steps + (
            SkillCall(skill="pick", args={"object": c.object}),
            SkillCall(skill="place_next_to", args={"target": c.reference, "side": c.side}),
        )
        return Plan(steps=steps)

    # ------------------------------------------------------------------ layout

    def _free_spot(self, world: World, rng: np.random.Generator) -> tuple[float, float]:
        x_range, y_range = self.workspace()
        taken = [(world.position(name)[:2], body.size / 2) for name, body in world.bodies.items()]
        xy = free_spot(rng, CLEARANCE, x_range, y_range, taken, gap=0.02, tries=2000)
        if xy is not None:
            return float(xy[0]), float(xy[1])
        raise ValueError(f"{self.name}: no room for the composed clause's object in x={x_range}, y={y_range}")

    def _open_side(self, world: World, rng: np.random.Generator, reference: str, label: str) -> str:
        """A side of the reference with room for the object now, if any (objects may still move there)."""
        (x0, x1), (y0, y1) = self.workspace()
        centre = world.position(reference)[:2]
        spot_distance = world.body(reference).size / 2 + 0.02 + CLEARANCE
        others = [(world.position(n)[:2], b.size / 2) for n, b in world.bodies.items() if n not in (reference, label)]
        sides = list(rng.permutation(list(SIDE_DIRECTIONS)))
        for side in sides:
            spot = centre + spot_distance * np.asarray(SIDE_DIRECTIONS[side])
            inside = x0 <= spot[0] <= x1 and y0 <= spot[1] <= y1
            if inside and all(np.hypot(*(spot - p)) >= r + CLEARANCE for p, r in others):
                return str(side)
        return str(sides[0])
