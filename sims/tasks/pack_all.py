"""pack_all: put every object on the table into the tray (CLIPort's packing, VIMA's rearrange-into).

The scene holds one tray and `num_objects` blocks (cylinders at levels L3+) of distinct
colours around it. The tray holds them all side by side: its flat floor is 70% of its
width (the rest is sloped wall), so several objects fit only if each goes to a free
spot, not to its centre; the scripted `place` picks such a spot for a target this wide.

The instruction names no object, so the plan depends on the scene: the templates carry
no plan (`plan=()`), and the oracle plan picks and places each object in turn.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.objects import COLORS
from sims.tasks.base import Goal, Task, TaskConfig
from sims.tasks.blocks_and_bowls import add_movable
from sims.tasks.domain import labels_of, listed
from sims.tasks.judging import judged, settled
from sims.tasks.regions import SIDE_DIRECTIONS, SIDE_WORDS, TRAY_FLOOR_FRACTION, check_colors, in_tray
from sims.world import World

TEMPLATES = (
    "pack all the {shape}s into the tray",
    "put every {shape} in the tray",
    "put all the {shape}s in the tray",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+
    "clear the table by putting each {shape} into the tray",
    "the tray should end up holding every {shape}",
)
TRAY = "tray"


class PackAllConfig(TaskConfig):
    colors: tuple[str, ...] = tuple(COLORS)
    num_objects: int = Field(default=4, ge=1, le=5)
    object_size: float = Field(default=0.04, ge=0.02, le=0.05)
    tray_size: float = Field(default=0.24, ge=0.18, le=0.32)  # across, walls included
    # Room kept free around each object and between objects and the tray's rim: the open
    # fingers reach ~5 cm from the object's centre and the tray's wall is ~5 cm tall.
    object_room: float = Field(default=0.05, ge=0.0, le=0.1)
    workspace_x: tuple[float, float] = (0.30, 0.70)
    workspace_y: tuple[float, float] = (-0.30, 0.30)
    max_steps: int = Field(default=1800, gt=0)  # ~3x what the scripted policy needs for 5 objects
    layout_tries: int = Field(default=5000, ge=1)  # object positions drawn before a layout is an error

    @model_validator(mode="after")
    def _check(self) -> "PackAllConfig":
        check_colors(self.colors, self.num_objects, f"{self.num_objects} objects")
        floor = TRAY_FLOOR_FRACTION * self.tray_size
        per_side = math.ceil(math.sqrt(self.num_objects))
        if per_side * self.object_size * math.sqrt(2) > floor:
            raise ValueError(f"{self.num_objects} objects of {self.object_size} m do not fit side by side on the "
                             f"floor of a {self.tray_size} m tray ({floor:.3f} m across); use a larger tray or "
                             "fewer or smaller objects")
        for low, high in (self.workspace_x, self.workspace_y):
            if high - low < self.tray_size + 2 * self.object_room:
                raise ValueError(f"the workspace {self.workspace_x} x {self.workspace_y} is too small for a "
                                 f"{self.tray_size} m tray with objects around it")
        return self


class PackAllGoal(Goal):
    objects: tuple[str, ...]  # in the order the oracle plan packs them


class PackAll(Task[PackAllGoal]):
    name = "pack_all"
    Config = PackAllConfig
    config: PackAllConfig

    def spec(self) -> TaskSpec:
        colors = self.palette(self.config.colors)
        return TaskSpec(
            name=self.name,
            description="Put every object on the table into the tray.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t.format(shape=self.shape), plan=()) for t in TEMPLATES),
            vocabulary=tuple(f"{c} {self.shape}" for c in colors) + (TRAY,),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, PackAllGoal]:
        cfg = self.config
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=cfg.num_objects, replace=False)]
        tray_spot, spots = self._layout(rng)
        world.add_tray(TRAY, tray_spot, size=cfg.tray_size)
        labels = [f"{c} {self.shape}" for c in colors]
        for label, color, spot in zip(labels, colors, spots):
            add_movable(world, rng, self.shape, label, color, spot, cfg.object_size)
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        return templates[int(rng.integers(len(templates)))].format(shape=self.shape), PackAllGoal(objects=tuple(labels))

    def _layout(self, rng: np.random.Generator) -> tuple[tuple[float, float], list[tuple[float, float]]]:
        """The tray somewhere in the workspace, then objects outside it, `object_room` apart."""
        cfg = self.config
        (x0, x1), (y0, y1) = self.workspace()
        half = cfg.tray_size / 2
        tray = (float(rng.uniform(x0 + half, x1 - half)), float(rng.uniform(y0 + half, y1 - half)))
        reach = cfg.object_size * math.sqrt(2) / 2  # an object's footprint at any yaw
        keep_out = half + cfg.object_room
        spots: list[tuple[float, float]] = []
        for _ in range(cfg.layout_tries):
            x, y = float(rng.uniform(x0 + reach, x1 - reach)), float(rng.uniform(y0 + reach, y1 - reach))
            if abs(x - tray[0]) < keep_out and abs(y - tray[1]) < keep_out:
                continue
            if all(math.hypot(x - a, y - b) >= 2 * reach + cfg.object_room for a, b in spots):
                spots.append((x, y))
                if len(spots) == cfg.num_objects:
                    return tray, spots
        raise ValueError(f"could not place {cfg.num_objects} objects around a {cfg.tray_size} m tray in "
                         f"x=({x0}, {x1}), y=({y0}, {y1}); use fewer objects or a smaller tray")

    def predicates(self, world: World, goal: PackAllGoal) -> dict[str, bool]:
        packed = {f"{o} in tray": in_tray(world, o, TRAY) for o in goal.objects}
        return judged({"all_in_tray": all(packed.values()), **settled(world, goal.objects, "objects")}, packed)

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Pack every object; or every object but one; or those on one side of the tray; or one or two of them."""
        objects = labels_of(scene, self.shape)
        if not objects or not scene.has(TRAY):
            return []
        options = []
        tray = np.asarray(scene.find(TRAY).position[:2])
        for side, direction in SIDE_DIRECTIONS.items():
            beyond = [o for o in objects if float((np.asarray(scene.find(o).position[:2]) - tray) @ direction) > 0.05]
            if beyond and len(beyond) < len(objects):
                goal = PackAllGoal(objects=tuple(beyond))
                options.append(GoalOption(description=f"put every {self.shape} {SIDE_WORDS[side]} the tray in the tray",
                                          objects=(*beyond, TRAY), plan=self.oracle_plan(goal),
                                          goal=goal.model_dump(mode="json")))
        # A few named objects: one or two of them ("put the block nearest to you and the red one in the tray").
        for size in (1, 2) if len(objects) > 2 else ():
            for chosen in itertools.combinations(objects, size):
                goal = PackAllGoal(objects=chosen)
                options.append(GoalOption(description=f"put {listed(chosen)} in the tray", objects=(*chosen, TRAY),
                                          plan=self.oracle_plan(goal), goal=goal.model_dump(mode="json")))
        for left_out in [None, *objects] if len(objects) > 1 else [None]:
            goal = PackAllGoal(objects=tuple(o for o in objects if o != left_out))
            words = (f"put every {self.shape} in the tray" if left_out is None
                     else f"put every {self.shape} except the {left_out} in the tray")
            options.append(GoalOption(description=words, objects=(*goal.objects, TRAY),
                                      excluded=(left_out,) if left_out else (), plan=self.oracle_plan(goal),
                                      goal=goal.model_dump(mode="json")))
        return options

    def oracle_plan(self, goal: PackAllGoal) -> Plan:
        steps: list[SkillCall] = []
        for label in goal.objects:
            steps += [SkillCall(skill="pick", args={"object": label}), SkillCall(skill="place", args={"target": TRAY})]
        return Plan(steps=tuple(steps))
