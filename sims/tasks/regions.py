"""Geometry the region and relation tasks share: zones, trays, sides and rows on the table.

Sides are as the robot sees the table, the same convention as the place_next_to skill
(fmrobot/control/skills.py; sims may import only fmrobot.types, so it is restated here):
the robot stands at the origin facing +x, so left is +y, right is -y, behind is +x
(farther away) and front is -x (nearer).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sims.world import TABLE_TOP_Z, World

SIDE_DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (0.0, 1.0), "right": (0.0, -1.0), "behind": (1.0, 0.0), "front": (-1.0, 0.0),
}
#: How the instructions say each side ("put the red block to the left of the blue bowl").
SIDE_WORDS = {"left": "to the left of", "right": "to the right of", "front": "in front of", "behind": "behind"}

# traybox.urdf: its flat floor spans 0.42 of its 0.6 m; the rest is sloped wall.
TRAY_FLOOR_FRACTION = 0.7


def half_size(world: World, label: str) -> float:
    """Half the object's footprint across (block edge, bowl or cylinder diameter, zone side)."""
    return world.body(label).size / 2


def xy(world: World, label: str) -> np.ndarray:
    return world.position(label)[:2]


def in_zone(world: World, label: str, zone: str, margin: float = 0.0) -> bool:
    """The object's centre over the (axis-aligned, square) zone, at least `margin` inside its edge."""
    offset = np.abs(xy(world, label) - xy(world, zone))
    return bool(np.all(offset <= half_size(world, zone) - margin))


def in_tray(world: World, label: str, tray: str) -> bool:
    """The object's centre over the tray's flat floor and below its rim: in it, not on its wall."""
    body = world.body(tray)
    offset = np.abs(xy(world, label) - xy(world, tray))
    floor_half = 0.5 * TRAY_FLOOR_FRACTION * body.size
    return bool(np.all(offset <= floor_half) and world.position(label)[2] < TABLE_TOP_Z + body.height)


def on_table(world: World, label: str, tolerance: float = 0.006) -> bool:
    """Resting on the table (or on a flat zone), not on top of or inside another object."""
    body = world.body(label)
    bottom = world.position(label)[2] - body.height / 2
    return bool(bottom < TABLE_TOP_Z + tolerance)


def beside(world: World, label: str, reference: str, side: str, max_gap: float = 0.12,
           lateral_slack: float = 0.02) -> bool:
    """The object's centre on that side of the reference's footprint, within `max_gap` of its edge,
    and not off to one side: its offset across the side's direction stays within the reference's
    half size plus `lateral_slack` (so "left of" does not also accept "behind and a bit left")."""
    direction = np.asarray(SIDE_DIRECTIONS[side])
    across = np.array([-direction[1], direction[0]])
    offset = xy(world, label) - xy(world, reference)
    along, lateral = float(offset @ direction), float(abs(offset @ across))
    edge = half_size(world, reference)
    return bool(edge < along <= edge + max_gap and lateral <= edge + lateral_slack)


def between(world: World, label: str, first: str, second: str, max_off_line: float = 0.03) -> bool:
    """The object's centre near the segment joining the two references' centres, and past both of
    their footprints along it."""
    a, b, p = xy(world, first), xy(world, second), xy(world, label)
    length = float(np.linalg.norm(b - a))
    direction = (b - a) / length
    along = float((p - a) @ direction)
    off_line = float(abs((p - a) @ np.array([-direction[1], direction[0]])))
    return bool(off_line <= max_off_line and half_size(world, first) < along < length - half_size(world, second))


def segment_distance(point: Sequence[float], a: Sequence[float], b: Sequence[float]) -> float:
    """Distance from a point to the segment a-b in the plane."""
    p, a, b = (np.asarray(v, dtype=float)[:2] for v in (point, a, b))
    ab = b - a
    t = float(np.clip((p - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def collinear(points: Sequence[Sequence[float]], tolerance: float) -> bool:
    """Every point within `tolerance` of the best-fitting line through them all."""
    pts = np.asarray(points, dtype=float)[:, :2]
    centred = pts - pts.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    normal = np.array([-axes[0][1], axes[0][0]])
    return bool(np.max(np.abs(centred @ normal)) <= tolerance)


def line_direction(points: Sequence[Sequence[float]]) -> np.ndarray:
    """Unit direction of the best-fitting line through the points (sign arbitrary)."""
    pts = np.asarray(points, dtype=float)[:, :2]
    _, _, axes = np.linalg.svd(pts - pts.mean(axis=0), full_matrices=False)
    return axes[0]


def clear_of(spot: Sequence[float], radius: float, obstacles: Sequence[tuple[Sequence[float], float]],
             gap: float) -> bool:
    """No obstacle (centre, radius) comes within `gap` of a disc of `radius` at `spot`."""
    return all(float(np.hypot(spot[0] - c[0], spot[1] - c[1])) >= radius + r + gap for c, r in obstacles)


def inside(spot: Sequence[float], radius: float, x_range: tuple[float, float], y_range: tuple[float, float]) -> bool:
    return bool(x_range[0] + radius <= spot[0] <= x_range[1] - radius
                and y_range[0] + radius <= spot[1] <= y_range[1] - radius)


def check_colors(colors: Sequence[str], needed: int, what: str) -> None:
    """Config validation: known colour names, and enough distinct ones for `what`."""
    from sims.objects import ALL_COLORS

    unknown = [c for c in colors if c not in ALL_COLORS]
    if unknown:
        raise ValueError(f"unknown colours {unknown}; colours: {', '.join(ALL_COLORS)}")
    if len(set(colors)) < needed:
        raise ValueError(f"{what} need {needed} distinct colours, got {len(set(colors))}")
