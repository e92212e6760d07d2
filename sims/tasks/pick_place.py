"""pick_place: put the named block in the named bowl."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import InstructionTemplate, Plan, SkillCall, TaskSpec
from sims.objects import COLORS
from sims.tasks.base import Goal, Task, TaskConfig, sample_placements
from sims.world import World

TEMPLATES = (
    "put the {block} in the {bowl}",
    "place the {block} into the {bowl}",
    "pick up the {block} and drop it in the {bowl}",
)
PLAN = (SkillCall(skill="pick", args={"object": "{block}"}), SkillCall(skill="place", args={"target": "{bowl}"}))


class PickPlaceConfig(TaskConfig):
    num_blocks: int = Field(default=3, ge=1, le=6)
    num_bowls: int = Field(default=2, ge=1, le=4)
    colors: tuple[str, ...] = tuple(COLORS)
    block_size: float = Field(default=0.04, ge=0.02, le=0.06)
    bowl_radius: float = Field(default=0.075, ge=0.05, le=0.12)
    bowl_height: float = Field(default=0.05, ge=0.02, le=0.1)

    @model_validator(mode="after")
    def _enough_colors(self) -> "PickPlaceConfig":
        unknown = [c for c in self.colors if c not in COLORS]
        if unknown:
            raise ValueError(f"unknown colours {unknown}; colours: {', '.join(COLORS)}")
        if len(set(self.colors)) < self.num_blocks + self.num_bowls:
            raise ValueError(
                f"{self.num_blocks} blocks and {self.num_bowls} bowls need that many distinct colours, "
                f"got {len(set(self.colors))}"
            )
        return self


class PickPlaceGoal(Goal):
    block: str
    bowl: str


class PickPlace(Task[PickPlaceGoal]):
    name = "pick_place"
    Config = PickPlaceConfig
    config: PickPlaceConfig

    def spec(self) -> TaskSpec:
        vocabulary = tuple(f"{c} {kind}" for kind in ("block", "bowl") for c in self.config.colors)
        return TaskSpec(
            name=self.name,
            description="Put one named block into one named bowl.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t, plan=PLAN) for t in TEMPLATES),
            vocabulary=vocabulary,
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, PickPlaceGoal]:
        cfg = self.config
        n_blocks, n_bowls = cfg.num_blocks, cfg.num_bowls
        colors = [str(c) for c in rng.choice(list(cfg.colors), size=n_blocks + n_bowls, replace=False)]
        block_radius = cfg.block_size * math.sqrt(2) / 2
        bowl_outer = cfg.bowl_radius + 0.01
        spots = sample_placements(
            rng, [bowl_outer] * n_bowls + [block_radius] * n_blocks, cfg.workspace_x, cfg.workspace_y
        )
        bowls = [f"{c} bowl" for c in colors[n_blocks:]]
        blocks = [f"{c} block" for c in colors[:n_blocks]]
        for label, color, xy in zip(bowls, colors[n_blocks:], spots[:n_bowls]):
            world.add_bowl(label, color, xy, radius=cfg.bowl_radius, height=cfg.bowl_height)
        for label, color, xy in zip(blocks, colors[:n_blocks], spots[n_bowls:]):
            world.add_block(label, color, xy, yaw=float(rng.uniform(-math.pi, math.pi)), size=cfg.block_size)
        goal = PickPlaceGoal(block=blocks[int(rng.integers(n_blocks))], bowl=bowls[int(rng.integers(n_bowls))])
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        return template.format(block=goal.block, bowl=goal.bowl), goal

    def predicates(self, world: World, goal: PickPlaceGoal) -> dict[str, bool]:
        cfg = self.config
        block, bowl = world.position(goal.block), world.position(goal.bowl)
        inner_radius = cfg.bowl_radius - 0.004
        horizontal = float(np.hypot(*(block[:2] - bowl[:2])))
        inside = horizontal < inner_radius and bowl[2] < block[2] < bowl[2] + cfg.bowl_height + 0.5 * cfg.block_size
        linear, angular = world.velocity(goal.block)
        # Contact jitter leaves a resting block with small instantaneous spins.
        at_rest = linear < 0.02 and angular < 0.5
        released = not world.touching_robot(goal.block)
        return {
            "block_in_bowl": bool(inside),
            "block_at_rest": bool(at_rest),
            "released": bool(released),
            "success": bool(inside and at_rest and released),
        }

    def oracle_plan(self, goal: PickPlaceGoal) -> Plan:
        return self.spec().templates[0].plan_for(block=goal.block, bowl=goal.bowl)
