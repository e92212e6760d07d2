"""The retry loop of language-model calls: bounded attempts, capped waits, one deadline per decision."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fmrobot.errors import LanguageModelError
from fmrobot.llm import retry
from fmrobot.llm.retry import RetryPolicy, TransientLanguageModelError, UnusableReplyError


class Failing:
    """Raises `error` the first `times` calls (all calls if None), then answers "ok"."""

    def __init__(self, error: Exception, times: int | None = None):
        self.error, self.times, self.calls = error, times, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.times is None or self.calls <= self.times:
            raise self.error
        return "ok"


def test_a_transient_failure_is_retried_until_it_answers(fake_time):
    ask = Failing(TransientLanguageModelError("HTTP 503"), times=2)
    assert retry.call(ask, RetryPolicy(retries=2, backoff=0.5)) == "ok"
    assert ask.calls == 3 and fake_time.sleeps == [0.5, 1.0]


def test_retries_are_bounded_and_the_final_error_is_not_transient(fake_time):
    ask = Failing(TransientLanguageModelError("HTTP 503 from server"))
    with pytest.raises(LanguageModelError) as caught:
        retry.call(ask, RetryPolicy(retries=3, backoff=0.5))
    assert ask.calls == 4 and fake_time.sleeps == [0.5, 1.0, 2.0]
    # Final: an outer loop (the planner's re-ask) must not multiply the attempts.
    assert type(caught.value) is LanguageModelError
    assert str(caught.value).startswith("HTTP 503 from server (gave up after 4 attempts in 4 s)")


def test_every_wait_is_capped(fake_time):
    ask = Failing(TransientLanguageModelError("timed out"))
    policy = RetryPolicy(retries=10, backoff=8.0, max_backoff=30.0, deadline_seconds=3600.0)
    with pytest.raises(LanguageModelError):
        retry.call(ask, policy)
    assert ask.calls == 11
    assert fake_time.sleeps == [8.0, 16.0] + [30.0] * 8


def test_no_retry_starts_past_the_deadline(fake_time):
    ask = Failing(TransientLanguageModelError("timed out"))
    policy = RetryPolicy(retries=10, backoff=4.0, max_backoff=30.0, deadline_seconds=20.0)
    with pytest.raises(LanguageModelError):
        retry.call(ask, policy)
    # 4 + 8 s of waiting; a third wait of 16 s would end past the 20 s deadline.
    assert ask.calls == 3 and fake_time.sleeps == [4.0, 8.0]


def test_calls_of_one_decision_share_its_deadline(fake_time):
    policy = RetryPolicy(retries=5, backoff=1.0, deadline_seconds=60.0)
    with retry.decision():
        assert retry.call(lambda: "first", policy) == "first"
        retry.spend(58.5)  # a slow first call (simulated, as a fault's slow reply)
        assert retry.remaining() == pytest.approx(1.5)
        assert retry.attempt_timeout(30.0) == pytest.approx(1.5)
        ask = Failing(TransientLanguageModelError("timed out"))
        with pytest.raises(LanguageModelError, match="gave up after 1 attempt in 58 s"):
            retry.call(ask, policy)
    assert ask.calls == 1 and fake_time.sleeps == []
    with retry.decision():  # the next decision starts afresh
        assert retry.call(Failing(TransientLanguageModelError("x"), times=1), policy) == "ok"


def test_a_first_attempt_after_the_deadline_still_gets_the_full_timeout(fake_time):
    with retry.decision():
        retry.call(lambda: None, RetryPolicy(deadline_seconds=10.0))
        retry.spend(50.0)
        assert retry.attempt_timeout(30.0) == 30.0


def test_other_errors_are_not_retried(fake_time):
    ask = Failing(LanguageModelError("HTTP 404 from server: no such model"))
    with pytest.raises(LanguageModelError, match="no such model"):
        retry.call(ask, RetryPolicy(retries=5))
    assert ask.calls == 1 and fake_time.sleeps == []


def test_an_unusable_reply_is_asked_again_when_the_caller_says_so(fake_time):
    ask = Failing(UnusableReplyError("NaN scores"))
    with pytest.raises(UnusableReplyError, match=r"NaN scores \(gave up after 3 attempts"):
        retry.call(ask, RetryPolicy(retries=2), retry_on=(UnusableReplyError,))
    assert ask.calls == 3
    once = Failing(UnusableReplyError("NaN scores"))
    with pytest.raises(UnusableReplyError):
        retry.call(once, RetryPolicy(retries=2))  # not in retry_on: not asked again
    assert once.calls == 1


@pytest.mark.parametrize("options,field", [
    ({"retries": 1_000_000_000}, "retries"), ({"retries": 11}, "retries"), ({"retries": -1}, "retries"),
    ({"max_backoff": 31.0}, "max_backoff"), ({"backoff": 60.0}, "backoff"), ({"deadline_seconds": 0}, "deadline"),
])
def test_policies_out_of_bounds_are_refused(options, field):
    with pytest.raises(ValidationError, match=field):
        RetryPolicy(**options)
    assert RetryPolicy(retries=10, max_backoff=30.0).retries == 10


def test_backends_without_a_policy_get_the_defaults():
    class Local:
        pass

    assert retry.policy_of(Local()) == RetryPolicy()
