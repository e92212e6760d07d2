"""What the block-and-bowl tasks share: their options, scene layout and geometry tests.

pick_place and sort_by_color differ in which colours go where and in what they ask
for; the objects, how they are laid out and what counts as "in a bowl" are the same.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pydantic import Field, model_validator

from sims.objects import ALL_COLORS, COLORS
from sims.tasks.base import TaskConfig, sample_placements
from sims.world import World


class BlocksAndBowlsConfig(TaskConfig):
    colors: tuple[str, ...] = tuple(COLORS)
    block_size: float = Field(default=0.04, ge=0.02, le=0.06)
    bowl_radius: float = Field(default=0.075, ge=0.05, le=0.12)
    bowl_height: float = Field(default=0.05, ge=0.02, le=0.1)

    @model_validator(mode="after")
    def _known_colors(self) -> "BlocksAndBowlsConfig":
        unknown = [c for c in self.colors if c not in ALL_COLORS]
        if unknown:
            raise ValueError(f"unknown colours {unknown}; colours: {', '.join(ALL_COLORS)}")
        return self


def vocabulary(colors: Sequence[str], shape: str = "block") -> tuple[str, ...]:
    """Every label a scene of these colours can hold: '<colour> <shape>' and '<colour> bowl'."""
    return tuple(f"{c} {kind}" for kind in (shape, "bowl") for c in colors)


def footprints(config: BlocksAndBowlsConfig, num_bowls: int, num_blocks: int,
               block_room: float = 0.0) -> list[float]:
    """Radii of the discs the layout keeps apart: bowls first, then blocks.

    `block_room` is a radius around each block kept free of other objects (beyond the
    layout gap); the block's own footprint at any yaw when that is larger.
    """
    block = max(config.block_size * math.sqrt(2) / 2, block_room)
    return [config.bowl_radius + 0.01] * num_bowls + [block] * num_blocks


def populate(
    world: World,
    rng: np.random.Generator,
    config: BlocksAndBowlsConfig,
    bowl_colors: Sequence[str],
    block_colors: Sequence[str],
    block_room: float = 0.0,
    restarts: int = 0,
    workspace: tuple[tuple[float, float], tuple[float, float]] | None = None,
    shape: str = "block",
) -> tuple[list[str], list[str]]:
    """Put bowls and blocks of these colours on the table apart; return their labels.

    Labels are '<colour> bowl' and '<colour> <shape>', so colours must not repeat within a
    kind. `block_room`: see `footprints`. `workspace`: (x range, y range), the config's by
    default. `shape`: 'block' or 'cylinder' (of the block's size), for held-out objects.
    """
    radii = footprints(config, len(bowl_colors), len(block_colors), block_room)
    x_range, y_range = workspace or (config.workspace_x, config.workspace_y)
    spots = sample_placements(rng, radii, x_range, y_range, restarts=restarts)
    bowls = [f"{c} bowl" for c in bowl_colors]
    blocks = [f"{c} {shape}" for c in block_colors]
    for label, color, xy in zip(bowls, bowl_colors, spots[: len(bowls)]):
        world.add_bowl(label, color, xy, radius=config.bowl_radius, height=config.bowl_height)
    for label, color, xy in zip(blocks, block_colors, spots[len(bowls):]):
        add_movable(world, rng, shape, label, color, xy, config.block_size)
    return bowls, blocks


def add_movable(world: World, rng: np.random.Generator, shape: str, label: str, color: str,
                xy: tuple[float, float], size: float) -> None:
    """A graspable object: a block at a random yaw, or a cylinder of the same size."""
    if shape == "block":
        world.add_block(label, color, xy, yaw=float(rng.uniform(-math.pi, math.pi)), size=size)
    elif shape == "cylinder":
        world.add_cylinder(label, color, xy, size=size, height=size)
    else:
        raise ValueError(f"unknown shape {shape!r}; shapes: block, cylinder")


def block_in_bowl(world: World, block: str, bowl: str) -> bool:
    """Within the bowl's wall, and low enough to be inside it rather than on its rim."""
    bowl_body, block_body = world.body(bowl), world.body(block)
    block_xyz, bowl_xyz = world.position(block), world.position(bowl)
    inner_radius = bowl_body.size / 2 - 0.004
    horizontal = float(np.hypot(*(block_xyz[:2] - bowl_xyz[:2])))
    top = bowl_xyz[2] + bowl_body.height + 0.5 * block_body.height
    return bool(horizontal < inner_radius and bowl_xyz[2] < block_xyz[2] < top)


def at_rest(world: World, label: str) -> bool:
    linear, angular = world.velocity(label)
    # Contact jitter leaves a resting block with small instantaneous spins.
    return bool(linear < 0.02 and angular < 0.5)
