import pytest

from fmrobot.errors import ObjectNotFoundError, PlanningError
from fmrobot.planning.oracle import OraclePlanner
from fmrobot.planning.scripted import ScriptedPlanner
from fmrobot.planning.templates import match
from fmrobot.testing import check_planner, synthetic_context, synthetic_scene
from fmrobot.types import InstructionTemplate, SkillCall


def test_templates_match_with_case_spacing_and_punctuation_tolerance():
    template = InstructionTemplate(text="put the {block} in the {bowl}", plan=())
    assert match(template, "Put the  red block in the green bowl.") == {"block": "red block", "bowl": "green bowl"}
    assert match(template, "put the red block on the green bowl") is None


def test_scripted_planner_parses_the_instruction_into_the_template_plan():
    decision = ScriptedPlanner().plan("put the red block in the green bowl", synthetic_scene(), synthetic_context())
    assert decision.plan is not None
    assert decision.plan.steps == (
        SkillCall(skill="pick", args={"object": "red block"}),
        SkillCall(skill="place", args={"target": "green bowl"}),
    )


def test_an_object_not_in_the_scene_is_an_error_that_lists_the_scene():
    with pytest.raises(ObjectNotFoundError) as error:
        ScriptedPlanner().plan("put the purple block in the green bowl", synthetic_scene(), synthetic_context())
    assert "'purple block'" in str(error.value) and "green bowl, red block" in str(error.value)


def test_an_instruction_outside_the_templates_is_an_error_that_lists_them():
    with pytest.raises(PlanningError, match="put the {block} in the {bowl}"):
        ScriptedPlanner().plan("juggle three oranges", synthetic_scene(), synthetic_context())


def test_a_template_whose_plan_depends_on_the_scene_is_refused_with_the_planners_that_can():
    context = synthetic_context()
    sorting = InstructionTemplate(text="sort the blocks by colour", plan=())
    context = context.model_copy(update={"task": context.task.model_copy(update={"templates": (sorting,)})})
    with pytest.raises(PlanningError, match="needs a planner that reads the scene .*llm_scoring"):
        ScriptedPlanner().plan("sort the blocks by colour", synthetic_scene(), context)


@pytest.mark.parametrize("planner", [ScriptedPlanner(), OraclePlanner()])
def test_planners_conform(planner):
    check_planner(planner)
