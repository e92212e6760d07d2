"""planner=llm_goal: the model chooses among the task's goals, the task's solver sequences them."""

import re

import pytest

from fmrobot.control.skills import STANDARD_SKILLS
from fmrobot.errors import PlanningError
from fmrobot.planning.grounding import mentioned_labels
from fmrobot.planning.llm_goal import LlmGoalConfig, LlmGoalPlanner
from fmrobot.types import DetectedObject, PlanningContext, SceneDescription, SkillStatus, StepFeedback
from sims.env import TabletopEnv
from sims.tasks.domain import world_scene


class OverlapLM:
    """Scores a goal by the words it shares with the prompt's last instruction (a stand-in model)."""

    def score(self, prompt, continuations):
        said = set(re.findall(r"[a-z]+", prompt.rsplit("Instruction:", 1)[-1].lower()))
        return [sum(w in said for w in re.findall(r"[a-z]+", c.lower())) - 0.05 * len(c.split())
                for c in continuations]

    def generate(self, messages, schema=None):
        raise NotImplementedError


@pytest.fixture(scope="module")
def episode():
    env = TabletopEnv(task="pick_place")
    spec, _ = env.reset_episode(0)
    scene = world_scene(env.world)
    skills = {s.name: s for s in STANDARD_SKILLS}
    context = PlanningContext(skills=tuple(skills[n] for n in spec.task.skills), task=spec.task, domain=spec.domain)
    yield spec, scene, context
    env.close()


def planner(**options):
    return LlmGoalPlanner(LlmGoalConfig(calibrate=False, **options), llm=OverlapLM())


def test_the_goal_the_instruction_names_is_planned_with_the_tasks_solver(episode):
    spec, scene, context = episode
    text = f"the {spec.goal['bowl']} should end up holding the {spec.goal['block']}"
    decision = planner().plan(text, scene, context)
    assert decision.plan is not None and decision.plan.steps == spec.oracle_plan.steps and decision.plan.final


def test_an_instruction_that_leaves_out_which_block_is_a_question_listing_the_blocks(episode):
    spec, scene, context = episode
    decision = planner().plan(f"put the block in the {spec.goal['bowl']}", scene, context)
    assert decision.help is not None and decision.plan is None
    blocks = {o.label for o in scene.objects if o.label.endswith("block")}
    assert {re.search(r"the (\w+ block)", o).group(1) for o in decision.help.options} == blocks
    assert all(plan.steps[1].args["target"] == spec.goal["bowl"] for plan in decision.help.choices)
    assert planner(ask_for_help=False).plan(f"put the block in the {spec.goal['bowl']}", scene, context).plan


def test_an_instruction_naming_nothing_in_the_scene_is_one_clear_line(episode):
    _, scene, context = episode
    with pytest.raises(PlanningError, match=r"the instruction 'make me a sandwich' names nothing in the scene; "
                                            r"perceived: .*bowl"):
        planner().plan("make me a sandwich", scene, context)


def test_a_task_without_a_goal_domain_is_refused_with_the_planners_that_can_do_it(episode):
    _, scene, context = episode
    with pytest.raises(PlanningError, match="lists none here; use planner=llm_scoring or llm_structured"):
        planner().plan("put the red block in the bowl", scene, context.model_copy(update={"domain": None}))


def test_after_a_failed_place_the_goal_resumes_at_its_pick(episode):
    spec, scene, context = episode
    decision = planner().plan(f"put the {spec.goal['block']} in the {spec.goal['bowl']}", scene, context)
    failed = StepFeedback(step_index=1, call=decision.plan.steps[1], status=SkillStatus.FAILURE, reason="dropped")
    again = planner().replan(decision, failed, scene, context)
    assert again.plan.steps == decision.plan.steps and again.history == (failed,)


def test_colour_words_and_nouns_name_labels():
    def obj(label):
        return DetectedObject(label=label, score=1.0, position=(0.5, 0.0, 0.7), extent=(0.04, 0.04, 0.04))

    scene = SceneDescription(objects=tuple(obj(x) for x in ("red block", "red bowl", "blue block", "tray",
                                                              "green block 1", "green block 2")))
    assert mentioned_labels("put the red cube in the red bowl", scene) == {"red bowl"}  # "cube" is no noun here
    assert mentioned_labels("the red block goes into the tray", scene) == {"red block", "tray"}
    assert mentioned_labels("move the blue one", scene) == {"blue block"}  # the only blue object
    assert mentioned_labels("move the green blocks", scene) == {"green block 1", "green block 2"}


def test_the_default_run_plans_with_a_language_model():
    from fmrobot import registry
    from tests.fakes import compose_config

    config = compose_config([])
    planner = registry.resolve("planner", config["planner"])
    assert planner.name == "llm_goal" and planner.cls.needs_llm and config["llm"]["name"] == "smollm2"


def _scene(*labels):
    return SceneDescription(objects=tuple(
        DetectedObject(label=label, score=1.0, position=(0.4 + 0.05 * i, 0.1 * i - 0.1, 0.7), extent=(0.04,) * 3)
        for i, label in enumerate(labels)))


def test_stated_stacking_facts_are_read_both_ways():
    from fmrobot.planning.grounding import stated_relations

    scene = _scene("pink block", "green block", "gray block")
    assert stated_relations("the pink block on top of the green block, which sits on the gray block", scene) == {
        ("on", "pink block", "green block"), ("on", "green block", "gray block")}
    assert stated_relations("put the gray block under the pink one", scene) == {("on", "pink block", "gray block")}


def test_a_word_of_exclusion_turns_a_named_object_into_one_to_leave_alone():
    from fmrobot.planning.grounding import mismatches, negated_labels

    mentioned = {"red block", "tray"}
    assert negated_labels("pack everything except the red block", mentioned, {"red block"}) == {"red block"}
    assert negated_labels("pack the red block", mentioned, {"red block"}) == set()
    every, but_red = {"red block", "blue block", "tray"}, {"blue block", "tray"}
    assert mismatches(but_red, mentioned, {"red block"}, {"red block"}) == 0
    assert mismatches(every, mentioned, set(), {"red block"}) == 1  # packs what it was told to leave
    assert mismatches(but_red, mentioned, {"red block"}, set()) == 1  # leaves out what it was told to pack
