"""Keep-out zones: fixed boxes from the config, or the footprints of perceived objects.

A zone given by `label` (a shell pattern such as "*hazard*") follows the scene: each
perceived object that matches becomes a region, its footprint grown by `margin`. A zone
given by `box` stays where the config puts it. Either way the region reaches from the
table up to `height` above the top of what marks it, so that a gripper passing high
over it is not stopped while one that reaches down into it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fmrobot.safety.geometry import Bounds, matches
from fmrobot.types import SceneDescription


class KeepOutZone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    label: str | None = None  # shell pattern of perceived objects that mark the zone
    box: Bounds | None = None  # or a fixed box in world coordinates
    margin: float = Field(default=0.03, ge=0.0)  # metres added around a labelled zone's footprint
    height: float = Field(default=0.10, gt=0.0)  # metres above a labelled zone's top that it reaches

    @model_validator(mode="after")
    def _one_source(self) -> "KeepOutZone":
        if (self.label is None) == (self.box is None):
            raise ValueError(f"keep-out zone {self.name!r} needs exactly one of `label` (a pattern such as "
                             "'*hazard*') or `box` (x, y, z ranges)")
        return self


@dataclass(frozen=True)
class Region:
    """One keep-out region in world coordinates, this scene."""

    name: str
    x: tuple[float, float]
    y: tuple[float, float]
    z: tuple[float, float]
    source: str | None = None  # the perceived object that marks it, if any

    def contains_xy(self, point) -> bool:
        return self.x[0] <= point[0] <= self.x[1] and self.y[0] <= point[1] <= self.y[1]

    def contains(self, point) -> bool:
        return self.contains_xy(point) and self.z[0] <= point[2] <= self.z[1]

    def __str__(self) -> str:
        return (f"{self.name}: x [{self.x[0]:.3f}, {self.x[1]:.3f}], y [{self.y[0]:.3f}, {self.y[1]:.3f}], "
                f"z [{self.z[0]:.3f}, {self.z[1]:.3f}]")


def zones_in(zones: Sequence[KeepOutZone], scene: SceneDescription) -> list[Region]:
    """The regions the zones cover in this scene."""
    regions = []
    for zone in zones:
        if zone.box is not None:
            regions.append(Region(zone.name, zone.box.x, zone.box.y, zone.box.z))
            continue
        assert zone.label is not None
        for thing in scene.objects:
            if not matches(thing.label, [zone.label]):
                continue
            (cx, cy, cz), (ex, ey, ez) = thing.position, thing.extent
            grow = zone.margin
            regions.append(Region(
                f"{zone.name} ({thing.label})",
                (cx - ex / 2 - grow, cx + ex / 2 + grow),
                (cy - ey / 2 - grow, cy + ey / 2 + grow),
                (cz - ez / 2 - grow, cz + ez / 2 + zone.height),
                source=thing.label,
            ))
    return regions
