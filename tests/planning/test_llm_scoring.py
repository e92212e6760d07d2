import math

import pytest

from fmrobot.control.skills import PICK, PLACE, STANDARD_SKILLS
from fmrobot.errors import PlanningError
from fmrobot.planning.llm_scoring import LlmScoringConfig, LlmScoringPlanner, enumerate_candidates
from fmrobot.testing import check_planner, synthetic_context, synthetic_scene
from fmrobot.types import SkillCall, SkillStatus, StepFeedback
from fmrobot.llm.retry import UnusableReplyError
from tests.fakes import KeywordLM


def run_to_done(planner, instruction="put the red block in the green bowl"):
    scene, context = synthetic_scene(), synthetic_context()
    decision = planner.plan(instruction, scene, context)
    steps = []
    while not decision.plan.final:
        (step,) = decision.plan.steps
        steps.append(step)
        feedback = StepFeedback(step_index=0, call=step, status=SkillStatus.SUCCESS)
        decision = planner.replan(decision, feedback, scene, context)
    return steps, decision


def test_candidates_cover_every_skill_and_object():
    calls = enumerate_candidates(synthetic_scene(), synthetic_context().skills)
    assert SkillCall(skill="pick", args={"object": "red block"}) in calls
    assert SkillCall(skill="place", args={"target": "green bowl"}) in calls
    assert len(calls) == 4


def test_decides_step_by_step_until_done_and_keeps_history():
    steps, last = run_to_done(LlmScoringPlanner(llm=KeywordLM()))
    assert steps == [SkillCall(skill="pick", args={"object": "red block"}),
                     SkillCall(skill="place", args={"target": "green bowl"})]
    assert last.plan.steps == () and len(last.history) == 2


def test_one_batched_score_call_per_decision_and_cached_content_free_scores():
    lm = KeywordLM()
    planner = LlmScoringPlanner(llm=lm)
    run_to_done(planner)
    run_to_done(planner)
    instruction_calls = [c for c in lm.calls if "N/A" not in c[0].rsplit("Human:", 1)[-1]]
    content_free = [c for c in lm.calls if "N/A" in c[0].rsplit("Human:", 1)[-1]]
    assert len(instruction_calls) == 6  # three decisions per run, each one call with every candidate
    # Of 4 skill calls + done, the history rules out the 2 places (empty hand) or the 2 picks
    # (full hand) before scoring.
    assert all(len(c[1]) == 3 for c in lm.calls)
    assert len(content_free) == 3  # the second run reuses the first run's content-free scores


def test_gripper_preconditions_come_from_the_skill_specs_not_from_skill_names():
    # A skill fmrobot does not know by name: "scoop" needs an empty gripper and leaves it holding.
    scoop = PICK.model_copy(update={"name": "scoop", "phrase": "scoop up the {object}"})
    drop = PLACE.model_copy(update={"name": "drop", "phrase": "drop it in the {target}"})
    planner = LlmScoringPlanner(llm=KeywordLM())
    scene = synthetic_scene()
    candidates = enumerate_candidates(scene, (scoop, drop))
    empty = planner.affordances(candidates, scene, [], (scoop, drop))
    holding = planner.affordances(candidates, scene, [SkillCall(skill="scoop", args={"object": "red block"})],
                                  (scoop, drop))
    for call, free, held in zip(candidates, empty, holding):
        assert (free == -math.inf) == (call.skill == "drop")
        assert (held == -math.inf) == (call.skill == "scoop")


def test_history_rules_out_impossible_steps():
    planner = LlmScoringPlanner(llm=KeywordLM())
    scene = synthetic_scene()
    candidates = enumerate_candidates(scene, synthetic_context().skills)
    empty = planner.affordances(candidates, scene, [], STANDARD_SKILLS)
    holding = planner.affordances(candidates, scene, [SkillCall(skill="pick", args={"object": "red block"})],
                                   STANDARD_SKILLS)
    for call, free, held in zip(candidates, empty, holding):
        assert (free == -math.inf) == (call.skill == "place")
        assert (held == -math.inf) == (call.skill == "pick")


def test_colour_synonyms_are_grounded_to_scene_colours():
    planner = LlmScoringPlanner(llm=KeywordLM())
    assert planner.ground("put the crimson cube in the emerald dish", synthetic_scene()) == \
        "put the red cube in the green dish"
    assert LlmScoringPlanner(LlmScoringConfig(ground_colors=False), llm=KeywordLM()).ground(
        "the crimson cube", synthetic_scene()) == "the crimson cube"


def test_gives_up_without_done():
    planner = LlmScoringPlanner(LlmScoringConfig(max_steps=1), llm=KeywordLM())
    scene, context = synthetic_scene(), synthetic_context()
    first = planner.plan("put the red block in the green bowl", scene, context)
    feedback = StepFeedback(step_index=0, call=first.plan.steps[0], status=SkillStatus.SUCCESS)
    with pytest.raises(PlanningError, match="no 'done' after 1 steps"):
        planner.replan(first, feedback, scene, context)


def test_unknown_prompt_lists_the_shipped_ones():
    with pytest.raises(PlanningError, match="tabletop_steps"):
        LlmScoringPlanner(LlmScoringConfig(prompt="nope"), llm=KeywordLM())


def test_conforms():
    check_planner(LlmScoringPlanner(llm=KeywordLM()))


def test_listing_objects_puts_the_scene_in_every_prompt_including_the_content_free_one():
    lm = KeywordLM()
    planner = LlmScoringPlanner(LlmScoringConfig(prompt="tabletop_scene_steps", list_objects=True), llm=lm)
    run_to_done(planner)
    listing = "Objects: red block, green bowl.\nHuman: "
    assert all(listing in prompt for prompt, _ in lm.calls)
    assert any("Human: N/A" in prompt for prompt, _ in lm.calls)
    plain = KeywordLM()
    run_to_done(LlmScoringPlanner(llm=plain))
    assert not any("Objects:" in prompt.rsplit("\n\n", 1)[-1] for prompt, _ in plain.calls)


def test_skills_with_a_side_argument_are_enumerated_phrased_and_chosen():
    from fmrobot.control.skills import PICK, PLACE_BETWEEN, PLACE_NEXT_TO, PUSH

    scene = synthetic_scene()
    context = synthetic_context().model_copy(update={"skills": (PICK, PLACE_NEXT_TO, PLACE_BETWEEN, PUSH)})
    calls = enumerate_candidates(scene, context.skills)
    beside = [c for c in calls if c.skill == "place_next_to"]
    assert len(beside) == 2 * 4  # every object on every side
    assert {c.args["side"] for c in beside} == {"left", "right", "front", "behind"}
    # Two object arguments never name the same object; pushing ranges over (object, target) pairs.
    assert [c.args for c in calls if c.skill == "place_between"] == [
        {"first": "red block", "second": "green bowl"}, {"first": "green bowl", "second": "red block"}]
    assert len([c for c in calls if c.skill == "push"]) == 2
    planner = LlmScoringPlanner(llm=KeywordLM())
    texts = planner.step_texts(beside, context)
    assert " put it in front of the green bowl" in texts and " put it to the left of the red block" in texts

    # With the keyword stand-in, "push the red block into the green bowl" shares more words than the pick.
    context = context.model_copy(update={"skills": (PICK, PLACE_NEXT_TO)})
    decision = planner.plan("put the red block to the left of the green bowl", scene, context)
    assert decision.plan.steps == (SkillCall(skill="pick", args={"object": "red block"}),)
    feedback = StepFeedback(step_index=0, call=decision.plan.steps[0], status=SkillStatus.SUCCESS)
    decision = planner.replan(decision, feedback, scene, context)
    (step,) = decision.plan.steps  # the keyword stand-in cannot tell the two targets apart; the side it can
    assert step.skill == "place_next_to" and step.args["side"] == "left"
    # Holding something rules out pushing as it rules out picking; an empty hand rules out placing.
    holding = planner.affordances(calls, scene, [feedback.call], STANDARD_SKILLS)
    empty = planner.affordances(calls, scene, [], STANDARD_SKILLS)
    for call, held, free in zip(calls, holding, empty):
        assert (held == -math.inf) == (call.skill in ("pick", "push"))
        assert (free == -math.inf) == (call.skill in ("place_next_to", "place_between"))


def test_a_skill_whose_arguments_cannot_be_listed_is_a_clear_planning_error():
    from pydantic import BaseModel

    from fmrobot.types import SkillSpec

    class Turn(BaseModel):
        degrees: float

    spec = SkillSpec(name="turn", description="Turn the wrist.", parameters=Turn, phrase="turn by {degrees}")
    with pytest.raises(PlanningError, match="'turn' has a required argument"):
        enumerate_candidates(synthetic_scene(), (spec,))


def test_an_instruction_naming_nothing_in_the_scene_is_refused_in_one_line():
    planner = LlmScoringPlanner(llm=KeywordLM())
    with pytest.raises(PlanningError, match="the instruction 'sing me a song' names nothing in the scene; perceived: "):
        planner.plan("sing me a song", synthetic_scene(), synthetic_context())
    # A colour synonym of a perceived object is a reference (grounded before the check).
    assert planner.plan("put the crimson one in the bowl", synthetic_scene(), synthetic_context()).plan


class _GarbageFirst(KeywordLM):
    """KeywordLM, except that its first `garbage` score calls answer NaN."""

    def __init__(self, garbage: int):
        super().__init__()
        self.garbage = garbage

    def score(self, prompt, continuations):
        scores = super().score(prompt, continuations)
        if len(self.calls) <= self.garbage:
            return [math.nan] * len(scores)
        return scores


def test_an_unusable_reply_is_asked_again(fake_time):
    lm = _GarbageFirst(garbage=1)
    planner = LlmScoringPlanner(LlmScoringConfig(calibrate=False), llm=lm)
    decision = planner.plan("put the red block in the green bowl", synthetic_scene(), synthetic_context())
    assert decision.plan.steps[0] == SkillCall(skill="pick", args={"object": "red block"})
    assert len(lm.calls) == 2 and fake_time.sleeps == [0.5]


def test_asking_again_is_bounded_and_the_error_says_so(fake_time):
    lm = _GarbageFirst(garbage=100)
    planner = LlmScoringPlanner(LlmScoringConfig(calibrate=False), llm=lm)
    with pytest.raises(UnusableReplyError, match=r"invalid score\(s\).*gave up after 3 attempts"):
        planner.plan("put the red block in the green bowl", synthetic_scene(), synthetic_context())
    assert len(lm.calls) == 3 and fake_time.sleeps == [0.5, 1.0]
    assert issubclass(UnusableReplyError, PlanningError)  # callers that expect a PlanningError still get one


def test_the_confidence_of_a_question_never_passes_one():
    import numpy as np

    from fmrobot.planning.llm_scoring import probability_of, softmax
    from fmrobot.types import HelpRequest, Plan, PlanDecision, SkillCall

    probabilities = softmax(np.random.default_rng(18).normal(size=2) * 5)
    assert float(probabilities.sum()) > 1.0  # 0.97036... + 0.02963...: rounding a hair above 1
    plans = tuple(Plan(steps=(SkillCall(skill="pick", args={"object": o}),)) for o in ("red block", "blue block"))
    request = HelpRequest(question="Which?", options=("red", "blue"), choices=plans)
    decision = PlanDecision(instruction="move it", help=request, confidence=probability_of(probabilities, [0, 1]))
    assert decision.confidence == 1.0
