"""align_line: put three blocks in a straight row (VIMA's and CLIPort's "align").

Two kinds of instruction, drawn per episode among those the config allows:

- ordered: "put the blocks in a row from left to right: red block, blue block, green
  block". The middle block stays; the others go to its left and right.
- beside a bowl: "line up the blocks behind the green bowl" (or in front of it). One block
  goes beside the bowl, the other two to its left and right.

Sides are as the robot sees the table (left +y, behind +x; sims/tasks/regions.py), so a
row "from left to right" runs along -y. The layout is redrawn until the row's spots are
free and within reach.

Success is geometric: the three centres lie within `line_tolerance` of one line that
runs left to right (within `max_tilt_deg`), neighbours are `min_spacing`..`max_spacing`
apart, in the named order if the instruction names one, and on the named side of the
bowl and alongside it otherwise; every block rests on the table, released.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.tasks.base import Goal, Task, sample_layout
from sims.tasks.blocks_and_bowls import BlocksAndBowlsConfig, add_movable, footprints, vocabulary
from sims.tasks.domain import labels_of, listed
from sims.tasks.judging import judged, settled
from sims.tasks.regions import SIDE_DIRECTIONS, SIDE_WORDS, clear_of, collinear, inside, line_direction, xy
from sims.world import World

Mode = Literal["ordered", "behind", "front"]

ORDERED = (
    "put the {shape}s in a row from left to right: {first}, {second}, {third}",
    "line up the {first}, the {second} and the {third} from left to right",
)
BESIDE = (
    "line up the {shape}s {words} the {bowl}",
    "make a row of the {shape}s {words} the {bowl}",
)
HELD_OUT_ORDERED = (  # generalization levels L3+
    "arrange the {first}, the {second} and the {third} in a straight line, in that order from left to right",
)
HELD_OUT_BESIDE = ("form a straight line of {shape}s {words} the {bowl}",)

ORDERED_PLAN = (
    SkillCall(skill="pick", args={"object": "{first}"}),
    SkillCall(skill="place_next_to", args={"target": "{second}", "side": "left"}),
    SkillCall(skill="pick", args={"object": "{third}"}),
    SkillCall(skill="place_next_to", args={"target": "{second}", "side": "right"}),
)


class AlignLineConfig(BlocksAndBowlsConfig):
    num_bowls: int = Field(default=1, ge=1, le=3)  # the first is the reference of "beside a bowl"
    modes: tuple[Mode, ...] = ("ordered", "behind", "front")
    # Judging.
    line_tolerance: float = Field(default=0.02, gt=0.0)  # every centre this close to the best-fitting line
    min_spacing: float = Field(default=0.045, gt=0.0)  # neighbours' centres at least this far apart ...
    max_spacing: float = Field(default=0.16, gt=0.0)  # ... and at most this far
    max_tilt_deg: float = Field(default=25.0, gt=0.0, le=90.0)  # the row's angle from left-right
    max_gap: float = Field(default=0.15, gt=0.0)  # beside a bowl: centres at most this far beyond its edge
    # Laying out (see spatial_placement): where a block put beside another lands, and the free
    # space each spot of the row needs.
    expected_gap: float = Field(default=0.035, ge=0.0)
    spot_room: float = Field(default=0.03, ge=0.0)
    reach_x: tuple[float, float] = (0.28, 0.74)
    reach_y: tuple[float, float] = (-0.32, 0.32)
    block_room: float = Field(default=0.045, ge=0.0, le=0.1)
    workspace_x: tuple[float, float] = (0.30, 0.70)
    workspace_y: tuple[float, float] = (-0.30, 0.30)
    max_steps: int = Field(default=1400, gt=0)
    layout_restarts: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "AlignLineConfig":
        if len(set(self.colors)) < 3 + self.num_bowls:
            raise ValueError(f"3 blocks and {self.num_bowls} bowls need that many distinct colours, "
                             f"got {len(set(self.colors))}")
        if not self.modes:
            raise ValueError("modes is empty; choose from: ordered, behind, front")
        if self.min_spacing >= self.max_spacing:
            raise ValueError(f"min_spacing ({self.min_spacing}) must be below max_spacing ({self.max_spacing})")
        return self


class AlignLineGoal(Goal):
    mode: Mode
    # ordered: left to right as named. Beside a bowl: the block put beside it first, then
    # the ones put to its left and to its right.
    blocks: tuple[str, str, str]
    bowl: str


class AlignLine(Task[AlignLineGoal]):
    name = "align_line"
    Config = AlignLineConfig
    config: AlignLineConfig

    def spec(self) -> TaskSpec:
        shape = self.shape
        templates = [InstructionTemplate(text=t.replace("{shape}", shape), plan=ORDERED_PLAN) for t in ORDERED]
        templates += [InstructionTemplate(text=t.replace("{shape}", shape).replace("{words}", SIDE_WORDS[side]),
                                          plan=())
                      for side in ("behind", "front") for t in BESIDE]
        return TaskSpec(
            name=self.name,
            description="Put three blocks in a straight row, left to right in a named order or beside a bowl.",
            skills=("pick", "place_next_to"),
            templates=tuple(templates),
            vocabulary=vocabulary(self.palette(self.config.colors), shape),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, AlignLineGoal]:
        cfg = self.config
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=3 + cfg.num_bowls, replace=False)]
        blocks = [f"{c} {self.shape}" for c in colors[:3]]
        bowls = [f"{c} bowl" for c in colors[3:]]
        radii = footprints(cfg, cfg.num_bowls, 3, cfg.block_room)
        x_range, y_range = self.workspace()
        mode = cfg.modes[int(rng.integers(len(cfg.modes)))]
        spots = sample_layout(rng, radii, x_range, y_range, cfg.layout_restarts,
                              lambda s: bool(self._feasible(dict(zip(bowls + blocks, s)), mode, blocks, bowls[0])))
        if spots is None:
            raise ValueError(f"no layout of {cfg.num_bowls} bowls and 3 blocks leaves room for a {mode} row in "
                             f"{cfg.layout_restarts} draws; use fewer bowls or a wider workspace")
        layout = dict(zip(bowls + blocks, spots))
        options = self._feasible(layout, mode, blocks, bowls[0])
        goal = options[int(rng.integers(len(options)))]
        for label, color in zip(bowls, colors[3:]):
            world.add_bowl(label, color, layout[label], radius=cfg.bowl_radius, height=cfg.bowl_height)
        for label, color in zip(blocks, colors[:3]):
            add_movable(world, rng, self.shape, label, color, layout[label], cfg.block_size)
        return self._instruction(goal, rng), goal

    def _feasible(self, layout: dict[str, tuple[float, float]], mode: str, blocks: list[str],
                  bowl: str) -> list[AlignLineGoal]:
        """Every assignment of blocks to the row's spots whose spots are reachable and clear of every
        object but the block bound there and the one it is put beside (which is meant to be close)."""
        cfg = self.config
        own = cfg.block_size * math.sqrt(2) / 2
        step = cfg.block_size / 2 + cfg.expected_gap + own  # centre to centre of neighbours in the row
        left, right = np.asarray(SIDE_DIRECTIONS["left"]), np.asarray(SIDE_DIRECTIONS["right"])
        options = []
        for order in itertools.permutations(blocks):
            if mode == "ordered":
                first, second, third = order
                middle = np.asarray(layout[second])
                targets = {first: (middle + left * step, second), third: (middle + right * step, second)}
            else:
                centre, to_left, to_right = order
                middle = np.asarray(layout[bowl]) + np.asarray(SIDE_DIRECTIONS[mode]) * (
                    cfg.bowl_radius + cfg.expected_gap + own)
                targets = {centre: (middle, bowl), to_left: (middle + left * step, centre),
                           to_right: (middle + right * step, centre)}
            if all(self._free(spot, own, [(layout[o], self._radius(o)) for o in layout if o not in (block, anchor)])
                   for block, (spot, anchor) in targets.items()):
                options.append(AlignLineGoal(mode=mode, blocks=order, bowl=bowl))
        return options

    def _radius(self, label: str) -> float:
        return self.config.bowl_radius if label.endswith(" bowl") else self.config.block_size * math.sqrt(2) / 2

    def _free(self, spot: np.ndarray, radius: float, obstacles) -> bool:
        cfg = self.config
        return inside(spot, radius, cfg.reach_x, cfg.reach_y) and clear_of(spot, radius, obstacles, cfg.spot_room)

    def _instruction(self, goal: AlignLineGoal, rng: np.random.Generator) -> str:
        if goal.mode == "ordered":
            texts = self.phrasings(ORDERED, HELD_OUT_ORDERED)
            first, second, third = goal.blocks
            return texts[int(rng.integers(len(texts)))].format(shape=self.shape, first=first, second=second,
                                                                 third=third)
        texts = self.phrasings(BESIDE, HELD_OUT_BESIDE)
        return texts[int(rng.integers(len(texts)))].format(shape=self.shape, words=SIDE_WORDS[goal.mode],
                                                             bowl=goal.bowl)

    def predicates(self, world: World, goal: AlignLineGoal) -> dict[str, bool]:
        cfg = self.config
        points = np.array([xy(world, b) for b in goal.blocks])
        direction = line_direction(points)
        along = points @ direction
        gaps = np.diff(np.sort(along))
        result = {
            "collinear": collinear(points, cfg.line_tolerance),
            "spaced": bool(np.all(gaps >= cfg.min_spacing) and np.all(gaps <= cfg.max_spacing)),
            "row_left_to_right": bool(abs(direction[0]) <= math.sin(math.radians(cfg.max_tilt_deg))),
        }
        if goal.mode == "ordered":
            named = [points[i, 1] for i in range(3)]  # left is +y: the named order has falling y
            result["in_order"] = bool(named[0] > named[1] > named[2])
        else:
            result["beside_bowl"] = self._beside_bowl(world, goal, points)
        return judged({**result, **settled(world, goal.blocks, "blocks", on_the_table=True)})

    def _beside_bowl(self, world: World, goal: AlignLineGoal, points: np.ndarray) -> bool:
        """Every block past the bowl's edge on the named side (within `max_gap`), and the row
        alongside the bowl rather than off to one side of it."""
        bowl = xy(world, goal.bowl)
        radius = world.body(goal.bowl).size / 2
        beyond = (points - bowl) @ np.asarray(SIDE_DIRECTIONS[goal.mode])
        past = bool(np.all(beyond > radius) and np.all(beyond <= radius + self.config.max_gap))
        alongside = bool(points[:, 1].min() <= bowl[1] + radius and points[:, 1].max() >= bowl[1] - radius)
        return past and alongside

    def equivalent_goals(self, goal: AlignLineGoal) -> list[AlignLineGoal]:
        """Beside a bowl, the predicates ask for a row past its edge, not for an order of the blocks."""
        if goal.mode == "ordered":
            return [goal]
        return [goal.model_copy(update={"blocks": order}) for order in itertools.permutations(goal.blocks)]

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Rows of three blocks: in a named order from left to right, or beside a bowl. Beside a bowl,
        every order whose spots the perceived layout leaves free is a goal (any order if none is):
        the words differ only where an instruction says which block goes where."""
        blocks, bowls = labels_of(scene, self.shape), labels_of(scene, "bowl")
        if len(blocks) < 3 or not bowls:
            return []
        layout = {o.label: (o.position[0], o.position[1]) for o in scene.objects}
        options = []
        for first, second, third in itertools.permutations(blocks, 3):
            goal = AlignLineGoal(mode="ordered", blocks=(first, second, third), bowl=bowls[0])
            options.append(GoalOption(
                description=f"put the {first}, the {second} and the {third} in a row from left to right",
                phrasings=(f"put the {second} in the middle, the {first} to its left and the {third} to its right",),
                objects=goal.blocks, relations=_places(first, second, third), plan=self.oracle_plan(goal),
                goal=goal.model_dump(mode="json")))
        # Every mode the task can judge, not only those the episode was drawn from (see spatial_placement).
        for mode in (m for m in get_args(Mode) if m != "ordered"):
            for bowl in bowls:
                for trio in itertools.combinations(blocks, 3):
                    near = {k: v for k, v in layout.items() if k in (*trio, *bowls)}
                    goals = self._feasible(near, mode, list(trio), bowl) or [
                        AlignLineGoal(mode=mode, blocks=order, bowl=bowl) for order in itertools.permutations(trio)]
                    rest = "" if len(blocks) == 3 else f" ({listed(trio)})"
                    for goal in goals:
                        centre, to_left, to_right = goal.blocks
                        options.append(GoalOption(
                            description=f"line up the {self.shape}s{rest} {SIDE_WORDS[mode]} the {bowl}",
                            phrasings=((f"put the {centre} {SIDE_WORDS[mode]} the {bowl}, the {to_left} to its left "
                                        f"and the {to_right} to its right"),),
                            objects=(*goal.blocks, bowl), relations=_places(to_left, centre, to_right),
                            plan=self.oracle_plan(goal),
                            goal=goal.model_dump(mode="json")))
        return options

    def oracle_plan(self, goal: AlignLineGoal) -> Plan:
        if goal.mode == "ordered":
            first, second, third = goal.blocks
            return InstructionTemplate(text="", plan=ORDERED_PLAN).plan_for(first=first, second=second, third=third)
        centre, to_left, to_right = goal.blocks
        return Plan(steps=(
            SkillCall(skill="pick", args={"object": centre}),
            SkillCall(skill="place_next_to", args={"target": goal.bowl, "side": goal.mode}),
            SkillCall(skill="pick", args={"object": to_left}),
            SkillCall(skill="place_next_to", args={"target": centre, "side": "left"}),
            SkillCall(skill="pick", args={"object": to_right}),
            SkillCall(skill="place_next_to", args={"target": centre, "side": "right"}),
        ))


def _places(left: str, middle: str, right: str) -> tuple[tuple[str, str, str], ...]:
    """The place in the row each block takes, for planners that read "the red block in the middle"."""
    return (("at", left, "left"), ("at", middle, "middle"), ("at", right, "right"))
