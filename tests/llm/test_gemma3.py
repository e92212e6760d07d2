"""llm=gemma3_270m: the real Gemma 3 270M from its PyPI weight package, through transformers.

The package is in the `test` extra (a 240 MB download, no build), so these tests fail,
not skip, when it is missing. The first run assembles the GGUF and converts it into the
fmrobot cache (about 30 s to 2 minutes); later runs load the converted folder.
"""

from __future__ import annotations

import json
import sys

import pytest

from fmrobot import registry
from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message
from fmrobot.llm import gemma3
from fmrobot.llm.gemma3 import Gemma3, Gemma3Config, cut_reply, plain_prompt

PROMPT = "Human: put the red block in the green bowl\nRobot: 1."
STEPS = [" pick up the red block", " pick up the green bowl", " put it in the green bowl", " done",
         " pick up the red"]


@pytest.fixture(scope="module")
def lm():
    try:
        return Gemma3(Gemma3Config(max_new_tokens=48))
    except ConfigError as error:
        pytest.fail(f"{error} (the package is in the test extra: pip install -e '.[test]')")


@pytest.mark.slow
def test_the_gguf_is_assembled_once_into_the_cache(lm):
    path = gemma3.gguf_path()
    assert path.is_file() and path.suffix == ".gguf"
    assert path.stat().st_size == sum(chunk.stat().st_size for chunk in gemma3._package().chunk_paths())
    assert gemma3.gguf_path() == path  # found again by its size, not assembled or hashed again


@pytest.mark.slow
def test_a_converted_folder_is_reused_without_reading_the_gguf(lm, monkeypatch):
    def no_gguf(*args, **kwargs):
        raise AssertionError("the GGUF was dequantized again")

    monkeypatch.setattr("fmrobot.llm.transformers_lm.load_causal_lm", no_gguf)
    folder = gemma3.converted_folder()
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["Gemma3ForCausalLM"]


@pytest.mark.slow
def test_scoring_ranks_like_a_language_model_and_tree_equals_naive(lm):
    fast = lm.score(PROMPT, STEPS)
    slow = lm.score_naive(PROMPT, STEPS)
    assert fast == pytest.approx(slow, abs=1e-3)
    assert fast[0] > fast[1]  # the block, not the bowl, is what one picks up
    assert lm.score("The capital of France is", [" Paris", " banana"]) == pytest.approx(
        lm.score_naive("The capital of France is", [" Paris", " banana"]), abs=1e-3)
    paris, banana = lm.score("The capital of France is", [" Paris", " banana"])
    assert paris > banana + 5


@pytest.mark.slow  # Gemma's real-model tests run in the full suite; the default model's (SmolLM2) stay fast
def test_score_many_is_the_planners_hot_path_and_puts_bos_first(lm):
    content_free = "Human: N/A\nRobot: 1."
    got = lm.score_many([(PROMPT, STEPS), (content_free, STEPS[:2]), (PROMPT, [])])
    assert got[0] == pytest.approx(lm.score(PROMPT, STEPS), abs=1e-3)
    assert got[1] == pytest.approx(lm.score_naive(content_free, STEPS[:2]), abs=1e-3)
    assert got[2] == []
    bos = lm.tokenizer.bos_token
    assert lm.tokenizer(bos + PROMPT, add_special_tokens=False).input_ids[0] == lm.tokenizer.bos_token_id
    assert lm.score(bos + PROMPT, STEPS[:2]) == pytest.approx(lm.score(PROMPT, STEPS[:2]), abs=1e-4)  # not twice
    with pytest.raises(ValueError, match="non-empty prompt"):
        lm.score("", STEPS)


@pytest.mark.slow
def test_generate_continues_a_plain_transcript_and_stops_at_the_next_turn(lm):
    reply = lm.generate([Message(role="system", content="You answer in one short sentence."),
                         Message(role="user", content="What colour is the sky on a clear day?")])
    assert reply and "User:" not in reply and "Assistant:" not in reply and "\n\n" not in reply
    assert lm.stats["generated_tokens"] <= lm.config.max_new_tokens


@pytest.mark.slow
def test_generate_with_a_schema_gives_valid_json(lm):
    from fmrobot.planning.llm_structured import plan_schema
    from fmrobot.testing import synthetic_context, synthetic_scene

    schema = plan_schema(synthetic_context().skills, synthetic_scene().labels)
    messages = [Message(role="system", content='Reply with a JSON plan such as {"steps": [{"skill": "pick", '
                                                '"args": {"object": "red block"}}]}.'),
                Message(role="user", content='Instruction: "put the red block in the green bowl"')]
    schema.model_validate_json(lm.generate(messages, schema=schema))


def test_plain_prompt_and_cut_reply():
    text = plain_prompt([Message(role="system", content="Be brief."), Message(role="user", content="hi"),
                         Message(role="assistant", content="hello"), Message(role="user", content="bye")])
    assert text == "Be brief.\n\nUser: hi\nAssistant: hello\nUser: bye\nAssistant:"
    assert cut_reply(" Blue.\n\nBe brief.\nUser: hi") == "Blue."
    assert cut_reply(' {"a": 1}\nUser: more') == '{"a": 1}'


def test_the_registry_builds_it_from_its_config():
    resolved = registry.resolve("llm", {"name": "gemma3_270m", "threads": 1})
    assert resolved.cls is Gemma3 and resolved.config.threads == 1


def test_without_the_package_one_config_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, gemma3.PACKAGE, None)  # import fails as if not installed
    with pytest.raises(ConfigError) as error:
        gemma3.converted_folder()
    message = str(error.value)
    assert "pip install 'fmrobot[gemma]'" in message and "\n" not in message
