"""llm=llamacpp, and OpenAICompatibleLM against llama.cpp's own OpenAI-compatible server.

Both need llama-cpp-python, an optional source build (about 9 minutes) that CI does not
install: those tests carry the `llamacpp` marker and skip when `llama_cpp` cannot be
imported. The models are the real ones fmrobot's weight packages ship: SmolLM2-135M-
Instruct (chat template, no BOS) and Gemma 3 270M (base model, BOS, no chat template).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from fmrobot import registry
from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message
from fmrobot.llm import llamacpp
from fmrobot.llm.llamacpp import LlamaCppConfig, LlamaCppLM
from tests.fakes import free_port, server_process

SKIP_REASON = "needs the optional llama-cpp-python build"
PROMPT = "Human: put the red block in the green bowl\nRobot: 1."
STEPS = [" pick up the red block", " pick up the green bowl", " put it in the green bowl", " done", " pick"]
STARTUP_DEADLINE = 120.0  # seconds for llama_cpp.server to answer; about 5 s on a quiet machine
# A chat with an example to follow: without one, a small model may list steps until max_new_tokens
# cuts the JSON off (the grammar bounds the shape, not the length).
PLAN_MESSAGES = [Message(role="system", content="You plan robot actions as JSON."),
                 Message(role="user", content='Instruction: "pick up the green bowl"'),
                 Message(role="assistant", content='{"steps": [{"skill": "pick", "args": {"object": "green bowl"}}]}'),
                 Message(role="user", content='Instruction: "put the red block in the green bowl"')]


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip("llama_cpp", reason=SKIP_REASON)


@pytest.fixture(scope="module")
def smol(llama_cpp):
    started = time.perf_counter()
    lm = LlamaCppLM(LlamaCppConfig(model="smollm2", max_new_tokens=128))
    lm.load_seconds = time.perf_counter() - started
    yield lm
    lm.close()


@pytest.fixture(scope="module")
def gemma(llama_cpp):
    llamacpp.model_path("gemma3_270m")  # assembled into the cache before the clock starts
    started = time.perf_counter()
    lm = LlamaCppLM(LlamaCppConfig(model="gemma3_270m", max_new_tokens=128))
    lm.load_seconds = time.perf_counter() - started
    yield lm
    lm.close()


def plan_setup():
    from fmrobot.planning.llm_structured import plan_schema
    from fmrobot.testing import synthetic_context, synthetic_scene

    context, scene = synthetic_context(), synthetic_scene()
    return context, scene, plan_schema(context.skills, scene.labels)


# --------------------------------------------------------------------------- LlamaCppLM


@pytest.mark.llamacpp
def test_packaged_models_load_with_their_chat_templates(smol, gemma):
    # Load time (about 0.2 s SmolLM2, 0.6 s Gemma here) is a benchmark figure (FIELD-NOTES), not asserted.
    assert smol._chat and not gemma._chat  # SmolLM2's GGUF has a chat template, the Gemma base model none


@pytest.mark.slow  # fast tier: the load and schema tests; the real-model checks run in the full suite
@pytest.mark.llamacpp
def test_scores_agree_with_the_transformers_backend_and_scoring_can_be_handed_to_it(smol):
    both = LlamaCppLM(LlamaCppConfig(model="smollm2", scoring="transformers"))
    try:
        native, reference = smol.score(PROMPT, STEPS), both.score(PROMPT, STEPS)
        assert both.score_many([(PROMPT, STEPS)]) == [reference]
        assert reference == pytest.approx(both._scorer.score(PROMPT, STEPS))  # it is the transformers backend's
    finally:
        both.close()
    # The same weights: llama.cpp (4-bit blocks, 8-bit activations) and transformers (dequantized,
    # float32) differ by a few hundredths of a nat per token.
    assert native == pytest.approx(reference, abs=0.4)
    assert max(range(len(STEPS)), key=native.__getitem__) == max(range(len(STEPS)), key=reference.__getitem__)


@pytest.mark.slow  # fast tier: the load and schema tests; the real-model checks run in the full suite
@pytest.mark.llamacpp
def test_the_cached_prompt_survives_scoring_and_generating(smol):
    first = smol.score(PROMPT, STEPS)
    before = dict(smol.stats)
    assert smol.score(PROMPT, STEPS) == first  # nothing of the continuations stayed in the cache
    assert smol.stats["prompt_tokens"] == before["prompt_tokens"]  # and the prompt did not run again
    smol.generate([Message(role="user", content="hi")])
    assert smol.score(PROMPT, STEPS) == pytest.approx(first, abs=1e-6)
    longer = PROMPT + " pick up the red block. 2."
    resumed = smol.score(longer, STEPS)
    assert smol.stats["cached_tokens"] - before["cached_tokens"] >= 2 * smol.count_tokens(PROMPT)
    smol._llm.reset()
    assert smol.score(longer, STEPS) == pytest.approx(resumed, abs=1e-6)  # the same as from scratch


@pytest.mark.slow  # fast tier: the load and schema tests; the real-model checks run in the full suite
@pytest.mark.llamacpp
def test_gemma_scores_with_its_bos_and_ranks_sensibly(gemma):
    assert gemma._tokens(PROMPT, bos=True)[0] == gemma._llm.token_bos()
    paris, banana = gemma.score("The capital of France is", [" Paris", " banana"])
    assert paris > banana + 5
    red, bowl = gemma.score(PROMPT, STEPS[:2])
    assert red > bowl


@pytest.mark.llamacpp
@pytest.mark.parametrize("model", ["smol", pytest.param("gemma", marks=pytest.mark.slow)])
def test_generate_with_a_schema_is_valid_json_by_construction(model, request):
    lm = request.getfixturevalue(model)
    _, _, schema = plan_setup()
    schema.model_validate_json(lm.generate(PLAN_MESSAGES, schema=schema))


@pytest.mark.llamacpp
def test_constrained_decoding_runs_the_model_once_per_choice_and_a_follow_up_reads_only_what_it_adds(smol):
    _, _, schema = plan_setup()
    before = dict(smol.stats)
    answer = smol.generate(PLAN_MESSAGES, schema=schema)
    schema.model_validate_json(answer)
    used = {key: smol.stats[key] - before[key] for key in smol.stats}
    # Forced tokens ride along with the chosen one before them: one pass for the prompt, at most one per choice.
    assert used["forced_tokens"] * 2 >= used["generated_tokens"]
    assert used["generate_passes"] <= 1 + used["generated_tokens"] - used["forced_tokens"]
    note = "That plan failed: the red block slipped. Plan again."
    follow_up = PLAN_MESSAGES + [Message(role="assistant", content=answer), Message(role="user", content=note)]
    read = smol.stats["prompt_tokens"]
    schema.model_validate_json(smol.generate(follow_up, schema=schema))
    # The first prompt stayed in llama.cpp's cache: the answer, the note and the turns' markers are new.
    assert smol.stats["prompt_tokens"] - read <= smol.count_tokens(answer) + smol.count_tokens(note) + 16


@pytest.mark.llamacpp
def test_unconstrained_generation_is_free_text_and_the_planner_asks_for_the_full_form(llama_cpp):
    from fmrobot.planning.llm_structured import LlmStructuredPlanner

    _, _, schema = plan_setup()
    free = LlamaCppLM(LlamaCppConfig(model="smollm2", constrained=False, max_new_tokens=24))
    try:
        assert not free.grammar_constrained and LlmStructuredPlanner(llm=free).form() == "full"
        reply = free.generate(PLAN_MESSAGES, schema=schema)  # whatever the model writes, cut at 24 tokens
        assert free.stats["generate_passes"] == 0 and 0 < free.stats["generated_tokens"] <= 24 and reply
    finally:
        free.close()


@pytest.mark.llamacpp
def test_a_prompt_longer_than_the_context_is_one_clear_error(llama_cpp):
    _, _, schema = plan_setup()
    small = LlamaCppLM(LlamaCppConfig(model="smollm2", n_ctx=64))
    try:
        with pytest.raises(ValueError, match=r"the context holds 64 \(llm.n_ctx\)"):
            small.generate(PLAN_MESSAGES, schema=schema)
    finally:
        small.close()


@pytest.mark.slow  # fast tier: the load and schema tests; the real-model checks run in the full suite
@pytest.mark.llamacpp
def test_the_structured_planner_gets_a_valid_plan_first_time(gemma):
    from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner

    context, scene, _ = plan_setup()
    planner = LlmStructuredPlanner(LlmStructuredConfig(), llm=gemma)
    assert planner.form() == "compact"  # llama.cpp decodes under the grammar itself: the terse form
    decision = planner.plan("put the red block in the green bowl", scene, context)
    assert decision.plan is not None and "attempt 1" in decision.rationale


@pytest.mark.slow  # fast tier: the load and schema tests; the real-model checks run in the full suite
@pytest.mark.llamacpp
def test_a_base_model_continues_a_plain_transcript_and_stops_at_the_next_turn(gemma):
    reply = gemma.generate([Message(role="system", content="You answer in one short sentence."),
                            Message(role="user", content="What colour is the sky on a clear day?")])
    assert reply and "User:" not in reply and "\n\n" not in reply


@pytest.mark.llamacpp
def test_bad_models_and_arguments_say_what_is_wrong(smol, tmp_path, llama_cpp):
    with pytest.raises(ConfigError, match="must be a .gguf file or one of smollm2, gemma3_270m"):
        LlamaCppLM(LlamaCppConfig(model=str(tmp_path / "missing.gguf")))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf")
    with pytest.raises(ConfigError, match="llama.cpp could not load") as error:
        LlamaCppLM(LlamaCppConfig(model=str(broken)))
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="has no chat template"):
        LlamaCppLM(LlamaCppConfig(model="gemma3_270m", prompt_format="chat"))
    assert smol.score(PROMPT, []) == []
    with pytest.raises(ValueError, match="non-empty prompt"):
        smol.score("", STEPS)
    with pytest.raises(ValueError, match="at least one token"):
        smol.score(PROMPT, ["", " done"])
    with pytest.raises(ValueError, match=r"the context holds 2048 \(llm.n_ctx\)"):
        smol.score("word " * 2100, [" done"])


def test_the_registry_resolves_its_config():
    resolved = registry.resolve("llm", {"name": "llamacpp", "model": "gemma3_270m", "scoring": "transformers"})
    assert resolved.cls is LlamaCppLM and resolved.config.model == "gemma3_270m"


def test_without_llama_cpp_one_config_error_names_the_extra_and_the_build(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as if not installed
    with pytest.raises(ConfigError) as error:
        LlamaCppLM(LlamaCppConfig())
    message = str(error.value)
    assert "pip install 'fmrobot[llamacpp]'" in message and "9 minutes" in message and "\n" not in message


# --------------------------------------------------------------------------- llama.cpp's server


@pytest.fixture(scope="module")
def server(llama_cpp, tmp_path_factory):
    """(base_url, model) of `python -m llama_cpp.server` on loopback serving the Gemma GGUF."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    model = str(llamacpp.model_path("gemma3_270m"))
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
               "--n_threads", "1", "--n_ctx", "2048"]
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    with server_process(command, f"http://127.0.0.1:{port}/v1/models", log_path, "llama_cpp.server",
                        dict(os.environ, OMP_NUM_THREADS="1"), STARTUP_DEADLINE):
        yield f"http://127.0.0.1:{port}/v1", model


def client(server, **options):
    from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM

    base_url, model = server
    return OpenAICompatibleLM(OpenAICompatibleConfig(base_url=base_url, model=model, api_key_env=None,
                                                     timeout=120.0, backoff=0.05, **options))


@pytest.mark.slow
@pytest.mark.llamacpp
def test_echoed_logprobs_of_the_server_score_as_llama_cpp_does(server, gemma):
    # The server scores a (prompt + continuation) by echo + logprobs on /v1/completions. It
    # sorts the whole 262k-token vocabulary per token in Python: a few seconds per short text.
    lm = client(server, scoring="logprobs")
    prompt, continuation = "The capital of France is", [" Paris"]
    assert lm.score(prompt, continuation) == pytest.approx(gemma.score(prompt, continuation), abs=0.01)
    assert lm.scoring == "logprobs"


@pytest.mark.slow
@pytest.mark.llamacpp
def test_several_continuations_score_through_the_server_one_request_each(server, gemma):
    # The server takes one prompt per /v1/completions request (a list is HTTP 500): the client
    # notices once and then sends each continuation on its own.
    lm = client(server, scoring="logprobs", retries=0)
    prompt, continuations = "The capital of France is", [" Paris", " Rome"]
    scores = lm.score(prompt, continuations)
    assert scores == pytest.approx(gemma.score(prompt, continuations), abs=0.01)
    assert scores[0] > scores[1] and lm._one_prompt_per_request


@pytest.mark.slow
@pytest.mark.llamacpp
def test_json_object_with_a_schema_gives_a_valid_plan_through_the_server(server):
    from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner

    context, scene, _ = plan_setup()
    lm = client(server, scoring="choice", response_format="json_object")
    decision = LlmStructuredPlanner(LlmStructuredConfig(), llm=lm).plan(
        "put the red block in the green bowl", scene, context)
    assert decision.plan is not None and "attempt 1" in decision.rationale
