"""stack_blocks: build a three-block tower in the order the instruction names.

The scene holds three blocks of distinct colours (plus optional distractor blocks the
instruction does not mention). The instruction names the order from the bottom up; the
bottom block stays where it is and the other two are stacked on it.

Seen templates name every block by its label, so each carries its plan and the
template-matching scripted planner can solve them. The held-out phrasings (levels L3+)
name colours only ("with red at the bottom, ..."), which no seen template matches.

A tower counts as built when each named block rests on the one named below it: its centre
within `offset_tolerance` block sizes of the lower one's, one block height apart vertically
(within `height_tolerance`), the bottom one on the table, all upright, at rest and out of
the gripper. Distractors may be anywhere.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.objects import ALL_COLORS, COLORS
from sims.tasks.base import Goal, Task, TaskConfig, sample_placements
from sims.tasks.blocks_and_bowls import add_movable
from sims.tasks.domain import labels_of
from sims.tasks.judging import judged, settled
from sims.variation import level
from sims.world import TABLE_TOP_Z, World

# One slot per block, each used once: the scripted planner turns slots into named groups.
TEMPLATES = (
    "stack the {shape}s with the {bottom} at the bottom, then the {middle}, then the {top}",
    "put the {middle} on the {bottom}, then put the {top} on top of it",
    "build a tower of the {bottom}, the {middle} and the {top}, from the bottom up",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+: colour words instead of labels
    "stack the {shape}s with {bottom_color} at the bottom, then {middle_color}, then {top_color}",
    "the {top} goes on the {middle}, which goes on the {bottom}",
    "pile the {shape}s up so that {top_color} is on top, {middle_color} under it and {bottom_color} at the base",
)
PLAN = (
    SkillCall(skill="pick", args={"object": "{middle}"}),
    SkillCall(skill="place", args={"target": "{bottom}"}),
    SkillCall(skill="pick", args={"object": "{top}"}),
    SkillCall(skill="place", args={"target": "{middle}"}),
)
TOWER = 3  # blocks in the tower; the templates name exactly three


class StackBlocksConfig(TaskConfig):
    colors: tuple[str, ...] = tuple(COLORS)
    block_size: float = Field(default=0.04, ge=0.03, le=0.05)
    distractors: int = Field(default=0, ge=0, le=2)  # blocks the instruction does not mention
    # Room kept free around each block for the open fingers (as in sort_by_color).
    block_room: float = Field(default=0.045, ge=0.0, le=0.1)
    layout_restarts: int = Field(default=50, ge=0)
    offset_tolerance: float = Field(default=0.4, gt=0.0, le=0.5)  # centre offset, in the lower block's size
    height_tolerance: float = Field(default=0.01, gt=0.0, le=0.02)  # metres off one block's height
    max_steps: int = Field(default=1200, gt=0)  # ~3x what the scripted policy needs for two moves

    @model_validator(mode="after")
    def _colors_and_layout(self) -> "StackBlocksConfig":
        unknown = [c for c in self.colors if c not in ALL_COLORS]
        if unknown:
            raise ValueError(f"unknown colours {unknown}; colours: {', '.join(ALL_COLORS)}")
        palette = level(self.level).colors if self.level else self.colors
        needed = TOWER + self.distractors
        if len(set(palette)) < needed:
            raise ValueError(f"{TOWER} tower blocks and {self.distractors} distractors need {needed} distinct "
                             f"colours, got {len(set(palette))}: {', '.join(palette)}")
        try:  # a crowded scene fails when the config is read, not at the first reset
            sample_placements(np.random.default_rng(0), [_footprint(self)] * needed, self.workspace_x,
                              self.workspace_y, restarts=self.layout_restarts)
        except ValueError as error:
            raise ValueError(f"{needed} blocks do not fit: {error}") from None
        return self


def _footprint(config: StackBlocksConfig) -> float:
    return max(config.block_size * math.sqrt(2) / 2, config.block_room)


class StackBlocksGoal(Goal):
    order: tuple[str, ...]  # tower from the bottom up
    distractors: tuple[str, ...] = ()


def rests_on(world: World, upper: str, lower: str, offset_tolerance: float, height_tolerance: float) -> bool:
    """`upper` sits on top of `lower`: its centre over the middle of the lower one's top face (at most
    `offset_tolerance` of the lower one's size off its centre) and one half-height each above it."""
    up, low = world.body(upper), world.body(lower)
    up_xyz, low_xyz = world.position(upper), world.position(lower)
    offset = float(np.hypot(*(up_xyz[:2] - low_xyz[:2])))
    step = float(up_xyz[2] - low_xyz[2])
    return bool(offset < offset_tolerance * low.size and abs(step - (up.height + low.height) / 2) < height_tolerance)


def on_table(world: World, label: str, height_tolerance: float) -> bool:
    return bool(abs(world.position(label)[2] - (TABLE_TOP_Z + world.body(label).height / 2)) < height_tolerance)


class StackBlocks(Task[StackBlocksGoal]):
    name = "stack_blocks"
    Config = StackBlocksConfig
    config: StackBlocksConfig

    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            description="Stack three named blocks into one tower, bottom to top in the order given.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=_with_shape(t, self.shape), plan=PLAN) for t in TEMPLATES),
            vocabulary=tuple(f"{c} {self.shape}" for c in self.palette(self.config.colors)),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, StackBlocksGoal]:
        cfg = self.config
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=TOWER + cfg.distractors, replace=False)]
        x_range, y_range = self.workspace()
        spots = sample_placements(rng, [_footprint(cfg)] * len(colors), x_range, y_range,
                                  restarts=cfg.layout_restarts)
        labels = [f"{c} {self.shape}" for c in colors]
        for label, color, xy in zip(labels, colors, spots):
            add_movable(world, rng, self.shape, label, color, xy, cfg.block_size)
        goal = StackBlocksGoal(order=tuple(labels[:TOWER]), distractors=tuple(labels[TOWER:]))
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        template = _with_shape(templates[int(rng.integers(len(templates)))], self.shape)
        bottom, middle, top = goal.order
        words = {"bottom": bottom, "middle": middle, "top": top}
        words.update({f"{slot}_color": label.split()[0] for slot, label in list(words.items())})
        return template.format(**words), goal

    def predicates(self, world: World, goal: StackBlocksGoal) -> dict[str, bool]:
        cfg = self.config
        pairs = {f"{upper} on {lower}": rests_on(world, upper, lower, cfg.offset_tolerance, cfg.height_tolerance)
                 for lower, upper in zip(goal.order, goal.order[1:])}
        overall = {
            "tower_built": all(pairs.values()),
            "bottom_on_table": on_table(world, goal.order[0], cfg.height_tolerance),
            "upright": all(world.upright(b) for b in goal.order),
            **settled(world, goal.order, "tower"),
        }
        return judged(overall, pairs)

    def oracle_plan(self, goal: StackBlocksGoal) -> Plan:
        bottom, middle, top = goal.order
        return self.spec().templates[0].plan_for(bottom=bottom, middle=middle, top=top)

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        blocks = labels_of(scene, self.shape)
        options = []
        for order in itertools.permutations(blocks, TOWER):
            goal = StackBlocksGoal(order=order, distractors=tuple(b for b in blocks if b not in order))
            bottom, middle, top = order
            words = f"stack the {self.shape}s with the {bottom} at the bottom, then the {middle}, then the {top}"
            pairs = f"put the {middle} on the {bottom}, then put the {top} on the {middle}"
            options.append(GoalOption(description=words, phrasings=(pairs,), objects=order,
                                      relations=(("on", middle, bottom), ("on", top, middle), ("at", bottom, "bottom"),
                                                 ("at", middle, "middle"), ("at", top, "top")),
                                      plan=self.oracle_plan(goal), goal=goal.model_dump(mode="json")))
        return options


def _with_shape(template: str, shape: str) -> str:
    """Fill in the object word and keep every other slot for the scripted planner."""
    return template.replace("{shape}", shape)
