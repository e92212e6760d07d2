"""Every registered component passes fmrobot.testing, and the checks catch broken ones."""

import pytest

from fmrobot import registry
from fmrobot.testing import (
    ConformanceError,
    check_perceptor,
    check_planner,
    check_policy,
    check_shield,
)
from fmrobot.types import Action, PlanDecision, SafetyVerdict, SceneDescription, SkillStatus

CHECKS = {"perception": check_perceptor, "planner": check_planner, "policy": check_policy, "safety": check_shield}


def _registered():
    for group, check in CHECKS.items():
        for name in registry.available(group):
            yield pytest.param(group, name, check, id=f"{group}={name}")


def _test_options(group: str, name: str, request) -> dict:
    """Options that let a component build offline: model components get tiny local models."""
    if (group, name) == ("perception", "owlvit"):
        return {"model": str(request.getfixturevalue("tiny_owlvit_dirs")["owlvit"])}
    if (group, name) == ("perception", "clip"):
        return {"model": str(request.getfixturevalue("tiny_clip_dir"))}
    return {}


def _test_dependencies(resolved) -> dict:
    """Planners that need a language model get a deterministic stand-in."""
    if not getattr(resolved.cls, "needs_llm", False):
        return {}
    import json

    from tests.fakes import KeywordLM, ScriptedLM, SeeingScriptedLM

    if resolved.name in ("llm_structured", "vlm"):
        plan = json.dumps({"steps": [{"skill": "pick", "args": {"object": "red block"}},
                                     {"skill": "place", "args": {"target": "green bowl"}}]})
        return {"llm": (SeeingScriptedLM if resolved.name == "vlm" else ScriptedLM)([plan] * 10)}
    return {"llm": KeywordLM()}


@pytest.mark.parametrize("group,name,check", list(_registered()))
def test_registered_component_conforms(group, name, check, request):
    resolved = registry.resolve(group, {"name": name, **_test_options(group, name, request)})
    check(resolved.build(**_test_dependencies(resolved)))


class CrashingPlanner:
    """Looks objects up in a dict: an absent object escapes as a bare KeyError."""

    def plan(self, instruction, scene, context):
        from fmrobot.types import Plan, SkillCall

        objects = {o.label: o for o in scene.objects}
        block = objects[" ".join(instruction.split()[2:4])]
        return PlanDecision(instruction=instruction, plan=Plan(steps=(
            SkillCall(skill="pick", args={"object": block.label}),)))

    def replan(self, previous, feedback, scene, context):
        return previous


class GuessingPlanner:
    """Plans with whatever the instruction says, present or not."""

    def plan(self, instruction, scene, context):
        from fmrobot.types import Plan, SkillCall

        color = instruction.split()[2]
        return PlanDecision(instruction=instruction, plan=Plan(steps=(
            SkillCall(skill="pick", args={"object": f"{color} block"}),)))

    def replan(self, previous, feedback, scene, context):
        return previous


class BlindPerceptor:
    needs_images = True

    def perceive(self, obs, queries):
        return SceneDescription(objects=())


class LazyPolicy:
    skills = ()

    def reset(self, call, scene, obs): ...
    def act(self, obs): return Action(ee_position=(0, 0, 0))
    def status(self, obs): return SkillStatus.RUNNING
    def failure_reason(self): return ""


class SilentShield:
    def check(self, plan, scene):
        return SafetyVerdict(allowed=False, plan=None)


def test_checks_catch_broken_components():
    with pytest.raises(ConformanceError, match="raised KeyError"):
        check_planner(CrashingPlanner())
    with pytest.raises(ConformanceError, match="not in the scene"):
        check_planner(GuessingPlanner())
    with pytest.raises(ConformanceError, match="'red block' not perceived"):
        check_perceptor(BlindPerceptor(), expect_labels=True)
    with pytest.raises(ConformanceError, match="lists the skills"):
        check_policy(LazyPolicy())
    with pytest.raises(ConformanceError, match="must list its violations"):
        check_shield(SilentShield())
