"""push_to_zone: push a named block into a named zone without lifting it (CLIPort's sweeping,
VIMA's sweep).

A zone is a flat coloured square on the table. The scene holds `num_zones` zones and
`num_blocks` blocks of distinct colours; one block is to be pushed into one zone. The
layout keeps the push clear: the target block starts `min_push`..`max_push` from the
zone's centre, no other block lies near its path or the pusher's, and the spot behind
the block where the pusher comes down is within the arm's reach.

Success judges the end state: the block's centre over the zone, the block still on the
table (not carried onto something), at rest and let go.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.objects import COLORS
from sims.tasks.base import Goal, Task, TaskConfig, sample_layout
from sims.tasks.blocks_and_bowls import add_movable
from sims.tasks.domain import labels_of
from sims.tasks.judging import judged, settled
from sims.tasks.regions import check_colors, in_zone, inside, segment_distance
from sims.world import World

TEMPLATES = (
    "push the {block} into the {zone}",
    "slide the {block} into the {zone}",
    "push the {block} onto the {zone}",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+
    "without lifting it, move the {block} into the {zone}",
    "nudge the {block} along the table until it sits in the {zone}",
)
PLAN = (SkillCall(skill="push", args={"object": "{block}", "target": "{zone}"}),)


class PushToZoneConfig(TaskConfig):
    colors: tuple[str, ...] = tuple(COLORS)
    num_blocks: int = Field(default=2, ge=1, le=4)  # the one to push and blocks left alone
    num_zones: int = Field(default=2, ge=1, le=3)
    block_size: float = Field(default=0.04, ge=0.02, le=0.06)
    zone_size: float = Field(default=0.12, ge=0.08, le=0.2)
    min_push: float = Field(default=0.12, gt=0.0)  # block centre to zone centre at the start
    max_push: float = Field(default=0.28, gt=0.0)
    # Free space on each side of the pushed block's path (and the pusher's) that other blocks keep.
    corridor: float = Field(default=0.03, ge=0.0)
    # Where the pusher may come down behind the block: x and y ranges within the arm's reach.
    reach_x: tuple[float, float] = (0.28, 0.74)
    reach_y: tuple[float, float] = (-0.32, 0.32)
    pusher_standoff: float = Field(default=0.09, gt=0.0)  # block centre to where the pusher comes down
    max_steps: int = Field(default=600, gt=0)  # ~3x what the scripted push needs
    layout_restarts: int = Field(default=200, ge=1)  # layouts drawn before a crowded config is an error

    @model_validator(mode="after")
    def _check(self) -> "PushToZoneConfig":
        check_colors(self.colors, self.num_blocks + self.num_zones, f"{self.num_blocks} blocks and "
                                                                   f"{self.num_zones} zones")
        if self.min_push >= self.max_push:
            raise ValueError(f"min_push ({self.min_push}) must be below max_push ({self.max_push})")
        if self.min_push < self.zone_size / 2 + self.block_size:
            raise ValueError(f"min_push ({self.min_push}) must keep the block off the zone at the start: "
                             f"at least half the zone plus a block ({self.zone_size / 2 + self.block_size:.3f})")
        return self


class PushToZoneGoal(Goal):
    block: str
    zone: str


class PushToZone(Task[PushToZoneGoal]):
    name = "push_to_zone"
    Config = PushToZoneConfig
    config: PushToZoneConfig

    def spec(self) -> TaskSpec:
        colors = self.palette(self.config.colors)
        return TaskSpec(
            name=self.name,
            description="Push one named block along the table into one named zone, without lifting it.",
            skills=("push",),
            templates=tuple(InstructionTemplate(text=t, plan=PLAN) for t in TEMPLATES),
            vocabulary=tuple(f"{c} {kind}" for kind in (self.shape, "zone") for c in colors),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, PushToZoneGoal]:
        cfg = self.config
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=cfg.num_blocks + cfg.num_zones,
                                             replace=False)]
        zone_colors, block_colors = colors[: cfg.num_zones], colors[cfg.num_zones:]
        zones, blocks = self._layout(rng)
        zone_labels = [f"{c} zone" for c in zone_colors]
        block_labels = [f"{c} {self.shape}" for c in block_colors]
        for label, color, spot in zip(zone_labels, zone_colors, zones):
            world.add_zone(label, color, spot, size=cfg.zone_size, solid=False)
        for label, color, spot in zip(block_labels, block_colors, blocks):
            add_movable(world, rng, self.shape, label, color, spot, cfg.block_size)
        goal = PushToZoneGoal(block=block_labels[0], zone=zone_labels[0])
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        return templates[int(rng.integers(len(templates)))].format(block=goal.block, zone=goal.zone), goal

    def _layout(self, rng: np.random.Generator) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Zone and block spots whose first block can be pushed straight into the first zone."""
        cfg = self.config
        x_range, y_range = self.workspace()
        zone_radius = cfg.zone_size * math.sqrt(2) / 2
        block_radius = cfg.block_size * math.sqrt(2) / 2
        radii = [zone_radius] * cfg.num_zones + [block_radius] * cfg.num_blocks
        n = cfg.num_zones
        spots = sample_layout(rng, radii, x_range, y_range, cfg.layout_restarts,
                              lambda s: self._pushable(np.asarray(s[n]), np.asarray(s[0]), s[n + 1:], block_radius))
        if spots is not None:
            return spots[:n], spots[n:]
        raise ValueError(f"no layout of {cfg.num_zones} zones and {cfg.num_blocks} blocks with a clear push "
                         f"found in {cfg.layout_restarts} draws in x={x_range}, y={y_range}; "
                         "use fewer objects, a wider workspace or a wider push range")

    def _pushable(self, block: np.ndarray, zone: np.ndarray, others, block_radius: float) -> bool:
        cfg = self.config
        distance = float(np.linalg.norm(zone - block))
        if not cfg.min_push <= distance <= cfg.max_push:
            return False
        behind = block - (zone - block) / distance * cfg.pusher_standoff
        if not inside(behind, 0.0, cfg.reach_x, cfg.reach_y):
            return False
        keep = 2 * block_radius + cfg.corridor
        return all(segment_distance(other, behind, zone) >= keep for other in others)

    def predicates(self, world: World, goal: PushToZoneGoal) -> dict[str, bool]:
        return judged({"block_in_zone": in_zone(world, goal.block, goal.zone),
                       **settled(world, [goal.block], "block", on_the_table=True)})

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        goals = [PushToZoneGoal(block=b, zone=z) for b in labels_of(scene, self.shape) for z in labels_of(scene, "zone")]
        return [GoalOption(description=f"push the {g.block} into the {g.zone}", objects=(g.block, g.zone),
                           plan=self.oracle_plan(g), goal=g.model_dump(mode="json")) for g in goals]

    def oracle_plan(self, goal: PushToZoneGoal) -> Plan:
        return self.spec().templates[0].plan_for(block=goal.block, zone=goal.zone)
