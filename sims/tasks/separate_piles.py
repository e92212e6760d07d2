"""separate_piles: move a mixed pile of small blocks of two colours into the two zones of
those colours (CLIPort's separating-piles, done with pick and place).

The pile sits near the middle of the workspace, with a zone on either side of it (which
colour goes left is drawn per episode). Blocks of one colour are alike, so labels carry a
number ("red block 1"); the instruction speaks of colours only, so the plan depends on
the scene: the templates carry no plan, and the oracle moves the blocks one by one. A
zone receives several blocks, so the scripted `place` spreads them over it.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.objects import COLORS
from sims.tasks.base import Goal, Task, TaskConfig
from sims.tasks.blocks_and_bowls import add_movable
from sims.tasks.domain import color_of, labels_of
from sims.tasks.judging import judged, settled
from sims.tasks.regions import check_colors, in_zone
from sims.world import World

TEMPLATES = (
    "move the {a} {shape}s to the {a} zone and the {b} {shape}s to the {b} zone",
    "put the {a} {shape}s in the {a} zone and the {b} {shape}s in the {b} zone",
    "separate the pile: each {shape} goes to the zone of its colour",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+
    "split the heap so that every {shape} ends up in the zone matching its colour",
    "the {a} zone should get the {a} {shape}s and the {b} zone the {b} {shape}s",
)


class SeparatePilesConfig(TaskConfig):
    colors: tuple[str, ...] = tuple(COLORS)
    per_color: int = Field(default=2, ge=1, le=3)  # blocks of each of the two colours
    block_size: float = Field(default=0.03, ge=0.02, le=0.04)
    zone_size: float = Field(default=0.15, ge=0.1, le=0.2)
    pile_size: float = Field(default=0.2, ge=0.08, le=0.3)  # side of the square the pile lies in
    # Centre-to-centre distance between blocks in the pile: the open fingers reach ~5 cm from
    # the block they close on, and must not land on a neighbour.
    block_spacing: float = Field(default=0.075, ge=0.03, le=0.12)
    zone_gap: float = Field(default=0.02, ge=0.0)  # between the pile's square and each zone
    jitter: float = Field(default=0.03, ge=0.0, le=0.1)  # random shift of the pile and of each zone
    workspace_x: tuple[float, float] = (0.35, 0.65)  # where the pile's centre and the zones' may be
    workspace_y: tuple[float, float] = (-0.30, 0.30)
    max_steps: int = Field(default=2400, gt=0)  # ~3x what the scripted policy needs for 6 blocks
    layout_tries: int = Field(default=5000, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "SeparatePilesConfig":
        check_colors(self.colors, 2, "two piles")
        reach = 0.5 * self.pile_size + self.zone_gap + self.zone_size + self.jitter
        if reach > min(abs(self.workspace_y[0]), abs(self.workspace_y[1])) + 0.02:
            raise ValueError(f"a {self.pile_size} m pile with {self.zone_size} m zones beside it reaches "
                             f"y = ±{reach:.3f}, beyond the workspace {self.workspace_y}")
        per_side = math.floor(self.pile_size / self.block_spacing) + 1
        if per_side * per_side < 2 * self.per_color:
            raise ValueError(f"{2 * self.per_color} blocks {self.block_spacing} m apart do not fit a "
                             f"{self.pile_size} m pile; use a larger pile or fewer blocks")
        return self


class SeparatePilesGoal(Goal):
    moves: tuple[tuple[str, str], ...]  # (block, zone), in the order the oracle plan moves them


class SeparatePiles(Task[SeparatePilesGoal]):
    name = "separate_piles"
    Config = SeparatePilesConfig
    config: SeparatePilesConfig

    def spec(self) -> TaskSpec:
        colors = self.palette(self.config.colors)
        blocks = tuple(f"{c} {self.shape} {i}" for c in colors for i in range(1, self.config.per_color + 1))
        return TaskSpec(
            name=self.name,
            description="Move each block of a mixed two-colour pile into the zone of its colour.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t.replace("{shape}", self.shape), plan=()) for t in TEMPLATES),
            vocabulary=blocks + tuple(f"{c} zone" for c in colors),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, SeparatePilesGoal]:
        cfg = self.config
        a, b = (str(c) for c in rng.choice(self.palette(cfg.colors), size=2, replace=False))
        (x0, x1), _ = self.workspace()
        middle = (0.5 * (x0 + x1), 0.5 * (self.workspace()[1][0] + self.workspace()[1][1]))
        pile = (middle[0] + rng.uniform(-cfg.jitter, cfg.jitter), middle[1] + rng.uniform(-cfg.jitter, cfg.jitter))
        side = 0.5 * cfg.pile_size + cfg.zone_gap + 0.5 * cfg.zone_size
        zones = {}
        for color, sign in zip((a, b), (1.0, -1.0) if rng.random() < 0.5 else (-1.0, 1.0)):
            x = float(np.clip(pile[0] + rng.uniform(-cfg.jitter, cfg.jitter), x0, x1))
            y = pile[1] + sign * (side + rng.uniform(0.0, cfg.jitter))
            zones[color] = f"{color} zone"
            world.add_zone(zones[color], color, (x, float(y)), size=cfg.zone_size, solid=False)
        blocks = [(f"{c} {self.shape} {i}", c) for i in range(1, cfg.per_color + 1) for c in (a, b)]
        for (label, color), spot in zip(blocks, self._pile(rng, pile, len(blocks))):
            add_movable(world, rng, self.shape, label, color, spot, cfg.block_size)
        goal = SeparatePilesGoal(moves=tuple((label, zones[color]) for label, color in blocks))
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        text = templates[int(rng.integers(len(templates)))]
        return text.format(a=a, b=b, shape=self.shape), goal

    def _pile(self, rng: np.random.Generator, centre, count: int) -> list[tuple[float, float]]:
        cfg = self.config
        half = 0.5 * cfg.pile_size
        spots: list[tuple[float, float]] = []
        for _ in range(cfg.layout_tries):
            x = float(centre[0] + rng.uniform(-half, half))
            y = float(centre[1] + rng.uniform(-half, half))
            if all(math.hypot(x - p, y - q) >= cfg.block_spacing for p, q in spots):
                spots.append((x, y))
                if len(spots) == count:
                    return spots
        raise ValueError(f"could not lay {count} blocks {cfg.block_spacing} m apart in a {cfg.pile_size} m pile; "
                         "use a larger pile, a smaller spacing or fewer blocks")

    def predicates(self, world: World, goal: SeparatePilesGoal) -> dict[str, bool]:
        placed = {f"{block} in {zone}": in_zone(world, block, zone) for block, zone in goal.moves}
        blocks = [block for block, _ in goal.moves]
        return judged({"all_separated": all(placed.values()), **settled(world, blocks, "blocks")}, placed)

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Move every block to the zone of its colour; or only the blocks of one colour."""
        zones = {color_of(z): z for z in labels_of(scene, "zone")}
        blocks = [b for b in labels_of(scene, self.shape) if color_of(b) in zones]
        colors = list(dict.fromkeys(color_of(b) for b in blocks))
        options = []
        for only in [None, *colors] if len(colors) > 1 else [None]:
            moves = tuple((b, zones[color_of(b)]) for b in blocks if only is None or color_of(b) == only)
            words = (" and ".join(f"the {c} {self.shape}s to the {c} zone" for c in colors) if only is None
                     else f"the {only} {self.shape}s to the {only} zone")
            goal = SeparatePilesGoal(moves=moves)
            every = (f"put each {self.shape} in the zone of its colour",) if only is None else ()
            about = tuple(dict.fromkeys(x for move in moves for x in move))
            # One colour only leaves the other colours' blocks in the pile ("the green ones can stay").
            left = tuple(b for b in blocks if only is not None and color_of(b) != only)
            options.append(GoalOption(description=f"move {words}", phrasings=every, objects=about, excluded=left,
                                      plan=self.oracle_plan(goal), goal=goal.model_dump(mode="json")))
        return options

    def oracle_plan(self, goal: SeparatePilesGoal) -> Plan:
        steps: list[SkillCall] = []
        for block, zone in goal.moves:
            steps += [SkillCall(skill="pick", args={"object": block}), SkillCall(skill="place", args={"target": zone})]
        return Plan(steps=tuple(steps))
