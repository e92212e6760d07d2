"""The basic shield: workspace bounds (more rules join it as they are written)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from fmrobot.safety.rules import Bounds, SafetyRule, WorkspaceBounds
from fmrobot.types import Plan, SafetyVerdict, SceneDescription


class BasicShieldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace: Bounds = Bounds(x=(0.2, 0.85), y=(-0.45, 0.45), z=(0.55, 1.3))


class BasicShield:
    Config = BasicShieldConfig

    def __init__(self, config: BasicShieldConfig | None = None):
        self.config = config or BasicShieldConfig()
        self.rules: list[SafetyRule] = [WorkspaceBounds(self.config.workspace)]

    def check(self, plan: Plan, scene: SceneDescription) -> SafetyVerdict:
        violations = tuple(v for rule in self.rules for v in rule.check(plan, scene))
        return SafetyVerdict(allowed=not violations, plan=None if violations else plan, violations=violations)


class NoShield:
    """Lets every plan through; for measuring what a shield prevents."""

    def check(self, plan: Plan, scene: SceneDescription) -> SafetyVerdict:
        return SafetyVerdict(allowed=True, plan=plan)
