"""The fault wrappers on their own: what they break, and that their randomness is the episode's."""

from __future__ import annotations

import math

import pytest

from fmrobot.errors import LanguageModelError, PlanningError
from fmrobot.faults import EpisodeFaults, NoFault, describe_events
from fmrobot.faults.language_model import (DownConfig, GarbageConfig, LlmDown, LlmGarbage, LlmSlow, SlowConfig)
from fmrobot.faults.perception import DropoutConfig, NoiseConfig, PerceptionDropout, PerceptionNoise
from fmrobot.llm import retry
from fmrobot.llm.retry import RetryPolicy, TransientLanguageModelError
from fmrobot.planning.llm_scoring import checked_scores
from fmrobot.types import DetectedObject, SceneDescription
from tests.fakes import KeywordLM

SCENE = SceneDescription(objects=tuple(
    DetectedObject(label=f"{c} block", score=1.0, position=(0.4 + 0.05 * i, 0.0, 0.645), extent=(0.04,) * 3)
    for i, c in enumerate(("red", "green", "blue", "cyan", "pink", "gray"))))


class _Obs:  # perceive() reads only the step
    step = 7


class _Fixed:
    needs_images = False

    def perceive(self, obs, queries):
        return SCENE


def test_dropout_drops_objects_with_its_probability_and_records_each():
    never = PerceptionDropout(DropoutConfig(probability=0.0)).wrap(_Fixed())
    assert never.perceive(_Obs(), []) == SCENE and never.needs_images is False
    fault = PerceptionDropout(DropoutConfig(probability=1.0))
    assert fault.wrap(_Fixed()).perceive(_Obs(), []).objects == ()
    events = fault.drain_events()
    assert len(events) == 6
    assert events[0] == {"fault": "perception_dropout", "effect": "perception dropped the red block", "step": 7}
    assert fault.drain_events() == []


def test_noise_moves_positions_sideways_only_by_default():
    fault = PerceptionNoise(NoiseConfig(position_std=0.03))
    scene = fault.wrap(_Fixed()).perceive(_Obs(), [])
    moved = [math.dist(a.position, b.position) for a, b in zip(scene.objects, SCENE.objects)]
    assert all(d > 0 for d in moved) and max(moved) < 0.2
    assert all(a.position[2] == b.position[2] for a, b in zip(scene.objects, SCENE.objects))
    assert [o.label for o in scene.objects] == SCENE.labels


def test_perception_faults_repeat_per_episode_seed():
    fault = PerceptionDropout(DropoutConfig(probability=0.5))
    perceptor = fault.wrap(_Fixed())

    def labels(seed):
        fault.begin_episode(seed)
        return [perceptor.perceive(_Obs(), []).labels for _ in range(3)]

    first = labels(1)
    assert labels(2) != first and labels(1) == first
    fault_with_other_seed = PerceptionDropout(DropoutConfig(probability=0.5, seed=9))
    fault_with_other_seed.begin_episode(1)
    assert [fault_with_other_seed.wrap(_Fixed()).perceive(_Obs(), []).labels for _ in range(3)] != first


def test_llm_down_fails_every_call_after_the_allowed_ones(fake_time):
    lm = LlmDown(DownConfig(after_calls=1)).wrap(KeywordLM())
    assert len(lm.score("Human: x\nRobot:", [" a", " b"])) == 2
    with pytest.raises(LanguageModelError, match="unreachable"):
        lm.score("Human: x\nRobot:", [" a"])
    with pytest.raises(LanguageModelError, match="unreachable"):
        lm.generate([])
    lm.fault.begin_episode(1)
    assert len(lm.score_many([("Human: x\nRobot:", [" a"])])[0]) == 1


def test_an_unreachable_server_is_retried_by_the_backends_policy_then_fails(fake_time):
    inner = KeywordLM()
    inner.retry_policy = RetryPolicy(retries=4, backoff=1.0, max_backoff=3.0)
    fault = LlmDown(DownConfig(after_calls=0))
    with pytest.raises(LanguageModelError) as caught:
        fault.wrap(inner).score("p", [" a"])
    assert not isinstance(caught.value, TransientLanguageModelError)  # final: the planner does not ask again
    assert "connection refused (gave up after 5 attempts" in str(caught.value)
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0] and not inner.calls
    assert len(fault.drain_events()) == 5


def test_llm_slow_times_out_without_waiting_for_real(fake_time):
    fault = LlmSlow(SlowConfig(delay_seconds=(100.0, 200.0), timeout_seconds=30.0, stall_seconds=0.0))
    with pytest.raises(LanguageModelError, match=r"timed out: no reply within 30 s \(this one would take 1\d\d s\)"
                                                 r" \(gave up after 3 attempts in 92 s\)"):
        fault.wrap(KeywordLM()).score("p", [" a"])
    # The timeouts were simulated (3 x 30 s); only the backoff waits were asked for, of the fake clock.
    assert fake_time.sleeps == [0.5, 1.0]
    quick = LlmSlow(SlowConfig(delay_seconds=(1.0, 2.0), timeout_seconds=30.0, stall_seconds=0.0))
    assert quick.wrap(KeywordLM()).score("Human: a\nRobot:", [" a"]) == KeywordLM().score("Human: a\nRobot:", [" a"])


def test_llm_slow_waits_no_longer_than_the_decisions_deadline(fake_time):
    inner = KeywordLM()
    inner.retry_policy = RetryPolicy(retries=10, backoff=0.5, deadline_seconds=100.0)
    fault = LlmSlow(SlowConfig(delay_seconds=(100.0, 200.0), timeout_seconds=30.0, stall_seconds=0.0))
    with retry.decision():
        with pytest.raises(LanguageModelError) as caught:
            fault.wrap(inner).score("p", [" a"])
        # 30 + 0.5 + 30 + 1 + 30 + 2 s, then the fourth attempt gets only the 6.5 s left.
        assert retry.remaining() == pytest.approx(0.0)
    assert "no reply within 6.5 s" in str(caught.value) and "gave up after 4 attempts in 100 s" in str(caught.value)
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


def test_a_slow_reply_that_arrives_uses_up_its_time(fake_time):
    fault = LlmSlow(SlowConfig(delay_seconds=(10.0, 10.0), timeout_seconds=30.0, stall_seconds=0.0))
    with retry.decision():
        fault.wrap(KeywordLM()).score("Human: a\nRobot:", [" a"])
        assert retry.remaining() == pytest.approx(RetryPolicy().deadline_seconds - 10.0)
    assert fake_time.sleeps == []


def test_llm_garbage_answers_what_planners_must_refuse():
    fault = LlmGarbage(GarbageConfig(probability=1.0))
    lm = fault.wrap(KeywordLM())
    texts = [" pick up the red block", " done", " put it in the bowl"]
    for _ in range(12):
        with pytest.raises(PlanningError, match="no step can be chosen"):
            checked_scores(lm.score("p", texts), texts)
        answer = lm.generate([])
        assert isinstance(answer, str)
    kinds = {e["effect"] for e in fault.drain_events()}
    assert {"the language model returned NaN scores", "the language model returned too few scores",
            "the language model answered gibberish", "the language model answered cut-off JSON"} <= kinds


def test_checked_scores_keeps_valid_scores_and_minus_infinity():
    assert checked_scores([-1, -2.5, -math.inf], ["a", "b", "c"]) == [-1.0, -2.5, -math.inf]
    with pytest.raises(PlanningError, match="not numbers"):
        checked_scores(["high", "low"], ["a", "b"])


def test_episode_faults_seed_the_fault_at_reset_and_pass_everything_else_on():
    class Env:
        video_fps = 5.0

        def reset_episode(self, seed, record_video=False):
            return ("episode", seed), "obs"

        def fault_events(self):
            return [{"fault": "x", "effect": "world broke", "step": 3}]

    fault = PerceptionDropout(DropoutConfig(probability=1.0))
    env = EpisodeFaults(Env(), fault)
    assert env.reset_episode(4) == (("episode", 4), "obs") and env.video_fps == 5.0
    fault.record("perception dropped the red block", 1)
    events = env.fault_events()
    assert [e["effect"] for e in events] == ["perception dropped the red block", "world broke"]
    assert describe_events(events + events) == "perception dropped the red block (step 1); world broke (step 3)"
    assert NoFault().target == "none"


def test_checked_scores_refuses_all_impossible():
    with pytest.raises(PlanningError, match="all 2 continuations impossible"):
        checked_scores([-math.inf, -math.inf], ["a", "b"])
