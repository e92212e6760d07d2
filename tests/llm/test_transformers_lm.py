import pytest

from fmrobot.errors import ConfigError
from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig

PROMPT = "Human: put the red block in the green bowl\nRobot: 1."
STEPS = [" pick up the red block", " pick up the blue block", " pick up the red", " put it in the bowl",
         " put it in the yellow bowl", " done", " pick up the red block"]


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    return TransformersLM(TransformersLMConfig(model=tiny_lm_dir))


def test_tree_scoring_equals_one_full_forward_per_candidate(lm):
    fast = lm.score(PROMPT, STEPS)
    slow = lm.score_naive(PROMPT, STEPS)
    assert fast == pytest.approx(slow, abs=1e-4)
    assert fast[0] == pytest.approx(fast[-1])  # the same text scores the same
    assert len(set(round(v, 4) for v in fast)) == len(STEPS) - 1  # and different texts differently
    # Shared leading tokens ran once: the tree is smaller than all continuations together.
    assert lm.stats["tree_tokens"] < lm.stats["continuation_tokens"]


def test_a_longer_prompt_resumes_from_the_cached_prefix_and_leaves_it_intact(lm):
    lm.score(PROMPT, STEPS[:2])
    before = dict(lm.stats)
    longer = PROMPT + " pick up the red block. 2."
    assert lm.score(longer, STEPS) == pytest.approx(lm.score_naive(longer, STEPS), abs=1e-4)
    assert lm.stats["cached_tokens"] - before["cached_tokens"] >= lm.count_tokens(PROMPT) - 1
    # Scoring again over the cached prompt gives the same numbers: the tree pass did not leave
    # its tokens in the cache.
    assert lm.score(PROMPT, STEPS) == pytest.approx(lm.score_naive(PROMPT, STEPS), abs=1e-4)


def test_bad_arguments_say_what_is_wrong(lm):
    assert lm.score(PROMPT, []) == []
    with pytest.raises(ValueError, match="non-empty prompt"):
        lm.score("", STEPS)
    with pytest.raises(ValueError, match="at least one token"):
        lm.score(PROMPT, ["", " done"])


def test_a_folder_without_a_model_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match="could not load language model"):
        TransformersLM(TransformersLMConfig(model=str(tmp_path)))


def test_generate_answers_with_new_text_only(lm):
    from fmrobot.interfaces import Message

    lm.tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    reply = lm.generate([Message(role="user", content="put the red block in the bowl")])
    assert isinstance(reply, str) and "user:" not in reply
    assert 0 < lm.stats["generated_tokens"] <= lm.config.max_new_tokens


def test_several_prompts_share_one_pass_and_keep_their_own_numbers(lm):
    content_free = "Human: N/A\nRobot: 1."
    lm.score_many([(PROMPT, STEPS[:1]), (content_free, STEPS[:1])])  # caches their shared "Human:" part
    calls = []
    hook = lm.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        got = lm.score_many([(PROMPT, STEPS), (content_free, STEPS[:3]), (PROMPT, [])])
    finally:
        hook.remove()
    assert len(calls) == 1
    assert got[0] == pytest.approx(lm.score_naive(PROMPT, STEPS), abs=1e-4)
    assert got[1] == pytest.approx(lm.score_naive(content_free, STEPS[:3]), abs=1e-4)
    assert got[2] == []
    unrelated = lm.score_many([(PROMPT, STEPS[:2]), ("Robot: 2.", STEPS[:2])])  # no common prefix
    assert unrelated[1] == pytest.approx(lm.score_naive("Robot: 2.", STEPS[:2]), abs=1e-4)
