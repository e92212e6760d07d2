"""Domain randomization: lighting, camera pose jitter, table colour and clutter per episode.

Everything here draws from its own random stream, derived from the episode seed apart from
the task's, so switching randomization on changes how a scene looks and what stands
around it, never which objects the task places where. Each axis that has a held-out
variant splits into "seen" and "unseen" sets for the generalization levels
(sims/variation.py): table tints, and the two halves of pybullet_data's 1000 random
objects used as clutter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pybullet as pb
import pybullet_data
from pydantic import BaseModel, ConfigDict, Field

from sims.tasks.base import free_spot
from sims.world import World

Split = Literal["seen", "unseen"]

# Table tints (RGB multiplied into the table's wood texture); None keeps its own look. Tints,
# not image textures: PyBullet's EGL renderer ignores texture changes after loading.
TABLE_TINTS: dict[str, tuple[tuple[float, float, float] | None, ...]] = {
    "seen": (None, (0.8, 0.8, 0.8), (1.0, 0.85, 0.7)),
    "unseen": ((0.55, 0.75, 0.55), (0.6, 0.65, 0.9), (0.5, 0.45, 0.45)),
}
RANDOM_OBJECTS = 1000  # pybullet_data/random_urdfs/000 .. 999
#: Tag for the randomization stream: np.random.default_rng([seed, STREAM]).
STREAM = 0xD0


class RandomizationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lighting: bool = False  # light direction, colour and strengths drawn per episode
    camera_jitter: float = Field(default=0.0, ge=0.0, le=0.1)  # metres each camera's eye and target may move
    table_tint: Literal["none", "seen", "unseen"] = "none"  # the table's colour, from the seen or unseen tints
    clutter: int = Field(default=0, ge=0, le=6)  # random objects no task asks about, placed clear of the task's
    clutter_split: Split = "seen"  # objects 0-499 (seen) or 500-999 (unseen)
    clutter_size: float = Field(default=0.05, gt=0.01, le=0.1)  # largest footprint of a clutter object, metres

    @property
    def active(self) -> bool:
        return self.lighting or self.camera_jitter > 0 or self.table_tint != "none" or self.clutter > 0


def episode_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, STREAM])


def draw_lighting(rng: np.random.Generator) -> dict[str, Any]:
    """getCameraImage light arguments: a light somewhere above the table, slightly tinted."""
    azimuth = rng.uniform(-math.pi, math.pi)
    elevation = rng.uniform(math.radians(35), math.radians(80))
    direction = [math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                 math.sin(elevation)]
    return {
        "lightDirection": direction,
        "lightColor": [float(v) for v in rng.uniform(0.8, 1.0, 3)],
        "lightAmbientCoeff": float(rng.uniform(0.4, 0.75)),
        "lightDiffuseCoeff": float(rng.uniform(0.3, 0.6)),
        "lightSpecularCoeff": float(rng.uniform(0.0, 0.1)),
        "shadow": 0,
    }


def tint_table(world: World, rng: np.random.Generator, split: Split) -> tuple[float, float, float] | None:
    """Give the table one of the split's tints; returns it (None: its own look)."""
    choices = TABLE_TINTS[split]
    tint = choices[int(rng.integers(len(choices)))]
    if tint is not None:
        pb.changeVisualShape(world.table_id, -1, rgbaColor=[*tint, 1.0], physicsClientId=world.client)
    return tint


def add_clutter(world: World, rng: np.random.Generator, config: RandomizationConfig,
                workspace: tuple[tuple[float, float], tuple[float, float]], gap: float = 0.04) -> list[str]:
    """Put up to `config.clutter` random objects where they touch nothing the task placed.

    A crowded scene gets fewer (never overlapping ones): what matters is that clutter is
    there to be ignored, not that an exact count fits.
    """
    lo = 0 if config.clutter_split == "seen" else RANDOM_OBJECTS // 2
    x_range, y_range = workspace
    radius = config.clutter_size / 2
    taken = [(world.position(label)[:2], body.size / 2) for label, body in world.bodies.items()]
    labels = []
    for k in range(config.clutter):
        index = int(rng.integers(lo, lo + RANDOM_OBJECTS // 2))
        xy = free_spot(rng, radius, x_range, y_range, taken, gap, tries=200)
        if xy is None:
            continue
        urdf = Path(pybullet_data.getDataPath()) / "random_urdfs" / f"{index:03d}" / f"{index:03d}.urdf"
        label = f"clutter {k}"
        world.add_mesh_object(label, str(urdf), (float(xy[0]), float(xy[1])), yaw=float(rng.uniform(-math.pi, math.pi)),
                              size=config.clutter_size, kind="clutter")
        taken.append((xy, radius))
        labels.append(label)
    return labels
