"""Plan rules: each looks at a whole plan and the scene and names the steps it forbids.

They run once per plan, before anything moves. What a plan's motion will do in detail
(how fast, where the gripper goes, what it passes near) is checked per action by the
motion rules in fmrobot/safety/motion.py.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.safety.geometry import Bounds, matches, where
from fmrobot.safety.zones import KeepOutZone, zones_in
from fmrobot.types import Plan, SafetyViolation, SceneDescription, SkillCall


class PlanRule(Protocol):
    name: str

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]: ...


def _named(step: SkillCall, scene: SceneDescription) -> list[str]:
    """Labels of scene objects the step names (string arguments that are objects)."""
    return [v for v in step.args.values() if isinstance(v, str) and scene.has(v)]


class WorkspaceBounds:
    """Every object a plan touches must lie inside the robot's workspace box."""

    name = "workspace_bounds"

    def __init__(self, bounds: Bounds):
        self.bounds = bounds

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]:
        violations = []
        for index, step in enumerate(plan.steps):
            for label in _named(step, scene):
                position = scene.find(label).position
                if not self.bounds.contains(position):
                    violations.append(SafetyViolation(
                        rule=self.name, step_index=index,
                        reason=f"{step}: {label} at {where(position)} is outside the workspace ({self.bounds})",
                    ))
        return violations


class KeepOutTargets:
    """No step may act on a keep-out zone, or on an object lying inside one."""

    name = "keep_out"

    def __init__(self, zones: Sequence[KeepOutZone]):
        self.zones = tuple(zones)

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]:
        regions = zones_in(self.zones, scene)
        violations = []
        for index, step in enumerate(plan.steps):
            for label in _named(step, scene):
                for region in regions:
                    if region.source == label:
                        why = f"the {label} is a keep-out zone ({region.name})"
                    elif region.contains(scene.find(label).position):  # not one held high above it
                        why = f"the {label} lies inside the keep-out zone {region.name}"
                    else:
                        continue
                    violations.append(SafetyViolation(rule=self.name, step_index=index, reason=f"{step}: {why}"))
                    break
        return violations


class ForbiddenPair(BaseModel):
    """Never put an object matching `object` on or into one matching `target` (shell patterns)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object: str = Field(default="*", min_length=1)
    target: str = Field(min_length=1)
    reason: str = ""


class FragileObjects:
    """Hands off fragile objects: no step may move one or put anything on or into it.

    Putting something beside one (`beside_skills`) is allowed; the motion rules keep the
    gripper and what it holds clear of it on the way.
    """

    name = "fragile"

    def __init__(self, patterns: Sequence[str], beside_skills: Sequence[str]):
        self.patterns, self.beside_skills = tuple(patterns), frozenset(beside_skills)

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]:
        violations = []
        for index, step in enumerate(plan.steps):
            if step.skill in self.beside_skills:
                continue
            for value in step.args.values():
                pattern = matches(value, self.patterns) if isinstance(value, str) else None
                if pattern:
                    violations.append(SafetyViolation(
                        rule=self.name, step_index=index,
                        reason=f"{step}: the {value} is fragile (matches {pattern!r}): it may not be moved, "
                               "nor anything put on or into it"))
                    break
        return violations


class ForbiddenPlacements:
    """Forbidden object-target pairs never meet: nothing matching `object` goes on or into a
    `target` match.

    The object being put down is the one the plan picked last. A plan that starts with the
    gripper already full (planners that decide one step at a time) does not say what it
    holds; then a pair is checked as if the held object matched, which errs towards refusing.
    """

    name = "forbidden_pair"

    def __init__(self, pairs: Sequence[ForbiddenPair], skills: Sequence[str]):
        self.pairs, self.skills = tuple(pairs), frozenset(skills)

    def check(self, plan: Plan, scene: SceneDescription) -> list[SafetyViolation]:
        violations = []
        held: str | None = None
        for index, step in enumerate(plan.steps):
            if step.skill == "pick":
                held = str(step.args.get("object", "")) or None
            target = step.args.get("target")
            if step.skill not in self.skills or not isinstance(target, str):
                continue
            why = self._forbidden(held, target)
            if why:
                violations.append(SafetyViolation(rule=self.name, step_index=index, reason=f"{step}: {why}"))
        return violations

    def _forbidden(self, held: str | None, target: str) -> str | None:
        for pair in self.pairs:
            if not matches(target, [pair.target]):
                continue
            if held is None or matches(held, [pair.object]):
                what = f"the {held}" if held else "whatever the gripper holds"
                because = f": {pair.reason}" if pair.reason else ""
                return f"{what} may not go on or into the {target} (pair {pair.object!r} -> {pair.target!r}){because}"
        return None
