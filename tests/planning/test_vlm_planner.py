"""planner=vlm: plans from camera images under the plan schema, never runs an invalid answer, replans
from a fresh image with the failure in the prompt, asks for help, and refuses text-only models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmrobot.errors import ImagesNotSupportedError, PlanningError
from fmrobot.interfaces import ImagePart
from fmrobot.llm.retry import UnusableReplyError
from fmrobot.planning.vlm import VlmConfig, VlmPlanner
from fmrobot.testing import synthetic_context, synthetic_observation, synthetic_scene
from fmrobot.types import SkillCall, SkillStatus, StepFeedback
from tests.fakes import KeywordLM, SeeingScriptedLM

INSTRUCTION = "put the red block in the green bowl"
GOOD = json.dumps({"steps": [{"skill": "pick", "args": {"object": "red block"}},
                             {"skill": "place", "args": {"target": "green bowl"}}]})


def seeing_planner(*answers, **options) -> tuple[VlmPlanner, SeeingScriptedLM]:
    lm = SeeingScriptedLM(answers)
    planner = VlmPlanner(VlmConfig(**options), llm=lm)
    planner.see(synthetic_observation())
    return planner, lm


def test_plans_from_the_image_under_the_schema_and_re_prompts_an_invalid_answer():
    planner, lm = seeing_planner('{"steps": [{"skill": "pick", "args": {"object": "purple block"}}]}', GOOD)
    decision = planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    assert decision.plan.steps == (SkillCall(skill="pick", args={"object": "red block"}),
                                   SkillCall(skill="place", args={"target": "green bowl"}))
    assert decision.rationale.endswith("attempt 2")
    first = lm.seen[0][-1]
    (image,) = first.images
    frame = synthetic_observation().frames[0]
    assert (image.height, image.width) == frame.rgb.shape[:2]
    assert np.array_equal(image.to_array(), frame.rgb)  # the camera's own pixels, losslessly
    assert "Objects you can name: red block, green bowl" in first.text and json.dumps(INSTRUCTION) in first.text
    schema = json.dumps(lm.schemas[0].model_json_schema())
    assert "red block" in schema and "question" in schema  # labels constrained; a question is allowed
    correction = lm.seen[1][-1].content
    assert correction.startswith("That is not a valid answer:") and "purple block" in correction


def test_no_valid_answer_in_the_attempts_is_a_failed_decision_not_a_plan():
    planner, _ = seeing_planner("I see a red block.", '{"steps": [{"skill": "fly", "args": {}}]}', max_attempts=2)
    with pytest.raises(UnusableReplyError, match="no valid plan after 2 attempts; last error: step 1 uses unknown "
                                                 "skill 'fly'"):
        planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())


def test_a_question_becomes_a_help_request_whose_options_are_validated_plans():
    ask = json.dumps({"question": "Which bowl?", "options": [
        {"meaning": "the green bowl", "steps": json.loads(GOOD)["steps"]},
        {"meaning": "next to the bowl", "steps": [{"skill": "pick", "args": {"object": "red block"}},
                                                  {"skill": "place", "args": {"target": "green bowl"}}]}]})
    bad = ask.replace('"green bowl"}}]}]', '"blue bowl"}}]}]')  # the second reading names an unseen object
    planner, lm = seeing_planner(bad, ask)
    decision = planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    assert decision.plan is None and decision.help.question == "Which bowl?"
    assert decision.help.options == ("the green bowl", "next to the bowl") and len(decision.help.choices) == 2
    assert "blue bowl" in lm.seen[1][-1].content
    planner, lm = seeing_planner(GOOD, ask_for_help=False)
    planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    assert "question" not in json.dumps(lm.schemas[0].model_json_schema())


def test_in_the_compact_form_a_plan_is_a_list_of_calls_and_a_question_holds_lists_of_calls():
    plan = '[["pick","red block"],["place","green bowl"]]'
    ask = ('{"question":"Which bowl?","options":[{"meaning":"in it","steps":%s},'
           '{"meaning":"hold","steps":[["pick","red block"]]}]}')
    planner, lm = seeing_planner(plan, ask % plan, form="compact")
    decision = planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    assert decision.plan.steps == json_plan_steps(GOOD)
    schema = lm.schemas[0].model_json_schema()
    assert {"array", "object"} <= {branch.get("type") for branch in _branches(schema)}  # either, at the top
    decision = planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    assert decision.help.options == ("in it", "hold") and decision.help.choices[0].steps == json_plan_steps(GOOD)
    assert decision.help.choices[1].steps == (SkillCall(skill="pick", args={"object": "red block"}),)


def json_plan_steps(text: str) -> tuple[SkillCall, ...]:
    return tuple(SkillCall(skill=s["skill"], args=s["args"]) for s in json.loads(text)["steps"])


def _branches(schema: dict) -> list[dict]:
    """The top-level choices of a JSON schema, with references resolved."""
    defs = schema.get("$defs", {})
    return [defs[b["$ref"].split("/")[-1]] if "$ref" in b else b for b in schema.get("anyOf", [schema])]


def test_replan_looks_at_the_fresh_image_with_every_failure_in_the_prompt():
    planner, lm = seeing_planner(GOOD, GOOD, scene_text=True)
    first = planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    moved = synthetic_observation()
    frame = moved.frames[0]
    rgb = frame.rgb.copy()
    rgb[:10] = 0  # something changed in view
    planner.see(moved.model_copy(update={"frames": (frame.model_copy(update={"rgb": rgb}),)}))
    feedback = StepFeedback(step_index=0, call=first.plan.steps[0], status=SkillStatus.FAILURE, reason="slipped")
    again = planner.replan(first, feedback, synthetic_scene(), synthetic_context())
    asked = lm.seen[1][-1]
    assert np.array_equal(asked.images[0].to_array(), rgb)
    assert "step 1 (pick(object='red block')) ended in failure: slipped" in asked.text
    assert "red block: (" in asked.text  # scene_text: where perception put it
    assert again.history == (feedback,)


def test_text_only_models_are_refused_in_one_line_and_an_unseen_scene_is_an_error():
    with pytest.raises(ImagesNotSupportedError) as refused:
        VlmPlanner(llm=KeywordLM())
    message = str(refused.value)
    assert "\n" not in message and "KeywordLM is text only" in message and "llm=transformers" in message
    with pytest.raises(PlanningError, match="has seen no camera image"):
        VlmPlanner(llm=SeeingScriptedLM([GOOD])).plan(INSTRUCTION, synthetic_scene(), synthetic_context())
    assert isinstance(ImagePart.from_array(synthetic_observation().frames[0].rgb, max_side=40), ImagePart)


@pytest.mark.slow
def test_the_stack_refuses_planner_vlm_with_a_text_only_backend(tiny_lm_dir):
    from fmrobot import registry
    from fmrobot.stack import build_planner

    config = {"planner": {"name": "vlm"}, "llm": {"name": "transformers", "model": tiny_lm_dir}}
    with pytest.raises(ImagesNotSupportedError, match="planner vlm needs a language model that reads images, and "
                                                      "TransformersLM is text only"):
        build_planner(registry.resolve("planner", config["planner"]), config)


@pytest.mark.slow
def test_planner_vlm_reads_rendered_images_even_with_oracle_perception(pick_place_env):
    from fmrobot.control.scripted import ScriptedPolicy
    from fmrobot.perception.oracle import OraclePerceptor
    from fmrobot.runner import Runner
    from fmrobot.safety.basic import BasicShield
    from tests.fakes import ReadingVLM

    lm = ReadingVLM()
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=VlmPlanner(llm=lm),
                    policy=ScriptedPolicy(), shield=BasicShield())
    result = runner.run_episode(0).result
    assert result.success, result.failure_reason
    assert lm.calls and all(images >= 1 for images, _, _ in lm.calls)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["idefics3", "qwen2_vl"])
def test_a_random_tiny_vlm_plans_a_pick_place_episode_under_constrained_decoding(family, pick_place_env):
    """Random weights: success is not expected, but every decision is a valid plan or question (first attempt,
    under the grammar), nothing invalid runs, and the episode ends with a typed reason."""
    from fmrobot.control.scripted import ScriptedPolicy
    from fmrobot.llm.transformers_lm import TransformersLMConfig
    from fmrobot.llm.transformers_vlm import TransformersVLM
    from fmrobot.perception.oracle import OraclePerceptor
    from fmrobot.runner import Runner
    from fmrobot.safety.basic import BasicShield
    from fmrobot.trace import (
        DecisionEvent,
        PerceptionEvent,
        PlanningErrorEvent,
        SkillEvent,
    )
    from fmrobot.llm.tiny_vlm import cached_tiny_vlm

    # Room for the longest answer the grammar admits (a question of 200 characters, four readings of 120
    # and their plans, a token per byte): random weights often write strings to their limit.
    llm = TransformersVLM(TransformersLMConfig(model=str(cached_tiny_vlm(family)), max_new_tokens=4000))
    planner = VlmPlanner(VlmConfig(max_attempts=1, max_steps=3), llm=llm)
    outcome = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=planner, policy=ScriptedPolicy(),
                     shield=BasicShield()).run_episode(0)
    decisions = [e.decision for e in outcome.events if isinstance(e, DecisionEvent)]
    assert decisions and not [e for e in outcome.events if isinstance(e, PlanningErrorEvent)]
    assert all(d.rationale.endswith("attempt 1") for d in decisions)
    labels = {label for e in outcome.events if isinstance(e, PerceptionEvent) for label in e.scene.labels}
    for event in outcome.events:
        if isinstance(event, SkillEvent):
            assert set(map(str, event.call.args.values())) <= labels  # only perceived objects, valid arguments
    assert llm.stats["images"] >= len(decisions) and llm.stats["image_tokens"] > 0
    result = outcome.result
    assert result.success or result.failure is not None  # a typed reason whenever it fails


@pytest.mark.slow
def test_planner_vlm_over_transformers_serve_never_runs_an_invalid_answer(tmp_path):
    """A real OpenAI-compatible server (transformers serve, tiny random Qwen2-VL): the planner's images reach it;
    this server does not apply `response_format`, so random weights answer free text, which is re-prompted and
    ends as a failed decision, never a plan."""
    from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
    from tests.fakes import transformers_serve
    from fmrobot.llm.tiny_vlm import cached_tiny_vlm

    folder = cached_tiny_vlm("qwen2_vl")
    with transformers_serve(folder, tmp_path / "serve.log") as base_url:
        lm = OpenAICompatibleLM(OpenAICompatibleConfig(base_url=base_url, model=str(folder), api_key_env=None,
                                                       max_tokens=64, timeout=60.0))
        planner = VlmPlanner(VlmConfig(max_attempts=2, max_steps=2), llm=lm)
        planner.see(synthetic_observation())
        try:
            decision = planner.plan(INSTRUCTION, synthetic_scene(), synthetic_context())
        except UnusableReplyError as error:
            assert "no valid plan after 2 attempts" in str(error)
        else:  # a valid answer by chance is still a validated plan
            assert decision.plan is not None or decision.help is not None
    assert lm.stats["requests"] >= 1 and lm.stats["prompt_tokens"] > 0
