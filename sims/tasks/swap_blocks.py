"""swap_blocks: exchange the blocks of two bowls, using an empty bowl as a buffer.

Three bowls of distinct colours stand on the table; two hold a block each and one is
empty (VIMA-Bench's rearrange family). The instruction names the two full bowls; the
empty one is never mentioned, but with one object in the hand at a time it is the only
way: the oracle plan parks the first block in it, moves the second block over, then
brings the first one back to the second bowl.

The instruction names bowls, not blocks, so the plan depends on the scene: the
templates carry no plan, and the oracle plan is built from the goal.
"""

from __future__ import annotations

import itertools

import numpy as np
import pybullet as pb
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.tasks.base import Goal, Task
from sims.tasks.blocks_and_bowls import BlocksAndBowlsConfig, add_movable, block_in_bowl, populate, vocabulary
from sims.tasks.domain import labels_of
from sims.tasks.judging import judged, settled
from sims.variation import level
from sims.world import TABLE_TOP_Z, World

TEMPLATES = (
    "swap the {shape}s in the {first} and the {second}",
    "exchange the {shape}s of the {first} and the {second}",
    "swap the contents of the {first} and the {second}",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+
    "the {shape} in the {first} and the one in the {second} should trade places",
    "switch the {shape}s between the {first} and the {second}",
)
BOWLS, BLOCKS = 3, 2
FLOOR_CLEARANCE = 0.01  # blocks start this far above the table: just above a bowl's floor (8 mm)


class SwapBlocksConfig(BlocksAndBowlsConfig):
    layout_restarts: int = Field(default=50, ge=0)  # fresh layout draws before a crowded scene is an error
    max_steps: int = Field(default=1800, gt=0)  # ~3x what the scripted policy needs for three moves

    @model_validator(mode="after")
    def _enough_colors(self) -> "SwapBlocksConfig":
        palette = level(self.level).colors if self.level else self.colors
        if len(set(palette)) < BOWLS + BLOCKS:
            raise ValueError(f"{BOWLS} bowls and {BLOCKS} blocks need {BOWLS + BLOCKS} distinct colours, "
                             f"got {len(set(palette))}: {', '.join(palette)}")
        if self.block_size * 2 ** 0.5 > 2 * self.bowl_radius - 0.04:
            raise ValueError(f"a {self.block_size} m block leaves the fingers no room in a bowl of radius "
                             f"{self.bowl_radius} m; use smaller blocks or larger bowls")
        return self


class SwapBlocksGoal(Goal):
    first_bowl: str
    second_bowl: str
    first_block: str  # starts in the first bowl
    second_block: str  # starts in the second bowl
    spare_bowl: str  # empty at the start


class SwapBlocks(Task[SwapBlocksGoal]):
    name = "swap_blocks"
    Config = SwapBlocksConfig
    config: SwapBlocksConfig

    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            description="Swap the blocks of two bowls; a third bowl is empty.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t.replace("{shape}", self.shape), plan=()) for t in TEMPLATES),
            vocabulary=vocabulary(self.palette(self.config.colors), self.shape),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, SwapBlocksGoal]:
        cfg = self.config
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=BOWLS + BLOCKS, replace=False)]
        bowls, _ = populate(world, rng, cfg, bowl_colors=colors[:BOWLS], block_colors=[],
                            restarts=cfg.layout_restarts, workspace=self.workspace())
        blocks = [f"{c} {self.shape}" for c in colors[BOWLS:]]
        for block, color, bowl in zip(blocks, colors[BOWLS:], bowls):
            centre = world.position(bowl)
            add_movable(world, rng, self.shape, block, color, (float(centre[0]), float(centre[1])), cfg.block_size)
            # Lifted off the bowl's floor; the environment lets it settle.
            body = world.body(block)
            _, orientation = pb.getBasePositionAndOrientation(body.body_id, physicsClientId=world.client)
            pb.resetBasePositionAndOrientation(
                body.body_id, (centre[0], centre[1], TABLE_TOP_Z + FLOOR_CLEARANCE + body.height / 2), orientation,
                physicsClientId=world.client)
        goal = SwapBlocksGoal(first_bowl=bowls[0], second_bowl=bowls[1], first_block=blocks[0],
                              second_block=blocks[1], spare_bowl=bowls[2])
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        template = templates[int(rng.integers(len(templates)))]
        # Either bowl may be named first; the goal keeps the order the scene was built in.
        named = (goal.first_bowl, goal.second_bowl) if rng.random() < 0.5 else (goal.second_bowl, goal.first_bowl)
        return template.format(first=named[0], second=named[1], shape=self.shape), goal

    def predicates(self, world: World, goal: SwapBlocksGoal) -> dict[str, bool]:
        blocks = (goal.first_block, goal.second_block)
        swapped = {
            f"{goal.first_block} in {goal.second_bowl}": block_in_bowl(world, goal.first_block, goal.second_bowl),
            f"{goal.second_block} in {goal.first_bowl}": block_in_bowl(world, goal.second_block, goal.first_bowl),
        }
        return judged({"swapped": all(swapped.values()), **settled(world, blocks, "blocks")}, swapped)

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Swap the blocks of two bowls that hold one each, through a bowl that holds none."""
        bowls = [o for o in scene.objects if o.label in labels_of(scene, "bowl")]
        blocks = [o for o in scene.objects if o.label in labels_of(scene, self.shape)]

        def contents(bowl) -> list[str]:
            reach = max(bowl.extent[0], bowl.extent[1]) / 2
            return [b.label for b in blocks
                    if np.hypot(b.position[0] - bowl.position[0], b.position[1] - bowl.position[1]) < reach]

        held = {bowl.label: contents(bowl) for bowl in bowls}
        full = [label for label, inside in held.items() if len(inside) == 1]
        empty = [label for label, inside in held.items() if not inside]
        if not empty:
            return []
        options = []
        for first, second in itertools.combinations(full, 2):
            goal = SwapBlocksGoal(first_bowl=first, second_bowl=second, first_block=held[first][0],
                                  second_block=held[second][0], spare_bowl=empty[0])
            options.append(GoalOption(description=f"swap the {self.shape}s in the {first} and the {second}",
                                      objects=(goal.first_block, goal.second_block, first, second),
                                      plan=self.oracle_plan(goal), goal=goal.model_dump(mode="json")))
        return options

    def oracle_plan(self, goal: SwapBlocksGoal) -> Plan:
        moves = ((goal.first_block, goal.spare_bowl), (goal.second_block, goal.first_bowl),
                 (goal.first_block, goal.second_bowl))
        steps: list[SkillCall] = []
        for block, bowl in moves:
            steps += [SkillCall(skill="pick", args={"object": block}), SkillCall(skill="place", args={"target": bowl})]
        return Plan(steps=tuple(steps))
