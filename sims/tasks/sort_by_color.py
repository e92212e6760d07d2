"""sort_by_color: put every block into the bowl of its colour.

The scene holds `num_bowls` bowls of distinct colours and `num_blocks` blocks, each the
colour of a different bowl, so every label is unique ("red block", "red bowl") and each
bowl receives at most one block. Optional distractor blocks have colours no bowl has;
the instruction says nothing about them, and success requires that they stay out of
every bowl.

The workspace holds three bowls with up to six blocks, or four bowls with up to four
blocks in all (distractors included); a config that clearly cannot fit fails when it is
read, and a rare unlucky draw fails the reset with the same message.

The instruction names no object, so the plan depends on the scene, not on the words:
the templates carry no plan (`plan=()`), and the oracle plan is built from the goal,
one pick and one place per block in the goal's order.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.tasks.base import Goal, Task, sample_placements
from sims.tasks.blocks_and_bowls import BlocksAndBowlsConfig, block_in_bowl, footprints, populate, vocabulary
from sims.tasks.domain import color_of, labels_of
from sims.tasks.judging import judged, settled
from sims.world import World

TEMPLATES = (
    "put each {shape} in the bowl of the same colour",
    "sort the {shape}s by colour into the bowls",
    "put every {shape} into the bowl that matches its color",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+
    "match each {shape} to the bowl that shares its colour",
    "every bowl should get the {shape} of its own colour",
)


class SortByColorConfig(BlocksAndBowlsConfig):
    num_bowls: int = Field(default=3, ge=1, le=4)
    num_blocks: int = Field(default=3, ge=1, le=4)  # each the colour of a different bowl
    distractors: int = Field(default=0, ge=0, le=3)  # blocks of a colour no bowl has
    # Three bowls and three blocks do not fit pick_place's workspace (x 0.35..0.68, y ±0.26);
    # this one is still within the arm's reach and the front camera's view.
    workspace_x: tuple[float, float] = (0.30, 0.70)
    workspace_y: tuple[float, float] = (-0.30, 0.30)
    max_steps: int = Field(default=1600, gt=0)  # ~5x what the scripted policy needs for 3 blocks
    # Room kept around each block: the open fingers reach ~7 cm from its centre, so with only
    # the block's footprint (pick_place's layout) they can land on a neighbouring bowl's rim.
    block_room: float = Field(default=0.045, ge=0.0, le=0.1)
    layout_restarts: int = Field(default=50, ge=0)  # fresh layout draws before a crowded scene is an error

    @model_validator(mode="after")
    def _counts_and_layout(self) -> "SortByColorConfig":
        if self.num_blocks > self.num_bowls:
            raise ValueError(
                f"{self.num_blocks} blocks need as many bowls (one per block colour), got {self.num_bowls}; "
                "add distractors for blocks that belong in no bowl"
            )
        if len(set(self.colors)) < self.num_bowls + self.distractors:
            raise ValueError(
                f"{self.num_bowls} bowls and {self.distractors} distractors need that many distinct colours, "
                f"got {len(set(self.colors))}"
            )
        blocks = self.num_blocks + self.distractors
        try:  # a crowded scene fails here, when the config is read, not at the first reset
            sample_placements(np.random.default_rng(0), footprints(self, self.num_bowls, blocks, self.block_room),
                              self.workspace_x, self.workspace_y, restarts=self.layout_restarts)
        except ValueError as error:
            raise ValueError(f"{self.num_bowls} bowls and {blocks} blocks do not fit: {error}") from None
        return self


class BlockToBowl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    block: str
    bowl: str


class SortByColorGoal(Goal):
    moves: tuple[BlockToBowl, ...]  # in the order the oracle plan performs them
    distractors: tuple[str, ...] = ()  # blocks that belong in no bowl


class SortByColor(Task[SortByColorGoal]):
    name = "sort_by_color"
    Config = SortByColorConfig
    config: SortByColorConfig

    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            description="Put every block into the bowl of the same colour; blocks of other colours stay out.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t.format(shape=self.shape), plan=()) for t in TEMPLATES),
            vocabulary=vocabulary(self.palette(self.config.colors), self.shape),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, SortByColorGoal]:
        cfg = self.config
        drawn = [str(c) for c in rng.choice(self.palette(cfg.colors), size=cfg.num_bowls + cfg.distractors,
                                            replace=False)]
        bowl_colors, distractor_colors = drawn[: cfg.num_bowls], drawn[cfg.num_bowls:]
        matched_colors = bowl_colors[: cfg.num_blocks]  # a random subset: the draw is in random order
        bowls, blocks = populate(world, rng, cfg, bowl_colors, matched_colors + distractor_colors,
                                 block_room=cfg.block_room, restarts=cfg.layout_restarts,
                                 workspace=self.workspace(), shape=self.shape)
        goal = SortByColorGoal(
            moves=tuple(BlockToBowl(block=block, bowl=bowl) for block, bowl in zip(blocks[: cfg.num_blocks], bowls)),
            distractors=tuple(blocks[cfg.num_blocks:]),
        )
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        return templates[int(rng.integers(len(templates)))].format(shape=self.shape), goal

    def predicates(self, world: World, goal: SortByColorGoal) -> dict[str, bool]:
        placed = {f"{m.block} in {m.bowl}": block_in_bowl(world, m.block, m.bowl) for m in goal.moves}
        bowls = [label for label, body in world.bodies.items() if body.kind == "bowl"]
        kept_out = {f"{d} in no bowl": not any(block_in_bowl(world, d, bowl) for bowl in bowls)
                    for d in goal.distractors}
        blocks = [m.block for m in goal.moves] + list(goal.distractors)
        overall = {"all_sorted": all(placed.values()), "distractors_in_no_bowl": all(kept_out.values()),
                   **settled(world, blocks, "blocks")}
        return judged(overall, {**placed, **kept_out})

    def oracle_plan(self, goal: SortByColorGoal) -> Plan:
        steps: list[SkillCall] = []
        for move in goal.moves:
            steps += [SkillCall(skill="pick", args={"object": move.block}),
                      SkillCall(skill="place", args={"target": move.bowl})]
        return Plan(steps=tuple(steps))

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Sort every block that has a bowl of its colour; or every one of them but one; or only one."""
        bowls = {color_of(b): b for b in labels_of(scene, "bowl")}
        blocks = labels_of(scene, self.shape)
        matched = [b for b in blocks if color_of(b) in bowls]
        if not matched:
            return []
        options = []
        for only in matched if len(matched) > 1 else []:
            goal = SortByColorGoal(moves=(BlockToBowl(block=only, bowl=bowls[color_of(only)]),),
                                   distractors=tuple(b for b in blocks if b != only))
            options.append(GoalOption(description=f"put only the {only} in the bowl of its colour",
                                      objects=(only, bowls[color_of(only)]), plan=self.oracle_plan(goal),
                                      goal=goal.model_dump(mode="json")))
        for left_out in [None, *matched] if len(matched) > 1 else [None]:
            moved = [b for b in matched if b != left_out]
            goal = SortByColorGoal(moves=tuple(BlockToBowl(block=b, bowl=bowls[color_of(b)]) for b in moved),
                                   distractors=tuple(b for b in blocks if b not in moved))
            words = (f"put each {self.shape} in the bowl of the same colour" if left_out is None else
                     f"put each {self.shape} except the {left_out} in the bowl of the same colour")
            about = tuple(x for m in goal.moves for x in (m.block, m.bowl))
            options.append(GoalOption(description=words, objects=about, excluded=(left_out,) if left_out else (),
                                      plan=self.oracle_plan(goal),
                                      goal=goal.model_dump(mode="json")))
        return options
