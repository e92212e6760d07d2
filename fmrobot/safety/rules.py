"""Safety rules: each looks at a plan and the scene and names what it forbids."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from fmrobot.types import Plan, SafetyViolation, SceneDescription


class SafetyRule(Protocol):
    name: str

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]: ...


class Bounds(BaseModel):
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


class WorkspaceBounds:
    """Every object a plan touches must lie inside the robot's workspace box."""

    name = "workspace_bounds"

    def __init__(self, bounds: Bounds):
        self.bounds = bounds

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]:
        violations = []
        for index, step in enumerate(plan.steps):
            for value in step.args.values():
                if not isinstance(value, str) or not scene.has(value):
                    continue
                position = scene.find(value).position
                if not self.bounds.contains(position):
                    where = ", ".join(f"{v:.3f}" for v in position)
                    violations.append(SafetyViolation(
                        rule=self.name, step_index=index,
                        reason=f"{step}: {value} at ({where}) is outside the workspace ({self.bounds})",
                    ))
        return violations
