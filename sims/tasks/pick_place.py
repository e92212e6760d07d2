"""pick_place: put the named block in the named bowl."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.tasks.base import Goal, Task
from sims.tasks.blocks_and_bowls import BlocksAndBowlsConfig, block_in_bowl, populate, vocabulary
from sims.tasks.domain import labels_of
from sims.tasks.judging import judged, settled
from sims.world import World

TEMPLATES = (
    "put the {block} in the {bowl}",
    "place the {block} into the {bowl}",
    "pick up the {block} and drop it in the {bowl}",
)
# Held-out phrasings (generalization levels L3+); the spec keeps publishing TEMPLATES, so
# a planner that only knows the seen phrasings meets these unprepared.
HELD_OUT_TEMPLATES = (
    "move the {block} so that it ends up inside the {bowl}",
    "the {bowl} should hold the {block}",
    "grab the {block} and set it down in the {bowl}",
)
PLAN = (SkillCall(skill="pick", args={"object": "{block}"}), SkillCall(skill="place", args={"target": "{bowl}"}))


class PickPlaceConfig(BlocksAndBowlsConfig):
    num_blocks: int = Field(default=3, ge=1, le=6)
    num_bowls: int = Field(default=2, ge=1, le=4)
    # Share of episodes whose instruction leaves out which block or which bowl is meant
    # ("put the block in the red bowl"): the goal stays one particular block, so a planner
    # can only guess or ask (ask-for-help benchmarks).
    ambiguous: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _enough_colors(self) -> "PickPlaceConfig":
        if len(set(self.colors)) < self.num_blocks + self.num_bowls:
            raise ValueError(
                f"{self.num_blocks} blocks and {self.num_bowls} bowls need that many distinct colours, "
                f"got {len(set(self.colors))}"
            )
        return self


class PickPlaceGoal(Goal):
    block: str
    bowl: str
    unsaid: Literal["nothing", "block", "bowl"] = "nothing"  # what the instruction leaves out


class PickPlace(Task[PickPlaceGoal]):
    name = "pick_place"
    Config = PickPlaceConfig
    config: PickPlaceConfig

    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            description="Put one named block into one named bowl.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t, plan=PLAN) for t in TEMPLATES),
            vocabulary=vocabulary(self.palette(self.config.colors), self.shape),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, PickPlaceGoal]:
        cfg = self.config
        n_blocks, n_bowls = cfg.num_blocks, cfg.num_bowls
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=n_blocks + n_bowls, replace=False)]
        bowls, blocks = populate(world, rng, cfg, bowl_colors=colors[n_blocks:], block_colors=colors[:n_blocks],
                                 workspace=self.workspace(), shape=self.shape)
        goal = PickPlaceGoal(block=blocks[int(rng.integers(n_blocks))], bowl=bowls[int(rng.integers(n_bowls))])
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        template = templates[int(rng.integers(len(templates)))]
        # Drawn only when asked for, so the default episodes keep their random stream.
        if cfg.ambiguous > 0 and rng.random() < cfg.ambiguous:
            options = [kind for kind, n in (("block", n_blocks), ("bowl", n_bowls)) if n > 1]
            if options:
                goal = goal.model_copy(update={"unsaid": options[int(rng.integers(len(options)))]})
        words = {"block": goal.block, "bowl": goal.bowl}
        if goal.unsaid != "nothing":
            words[goal.unsaid] = goal.unsaid if goal.unsaid == "bowl" else self.shape  # "the block", not "the red block"
        return template.format(**words), goal

    def predicates(self, world: World, goal: PickPlaceGoal) -> dict[str, bool]:
        return judged({"block_in_bowl": block_in_bowl(world, goal.block, goal.bowl),
                       **settled(world, [goal.block], "block")})

    def oracle_plan(self, goal: PickPlaceGoal) -> Plan:
        return self.spec().templates[0].plan_for(block=goal.block, bowl=goal.bowl)

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        goals = [PickPlaceGoal(block=block, bowl=bowl)
                 for block in labels_of(scene, self.shape) for bowl in labels_of(scene, "bowl")]
        return [GoalOption(description=f"put the {g.block} in the {g.bowl}", objects=(g.block, g.bowl),
                           plan=self.oracle_plan(g), goal=g.model_dump(mode="json")) for g in goals]
