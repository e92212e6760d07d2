"""What shield rules share: boxes in world coordinates and label patterns."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Sequence

from pydantic import BaseModel, ConfigDict, model_validator


class Bounds(BaseModel):
    """An axis-aligned box in world coordinates (metres)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: tuple[float, float]
    y: tuple[float, float]
    z: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> "Bounds":
        for axis in ("x", "y", "z"):
            low, high = getattr(self, axis)
            if low >= high:
                raise ValueError(f"{axis} bounds must be (low, high) with low < high, got {(low, high)}")
        return self

    def contains(self, point) -> bool:
        return all(lo <= v <= hi for v, (lo, hi) in zip(point, (self.x, self.y, self.z)))

    def __str__(self) -> str:
        return f"x in [{self.x[0]}, {self.x[1]}], y in [{self.y[0]}, {self.y[1]}], z in [{self.z[0]}, {self.z[1]}]"


def matches(label: str, patterns: Sequence[str]) -> str | None:
    """The first shell-style pattern (`*glass*`) that `label` matches, ignoring case."""
    lowered = label.lower()
    return next((p for p in patterns if fnmatchcase(lowered, p.lower())), None)


def where(position) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in position) + ")"
