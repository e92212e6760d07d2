"""spatial_placement: put a named block beside a reference object, or between two
(VIMA's and CLIPort's spatial relations).

Relations are as the robot sees the table: it stands at the origin facing +x, so "to the
left of" is +y, "to the right of" is -y, "behind" is +x (farther from the robot) and "in
front of" is -x. The scene holds bowls and blocks of distinct colours; references may be
either. The layout is redrawn until the asked-for spot is free and within reach.

Success is geometric: the block's centre lies on the named side of the reference's
footprint, within `max_gap` of its edge and not off to one side (a block placed behind
and to the left does not count as "to the left of"), or near the segment between the two
references and past both of their footprints; and it rests on the table, released.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.tasks.base import Goal, Task, sample_layout
from sims.tasks.blocks_and_bowls import BlocksAndBowlsConfig, add_movable, footprints, vocabulary
from sims.tasks.domain import labels_of
from sims.tasks.judging import judged, settled
from sims.tasks.regions import SIDE_DIRECTIONS, SIDE_WORDS, beside, between, clear_of, inside
from sims.world import World

Relation = Literal["left", "right", "front", "behind", "between"]
SIDES = ("left", "right", "front", "behind")

PHRASINGS = ("put the {block} {words} the {reference}", "place the {block} {words} the {reference}")
BETWEEN_PHRASINGS = ("put the {block} between the {first} and the {second}",
                     "place the {block} between the {first} and the {second}")
HELD_OUT_PHRASINGS = ("set the {block} down {words} the {reference}",  # generalization levels L3+
                      "the {block} belongs {words} the {reference}")
HELD_OUT_BETWEEN = ("set the {block} down between the {first} and the {second}",
                    "the {block} belongs halfway between the {first} and the {second}")


def _side_template(text: str, side: str) -> InstructionTemplate:
    plan = (SkillCall(skill="pick", args={"object": "{block}"}),
            SkillCall(skill="place_next_to", args={"target": "{reference}", "side": side}))
    return InstructionTemplate(text=text.replace("{words}", SIDE_WORDS[side]), plan=plan)


BETWEEN_PLAN = (SkillCall(skill="pick", args={"object": "{block}"}),
                SkillCall(skill="place_between", args={"first": "{first}", "second": "{second}"}))


class SpatialPlacementConfig(BlocksAndBowlsConfig):
    num_blocks: int = Field(default=2, ge=1, le=4)
    num_bowls: int = Field(default=2, ge=0, le=3)
    relations: tuple[Relation, ...] = ("left", "right", "front", "behind", "between")
    # Judging: how far from the reference's edge the block may be, and how far off to one side.
    max_gap: float = Field(default=0.12, gt=0.0)
    lateral_slack: float = Field(default=0.02, ge=0.0)
    max_off_line: float = Field(default=0.03, gt=0.0)  # "between": distance from the line joining the two
    # Laying out: where a block put beside a reference lands (its centre this far beyond the
    # reference's edge plus its own half size), the free space that spot needs around it, and
    # the free space two references of "between" need.
    expected_gap: float = Field(default=0.035, ge=0.0)
    spot_room: float = Field(default=0.035, ge=0.0)
    between_room: float = Field(default=0.09, gt=0.0)
    reach_x: tuple[float, float] = (0.28, 0.74)  # where the block may be put: within the arm's reach
    reach_y: tuple[float, float] = (-0.32, 0.32)
    block_room: float = Field(default=0.045, ge=0.0, le=0.1)  # kept free around each block: room for the fingers
    workspace_x: tuple[float, float] = (0.30, 0.70)
    workspace_y: tuple[float, float] = (-0.30, 0.30)
    max_steps: int = Field(default=800, gt=0)
    layout_restarts: int = Field(default=200, ge=1)  # layouts drawn before a config with no feasible goal is an error

    @model_validator(mode="after")
    def _check(self) -> "SpatialPlacementConfig":
        if len(set(self.colors)) < self.num_blocks + self.num_bowls:
            raise ValueError(f"{self.num_blocks} blocks and {self.num_bowls} bowls need that many distinct colours, "
                             f"got {len(set(self.colors))}")
        if not self.relations:
            raise ValueError("relations is empty; choose from: left, right, front, behind, between")
        references = self.num_blocks + self.num_bowls - 1
        if references < (2 if set(self.relations) == {"between"} else 1):
            raise ValueError(f"{self.num_blocks} blocks and {self.num_bowls} bowls leave {references} reference "
                             f"objects, too few for relations {list(self.relations)}")
        return self


class SpatialGoal(Goal):
    block: str
    relation: Relation
    references: tuple[str, ...]  # one, or two for "between"


class SpatialPlacement(Task[SpatialGoal]):
    name = "spatial_placement"
    Config = SpatialPlacementConfig
    config: SpatialPlacementConfig

    def spec(self) -> TaskSpec:
        templates = [_side_template(t, side) for side in SIDES for t in PHRASINGS]
        templates += [InstructionTemplate(text=t, plan=BETWEEN_PLAN) for t in BETWEEN_PHRASINGS]
        return TaskSpec(
            name=self.name,
            description="Put one named block to the left or right of, in front of, behind, or between named "
                        "objects (sides as the robot sees the table).",
            skills=("pick", "place_next_to", "place_between"),
            templates=tuple(templates),
            vocabulary=vocabulary(self.palette(self.config.colors), self.shape),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, SpatialGoal]:
        cfg = self.config
        n_blocks, n_bowls = cfg.num_blocks, cfg.num_bowls
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=n_blocks + n_bowls, replace=False)]
        bowls = [f"{c} bowl" for c in colors[n_blocks:]]
        blocks = [f"{c} {self.shape}" for c in colors[:n_blocks]]
        radii = footprints(cfg, n_bowls, n_blocks, cfg.block_room)
        x_range, y_range = self.workspace()
        # The relation first, then layouts until it has a free spot: "between" needs two objects
        # apart with nothing in the middle, rarer than a free side, and is asked as often.
        relation = cfg.relations[int(rng.integers(len(cfg.relations)))]
        spots = sample_layout(rng, radii, x_range, y_range, cfg.layout_restarts,
                              lambda s: bool(self._feasible(dict(zip(bowls + blocks, s)), bowls, blocks, relation)))
        if spots is None:
            raise ValueError(f"no layout of {n_bowls} bowls and {n_blocks} blocks with a free spot {relation!r} an "
                             f"object in {cfg.layout_restarts} draws; use fewer objects or a wider workspace")
        layout = dict(zip(bowls + blocks, spots))
        options = self._feasible(layout, bowls, blocks, relation)
        goal = options[int(rng.integers(len(options)))]
        for label, color in zip(bowls, colors[n_blocks:]):
            world.add_bowl(label, color, layout[label], radius=cfg.bowl_radius, height=cfg.bowl_height)
        for label, color in zip(blocks, colors[:n_blocks]):
            add_movable(world, rng, self.shape, label, color, layout[label], cfg.block_size)
        return self._instruction(goal, rng), goal

    def _half(self, label: str) -> float:
        return self.config.bowl_radius if label.endswith(" bowl") else self.config.block_size / 2

    def _radius(self, label: str) -> float:
        return self.config.bowl_radius if label.endswith(" bowl") else self.config.block_size * math.sqrt(2) / 2

    def _feasible(self, layout: dict[str, tuple[float, float]], bowls: list[str], blocks: list[str],
                  relation: str) -> list[SpatialGoal]:
        """Every goal of this relation whose spot is within reach and clear of every object but the block."""
        cfg = self.config
        own = cfg.block_size * math.sqrt(2) / 2
        options = []
        for block in blocks:
            obstacles = [(layout[o], self._radius(o)) for o in layout if o != block]
            references = [o for o in bowls + blocks if o != block]
            if relation == "between":
                for i, first in enumerate(references):
                    for second in references[i + 1:]:
                        a, b = np.asarray(layout[first]), np.asarray(layout[second])
                        room = float(np.linalg.norm(a - b)) - self._radius(first) - self._radius(second)
                        if room >= cfg.between_room and self._free((a + b) / 2, own, obstacles):
                            options.append(SpatialGoal(block=block, relation="between", references=(first, second)))
                continue
            direction = np.asarray(SIDE_DIRECTIONS[relation])
            for reference in references:
                spot = np.asarray(layout[reference]) + direction * (self._half(reference) + cfg.expected_gap + own)
                if self._free(spot, own, obstacles):
                    options.append(SpatialGoal(block=block, relation=relation, references=(reference,)))
        return options

    def _free(self, spot: np.ndarray, radius: float, obstacles) -> bool:
        cfg = self.config
        return inside(spot, radius, cfg.reach_x, cfg.reach_y) and clear_of(spot, radius, obstacles, cfg.spot_room)

    def _instruction(self, goal: SpatialGoal, rng: np.random.Generator) -> str:
        if goal.relation == "between":
            texts = self.phrasings(BETWEEN_PHRASINGS, HELD_OUT_BETWEEN)
            text = texts[int(rng.integers(len(texts)))]
            return text.format(block=goal.block, first=goal.references[0], second=goal.references[1])
        texts = self.phrasings(PHRASINGS, HELD_OUT_PHRASINGS)
        text = texts[int(rng.integers(len(texts)))]
        return text.format(block=goal.block, words=SIDE_WORDS[goal.relation], reference=goal.references[0])

    def predicates(self, world: World, goal: SpatialGoal) -> dict[str, bool]:
        cfg = self.config
        if goal.relation == "between":
            holds = between(world, goal.block, *goal.references, max_off_line=cfg.max_off_line)
        else:
            holds = beside(world, goal.block, goal.references[0], goal.relation, max_gap=cfg.max_gap,
                           lateral_slack=cfg.lateral_slack)
        return judged({"relation_holds": holds, **settled(world, [goal.block], "block", on_the_table=True)})

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Every relation the task can judge, whichever `relations` the episode was drawn from: which
        relation a scene was set up for is the generator's business, and a domain narrowed to it would
        tell the planner the side that the words may leave open ("next to the bowl")."""
        blocks = labels_of(scene, self.shape)
        others = blocks + labels_of(scene, "bowl")
        goals = []
        for block in blocks:
            refs = [o for o in others if o != block]
            goals += [SpatialGoal(block=block, relation=side, references=(ref,)) for side in SIDES for ref in refs]
            goals += [SpatialGoal(block=block, relation="between", references=pair)
                      for pair in itertools.combinations(refs, 2)]
        return [GoalOption(description=self._describe(g), objects=(g.block, *g.references), plan=self.oracle_plan(g),
                           phrasings=self._reversed(g), goal=g.model_dump(mode="json")) for g in goals]

    @staticmethod
    def _reversed(goal: SpatialGoal) -> tuple[str, ...]:
        """"Between a and b" read the other way round."""
        if goal.relation != "between":
            return ()
        return (f"put the {goal.block} between the {goal.references[1]} and the {goal.references[0]}",)

    @staticmethod
    def _describe(goal: SpatialGoal) -> str:
        if goal.relation == "between":
            return f"put the {goal.block} between the {goal.references[0]} and the {goal.references[1]}"
        return f"put the {goal.block} {SIDE_WORDS[goal.relation]} the {goal.references[0]}"

    def oracle_plan(self, goal: SpatialGoal) -> Plan:
        pick = SkillCall(skill="pick", args={"object": goal.block})
        if goal.relation == "between":
            first, second = goal.references
            place = SkillCall(skill="place_between", args={"first": first, "second": second})
        else:
            place = SkillCall(skill="place_next_to", args={"target": goal.references[0], "side": goal.relation})
        return Plan(steps=(pick, place))
