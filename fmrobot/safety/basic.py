"""The rule shield: plan rules before a plan runs, motion rules before every action.

Each rule is typed and configured here; a rule is switched off by emptying its list or
setting its limit to null. The plan rules refuse; of the motion rules, the speed limit
repairs (it shortens the step), the others refuse the action, which fails the skill
call with the reason and lets the runner re-perceive and replan.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.interfaces import ActionContext
from fmrobot.safety.geometry import Bounds
from fmrobot.safety.motion import (
    EndEffectorBounds,
    KeepOutVolumes,
    MaxEndEffectorSpeed,
    MotionRule,
    PathClearance,
    ReleaseSite,
)
from fmrobot.safety.rules import (
    ForbiddenPair,
    ForbiddenPlacements,
    FragileObjects,
    KeepOutTargets,
    PlanRule,
    WorkspaceBounds,
)
from fmrobot.safety.zones import KeepOutZone
from fmrobot.types import Action, ActionVerdict, Plan, SafetyVerdict, SafetyViolation, SceneDescription


class CollisionCheckConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    margin: float = Field(default=0.01, ge=0.0, le=0.1)  # metres; refuse paths that come closer than this
    # "fragile": the gripper must not touch fragile objects (the `fragile` patterns); "all": nothing
    # the skill call does not name. The scripted picks brush bowl rims beside the block now and
    # then, which "all" refuses (see the README's safety section).
    objects: Literal["fragile", "all"] = "fragile"


class BasicShieldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Objects a plan touches and every end-effector target stay in this box.
    workspace: Bounds = Bounds(x=(0.2, 0.85), y=(-0.45, 0.45), z=(0.55, 1.3))
    keep_out: tuple[KeepOutZone, ...] = (KeepOutZone(name="hazard", label="*hazard*"),
                                         KeepOutZone(name="keep-out", label="*keep*out*"))
    # Label patterns of fragile objects: never moved, nothing put on or into them, the gripper kept clear.
    fragile: tuple[str, ...] = ("*glass*", "*vase*", "*fragile*")
    beside_skills: tuple[str, ...] = ("place_next_to", "place_between")  # may name a fragile object
    forbidden_pairs: tuple[ForbiddenPair, ...] = ()  # e.g. {object: "*block*", target: "*tray*"}
    placing_skills: tuple[str, ...] = ("place", "push")  # skills whose `target` forbidden_pairs check
    max_ee_speed: float | None = Field(default=0.5, gt=0.0)  # m/s of the commanded target; null: no limit
    collision: CollisionCheckConfig | None = CollisionCheckConfig()  # null: no path check


class BasicShield:
    Config = BasicShieldConfig

    def __init__(self, config: BasicShieldConfig | None = None):
        self.config = c = config or BasicShieldConfig()
        self.plan_rules: list[PlanRule] = [WorkspaceBounds(c.workspace)]
        self.motion_rules: list[MotionRule] = []
        if c.max_ee_speed is not None:  # first: the other rules judge the step that will really be taken
            self.motion_rules.append(MaxEndEffectorSpeed(c.max_ee_speed))
        self.motion_rules.append(EndEffectorBounds(c.workspace))
        if c.keep_out:
            self.plan_rules.append(KeepOutTargets(c.keep_out))
            self.motion_rules.append(KeepOutVolumes(c.keep_out))
        if c.fragile:
            self.plan_rules.append(FragileObjects(c.fragile, c.beside_skills))
        if c.forbidden_pairs:
            self.plan_rules.append(ForbiddenPlacements(c.forbidden_pairs, c.placing_skills))
        if c.keep_out or c.fragile:
            self.motion_rules.append(ReleaseSite(c.keep_out, c.fragile))
        if c.collision is not None:
            self.motion_rules.append(PathClearance(c.collision.margin, None if c.collision.objects == "all" else c.fragile))

    def check(self, plan: Plan, scene: SceneDescription) -> SafetyVerdict:
        violations = tuple(v for rule in self.plan_rules for v in rule.check(plan, scene))
        return SafetyVerdict(allowed=not violations, plan=None if violations else plan, violations=violations)

    def check_action(self, action: Action, context: ActionContext) -> ActionVerdict:
        violations: list[SafetyViolation] = []
        for rule in self.motion_rules:
            checked, violation = rule.check(action, context)
            if violation is not None:
                violations.append(violation)
            if checked is None:
                return ActionVerdict(allowed=False, action=None, violations=tuple(violations))
            action = checked
        return ActionVerdict(allowed=True, action=action, violations=tuple(violations))


class NoShield:
    """Lets every plan and action through; for measuring what a shield prevents."""

    def check(self, plan: Plan, scene: SceneDescription) -> SafetyVerdict:
        return SafetyVerdict(allowed=True, plan=plan)
