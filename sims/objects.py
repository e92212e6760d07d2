"""Procedural tabletop objects: coloured blocks and bowls that are real containers.

A bowl is a compound body (a floor disc and a ring of wall slabs), so it is concave
as a whole while each part stays convex, which is what PyBullet's dynamic collision
needs. Nothing here is loaded from a mesh file.
"""

from __future__ import annotations

import math

import pybullet as pb

#: Named colours (RGB in 0..1). Names are what instructions and labels use.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12),
    "green": (0.15, 0.65, 0.2),
    "blue": (0.12, 0.3, 0.85),
    "yellow": (0.95, 0.85, 0.1),
    "orange": (0.98, 0.5, 0.05),
    "purple": (0.5, 0.2, 0.7),
    "pink": (0.98, 0.55, 0.7),
    "cyan": (0.1, 0.8, 0.85),
    "brown": (0.5, 0.3, 0.15),
    "gray": (0.5, 0.5, 0.5),
}


#: Colours no component was trained or tuned on: generalization levels L2+ draw from these.
UNSEEN_COLORS: dict[str, tuple[float, float, float]] = {
    "white": (0.93, 0.93, 0.9),
    "magenta": (0.85, 0.1, 0.75),
    "olive": (0.5, 0.5, 0.1),
    "navy": (0.08, 0.1, 0.45),
    "lime": (0.6, 0.95, 0.2),
    "teal": (0.05, 0.5, 0.5),
}
ALL_COLORS: dict[str, tuple[float, float, float]] = {**COLORS, **UNSEEN_COLORS}


def rgba(color: str) -> list[float]:
    try:
        return [*ALL_COLORS[color], 1.0]
    except KeyError:
        raise ValueError(f"unknown colour {color!r}; colours: {', '.join(ALL_COLORS)}") from None


def create_block(client: int, color: str, size: float, mass: float, position, yaw: float) -> int:
    half = [size / 2] * 3
    collision = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba(color), physicsClientId=client)
    body = pb.createMultiBody(
        mass,
        collision,
        visual,
        basePosition=position,
        baseOrientation=pb.getQuaternionFromEuler([0, 0, yaw]),
        physicsClientId=client,
    )
    pb.changeDynamics(body, -1, lateralFriction=1.0, spinningFriction=0.002, rollingFriction=0.0002,
                      physicsClientId=client)
    return body


# PyBullet's compound shapes hold at most 16 parts (MAX_COMPOUND_COLLISION_SHAPES); more crashes.
MAX_BOWL_SEGMENTS = 15


def create_bowl(client: int, color: str, radius: float, height: float, position, wall: float = 0.008,
                segments: int = 12, mass: float = 0.3) -> int:
    """A round container: floor disc plus `segments` wall slabs on a ring of `radius`."""
    if not 3 <= segments <= MAX_BOWL_SEGMENTS:
        raise ValueError(f"a bowl has 3..{MAX_BOWL_SEGMENTS} wall segments, got {segments}")
    # Slabs overlap slightly so that nothing slips between neighbours.
    slab_width = 2 * radius * math.tan(math.pi / segments) + 0.004
    types = [pb.GEOM_CYLINDER] + [pb.GEOM_BOX] * segments
    radii = [radius] + [0.0] * segments
    lengths = [wall] + [0.0] * segments
    half_extents = [[0.0, 0.0, 0.0]] + [[wall / 2, slab_width / 2, (height - wall) / 2]] * segments
    positions = [[0.0, 0.0, wall / 2]]
    orientations = [[0.0, 0.0, 0.0, 1.0]]
    for k in range(segments):
        angle = 2 * math.pi * k / segments
        # Walls stand on the floor disc, not on the table: only the disc touches the table,
        # which keeps the contact count (and the cost of a physics step) low.
        positions.append([radius * math.cos(angle), radius * math.sin(angle), wall + (height - wall) / 2])
        orientations.append(list(pb.getQuaternionFromEuler([0, 0, angle])))
    collision = pb.createCollisionShapeArray(
        shapeTypes=types, radii=radii, lengths=lengths, halfExtents=half_extents,
        collisionFramePositions=positions, collisionFrameOrientations=orientations, physicsClientId=client,
    )
    visual = pb.createVisualShapeArray(
        shapeTypes=types, radii=radii, lengths=lengths, halfExtents=half_extents,
        visualFramePositions=positions, visualFrameOrientations=orientations,
        rgbaColors=[rgba(color)] * (segments + 1), physicsClientId=client,
    )
    body = pb.createMultiBody(mass, collision, visual, basePosition=position, physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=client)
    return body


def create_cylinder(client: int, color: str, radius: float, height: float, mass: float, position) -> int:
    collision = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=rgba(color),
                                  physicsClientId=client)
    body = pb.createMultiBody(mass, collision, visual, basePosition=position, physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=1.0, spinningFriction=0.002, rollingFriction=0.0002,
                      physicsClientId=client)
    return body


def create_zone(client: int, color: str, size: float, position, thickness: float = 0.002) -> int:
    """A flat coloured square lying on the table: a target region, not an obstacle.

    It has a (thin) collision box so that it shows in depth and segmentation like any
    object; being static and flush with the table, nothing trips over it.
    """
    half = [size / 2, size / 2, thickness / 2]
    collision = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba(color), physicsClientId=client)
    return pb.createMultiBody(0.0, collision, visual, basePosition=position, physicsClientId=client)


def set_color(client: int, body: int, color: str) -> None:
    """Recolour every visual part of a body (meshes loaded from pybullet_data keep their shape)."""
    for link in range(-1, pb.getNumJoints(body, physicsClientId=client)):
        pb.changeVisualShape(body, link, rgbaColor=rgba(color), physicsClientId=client)
