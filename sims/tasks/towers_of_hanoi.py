"""towers_of_hanoi: move a tower of blocks of decreasing size from one zone to another.

Three flat coloured zones lie side by side on the table; one holds a tower of
blocks, largest at the bottom. The instruction names the zone the tower stands on and
the zone it must end on; the third zone is the spare. A block may never rest on a
smaller one, so three blocks take the classic seven moves (CLIPort's towers-of-hanoi).

The predicates judge the end state only: the tower on the target zone in the right
order, upright, at rest and released. Whether the rule was kept on the way is not
checked; the oracle plan keeps it, and a planner that breaks it usually drops a block
off a smaller one and fails anyway.

The zones are spread across the table (sideways, as the front camera sees it), so a
tower never hides a zone or a block standing behind it, and the open fingers at one
zone stay clear of the towers on the others.

The instruction names zones, not blocks, so the plan depends on the scene: the
templates carry no plan, and the oracle plan is built from the goal.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb
from pydantic import Field, model_validator

from fmrobot.types import GoalOption, InstructionTemplate, Plan, SceneDescription, SkillCall, TaskSpec
from sims.objects import ALL_COLORS, COLORS
from sims.tasks.base import Goal, Task, TaskConfig
from sims.tasks.blocks_and_bowls import add_movable
from sims.tasks.domain import labels_of
from sims.tasks.judging import judged, settled
from sims.tasks.stack_blocks import rests_on
from sims.variation import level
from sims.world import TABLE_TOP_Z, World

TEMPLATES = (
    "move the tower from the {source} to the {target}",
    "move the stack of {shape}s from the {source} to the {target}, never putting a {shape} on a smaller one",
    "solve the towers of hanoi: move every {shape} from the {source} to the {target}",
)
HELD_OUT_TEMPLATES = (  # generalization levels L3+
    "rebuild the tower that stands on the {source} on the {target}",
    "shift the whole stack from the {source} over to the {target}, one {shape} at a time",
)
ZONES = 3
ZONE_THICKNESS = 0.002  # sims.world.World.add_zone


class TowersOfHanoiConfig(TaskConfig):
    colors: tuple[str, ...] = tuple(COLORS)
    # Block edges from the bottom of the tower up. Below 4 cm the Robotiq gripper lets a held cube turn
    # about the finger axis; above 5 cm the Panda's open fingers (8 cm) leave too little room.
    sizes: tuple[float, ...] = (0.05, 0.045, 0.04)
    zone_size: float = Field(default=0.12, ge=0.08, le=0.2)  # zone edge, metres
    # Least sideways (y) distance between zone centres: no tower hides another zone from the
    # front camera, and the open fingers (~5 cm from the centre) miss the neighbouring tower.
    zone_spacing: float = Field(default=0.17, ge=0.1, le=0.3)
    offset_tolerance: float = Field(default=0.4, gt=0.0, le=0.5)  # centre offset, in the lower block's size
    height_tolerance: float = Field(default=0.01, gt=0.0, le=0.02)  # metres off the expected height
    workspace_y: tuple[float, float] = (-0.30, 0.30)
    max_steps: int = Field(default=2400, gt=0)  # ~3x what the scripted policy needs for seven moves

    @model_validator(mode="after")
    def _check(self) -> "TowersOfHanoiConfig":
        unknown = [c for c in self.colors if c not in ALL_COLORS]
        if unknown:
            raise ValueError(f"unknown colours {unknown}; colours: {', '.join(ALL_COLORS)}")
        if not 2 <= len(self.sizes) <= 4:
            raise ValueError(f"a tower has 2 to 4 blocks, got sizes {list(self.sizes)}")
        if any(not 0.02 <= s <= 0.06 for s in self.sizes):
            raise ValueError(f"block sizes must be 0.02 to 0.06 m (the gripper opens 8 cm), got {list(self.sizes)}")
        if any(lower <= upper for lower, upper in zip(self.sizes, self.sizes[1:])):
            raise ValueError(f"block sizes must shrink from the bottom of the tower up, got {list(self.sizes)}")
        if self.sizes[0] * math.sqrt(2) > self.zone_size:
            raise ValueError(f"a zone of {self.zone_size} m cannot hold a {self.sizes[0]} m block at every yaw")
        palette = level(self.level).colors if self.level else self.colors
        needed = ZONES + len(self.sizes)
        if len(set(palette)) < needed:
            raise ValueError(f"{ZONES} zones and {len(self.sizes)} blocks need {needed} distinct colours, "
                             f"got {len(set(palette))}: {', '.join(palette)}")
        _zone_row(np.random.default_rng(0), self, self.workspace_x, self.workspace_y)  # fits, or says why
        return self


class TowersOfHanoiGoal(Goal):
    source: str  # zone the tower starts on
    target: str  # zone it must end on
    spare: str
    tower: tuple[str, ...]  # blocks from the bottom up, largest first


def hanoi_moves(blocks: int, source: int, target: int, spare: int) -> list[tuple[int, int]]:
    """The shortest solution: (from peg, to peg) for each of the 2**blocks - 1 moves."""
    if blocks == 0:
        return []
    return (hanoi_moves(blocks - 1, source, spare, target) + [(source, target)]
            + hanoi_moves(blocks - 1, spare, target, source))


def on_zone(world: World, label: str, zone: str, height_tolerance: float) -> bool:
    """Resting on the zone (not on a block on it), its centre within the zone's square."""
    xyz, centre = world.position(label), world.position(zone)
    half = world.body(zone).size / 2
    expected_z = TABLE_TOP_Z + ZONE_THICKNESS + world.body(label).height / 2
    return bool(abs(xyz[0] - centre[0]) < half and abs(xyz[1] - centre[1]) < half
                and abs(xyz[2] - expected_z) < height_tolerance)


class TowersOfHanoi(Task[TowersOfHanoiGoal]):
    name = "towers_of_hanoi"
    Config = TowersOfHanoiConfig
    config: TowersOfHanoiConfig

    def spec(self) -> TaskSpec:
        palette = self.palette(self.config.colors)
        return TaskSpec(
            name=self.name,
            description="Move a tower of blocks of decreasing size from one zone to another, one block at a "
                        "time, never putting a block on a smaller one.",
            skills=("pick", "place"),
            templates=tuple(InstructionTemplate(text=t.replace("{shape}", self.shape), plan=()) for t in TEMPLATES),
            vocabulary=tuple(f"{c} {kind}" for kind in (self.shape, "zone") for c in palette),
            max_steps=self.config.max_steps,
        )

    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, TowersOfHanoiGoal]:
        cfg = self.config
        n = len(cfg.sizes)
        colors = [str(c) for c in rng.choice(self.palette(cfg.colors), size=ZONES + n, replace=False)]
        zones = [f"{c} zone" for c in colors[:ZONES]]
        for label, color, xy in zip(zones, colors[:ZONES], _zone_row(rng, cfg, *self.workspace())):
            world.add_zone(label, color, xy, size=cfg.zone_size)
        source, target, spare = (zones[i] for i in rng.permutation(ZONES))
        tower = [f"{c} {self.shape}" for c in colors[ZONES:]]
        centre = world.position(source)
        bottom = TABLE_TOP_Z + ZONE_THICKNESS
        for label, color, size in zip(tower, colors[ZONES:], cfg.sizes):
            add_movable(world, rng, self.shape, label, color, (float(centre[0]), float(centre[1])), size)
            # Built in the air a millimetre apart; the environment lets the tower settle.
            body = world.body(label)
            _, orientation = pb.getBasePositionAndOrientation(body.body_id, physicsClientId=world.client)
            pb.resetBasePositionAndOrientation(body.body_id, (centre[0], centre[1], bottom + body.height / 2 + 0.001),
                                               orientation, physicsClientId=world.client)
            bottom += body.height + 0.001
        goal = TowersOfHanoiGoal(source=source, target=target, spare=spare, tower=tuple(tower))
        templates = self.phrasings(TEMPLATES, HELD_OUT_TEMPLATES)
        template = templates[int(rng.integers(len(templates)))]
        return template.format(source=source, target=target, shape=self.shape), goal

    def predicates(self, world: World, goal: TowersOfHanoiGoal) -> dict[str, bool]:
        cfg = self.config
        base = goal.tower[0]
        placed = {f"{base} on {goal.target}": on_zone(world, base, goal.target, cfg.height_tolerance)}
        placed.update({f"{upper} on {lower}": rests_on(world, upper, lower, cfg.offset_tolerance,
                                                       cfg.height_tolerance)
                       for lower, upper in zip(goal.tower, goal.tower[1:])})
        overall = {
            "tower_on_target": all(placed.values()),
            "upright": all(world.upright(b) for b in goal.tower),
            **settled(world, goal.tower, "tower"),
        }
        return judged(overall, placed)

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Move the tower (the perceived blocks, bottom up by height) from the zone under it to
        either other zone."""
        blocks = sorted((o for o in scene.objects if o.label in labels_of(scene, self.shape)),
                        key=lambda o: o.position[2])
        zones = [o for o in scene.objects if o.label in labels_of(scene, "zone")]
        if not blocks or len(zones) < 3:
            return []
        base = np.asarray(blocks[0].position[:2])
        source = min(zones, key=lambda z: float(np.hypot(*(np.asarray(z.position[:2]) - base)))).label
        others = [z.label for z in zones if z.label != source]
        options = []
        for target in others:
            spare = next(z for z in others if z != target)
            goal = TowersOfHanoiGoal(source=source, target=target, spare=spare, tower=tuple(b.label for b in blocks))
            options.append(GoalOption(description=f"move the tower from the {source} to the {target}",
                                      objects=(*goal.tower, source, target),
                                      # the zone it passes through, for "using the X zone on the way"
                                      relations=(("at", spare, "via"),), plan=self.oracle_plan(goal),
                                      goal=goal.model_dump(mode="json")))
        return options

    def oracle_plan(self, goal: TowersOfHanoiGoal) -> Plan:
        zones = (goal.source, goal.target, goal.spare)
        pegs: list[list[str]] = [list(goal.tower), [], []]
        steps: list[SkillCall] = []
        for src, dst in hanoi_moves(len(goal.tower), 0, 1, 2):
            block = pegs[src].pop()
            # Onto the block on top of the destination, or onto the empty zone itself.
            onto = pegs[dst][-1] if pegs[dst] else zones[dst]
            pegs[dst].append(block)
            steps += [SkillCall(skill="pick", args={"object": block}), SkillCall(skill="place", args={"target": onto})]
        return Plan(steps=tuple(steps))


def _zone_row(rng: np.random.Generator, config: TowersOfHanoiConfig, x_range: tuple[float, float],
              y_range: tuple[float, float]) -> list[tuple[float, float]]:
    """Zone centres at least `zone_spacing` apart sideways, in random order, anywhere in x.

    Gaps are drawn uniformly: sorted uniform draws on the room left over, each pushed
    past its predecessor by the spacing (the uniform distribution of such rows).
    """
    half = config.zone_size / 2
    low, high = y_range[0] + half, y_range[1] - half
    room = high - low - (ZONES - 1) * config.zone_spacing
    if room < 0 or x_range[1] - x_range[0] < config.zone_size:
        raise ValueError(f"{ZONES} zones of {config.zone_size} m, {config.zone_spacing} m apart sideways, do not fit "
                         f"in x={x_range}, y={y_range}; use smaller zones, less spacing or a wider workspace")
    ys = low + np.sort(rng.uniform(0.0, room, ZONES)) + config.zone_spacing * np.arange(ZONES)
    xs = rng.uniform(x_range[0] + half, x_range[1] - half, ZONES)
    return [(float(x), float(y)) for x, y in zip(xs, ys)]
