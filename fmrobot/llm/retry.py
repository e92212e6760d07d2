"""Asking a language model again after a transient failure: bounded, capped, within a deadline.

Where each failure is retried:
- the HTTP client (openai_compatible.py): timeouts, connection errors, 429 and 5xx, raised
  as `TransientLanguageModelError`; a 4xx or a missing model is final, asking again gives
  the same answer;
- a fault that stands for the server (fmrobot/faults/language_model.py): its timeouts and
  refused connections go through the same loop, as a real server's would;
- the planners: a reply that cannot be used (NaN scores, too few, no valid plan) is an
  `UnusableReplyError`, and asking again is the retry.

Every loop is bounded by one `RetryPolicy`: at most `retries` (≤ 10) retries, waits that
double from `backoff` up to `max_backoff` (≤ 30 s), and a deadline per planner decision.
The runner opens a `decision()` around each plan/replan; every call within it shares the
deadline, and no retry starts that could not get `MIN_ATTEMPT_SECONDS` before it. Time a
fault only simulates (a slow reply) is `spend()`-ed, so it counts as if it had passed.
A loop that gives up raises a plain `LanguageModelError` (or the last `UnusableReplyError`),
which no outer loop retries again: retries never multiply across layers.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import tenacity
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import LanguageModelError, PlanningError

T = TypeVar("T")

MAX_RETRIES = 10
MAX_WAIT_SECONDS = 30.0
MIN_ATTEMPT_SECONDS = 1.0  # a retry that would have less time than this before the deadline is not started


class TransientLanguageModelError(LanguageModelError):
    """A failure that asking again may cure: a timeout, a refused connection, HTTP 429 or 5xx."""


class UnusableReplyError(PlanningError):
    """The model answered, but nothing can be decided from it (NaN or missing scores, no valid plan)."""


class RetryPolicy(BaseModel):
    """How a language model is asked again; the `llm` configs that talk to a server carry these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retries: int = Field(default=2, ge=0, le=MAX_RETRIES)  # extra attempts after a transient failure
    backoff: float = Field(default=0.5, ge=0.0, le=MAX_WAIT_SECONDS)  # seconds before the first retry, doubling
    max_backoff: float = Field(default=10.0, ge=0.0, le=MAX_WAIT_SECONDS)  # no single wait is longer
    deadline_seconds: float = Field(default=120.0, gt=0.0, le=3600.0)  # all retries of one planner decision

    @classmethod
    def of(cls, config: BaseModel) -> RetryPolicy:
        """The policy part of a backend config that has these fields."""
        return cls(**{name: getattr(config, name) for name in cls.model_fields})

    def wait(self, retry: int) -> float:
        """Seconds before retry number `retry` (1, 2, ...)."""
        return min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))


def policy_of(llm: Any) -> RetryPolicy:
    """The backend's retry policy; the defaults for backends without one (local models)."""
    policy = getattr(llm, "retry_policy", None)
    return policy if isinstance(policy, RetryPolicy) else RetryPolicy()


# ---------------------------------------------------------------------- the decision's clock

# Module attributes rather than imports, so that tests can stand in a fake clock and sleep.
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep


@dataclass
class _Decision:
    started: float
    simulated: float = 0.0  # seconds faults only simulated
    deadline: float | None = None  # seconds from the start; set by the first policy that asks in it

    def elapsed(self) -> float:
        return _clock() - self.started + self.simulated


_current: ContextVar[_Decision | None] = ContextVar("fmrobot_llm_decision", default=None)


@contextmanager
def decision() -> Iterator[None]:
    """One planner decision: the language-model calls inside share one deadline."""
    token = _current.set(_Decision(started=_clock()))
    try:
        yield
    finally:
        _current.reset(token)


def spend(seconds: float) -> None:
    """Count `seconds` of simulated waiting against the current decision (nothing outside one)."""
    current = _current.get()
    if current is not None:
        current.simulated += max(0.0, float(seconds))


def remaining() -> float:
    """Seconds left before the current decision's deadline; infinite outside a decision."""
    current = _current.get()
    if current is None or current.deadline is None:
        return math.inf
    return current.deadline - current.elapsed()


def attempt_timeout(timeout: float) -> float:
    """A request's timeout: `timeout`, cut to the time left before the deadline. A first attempt made
    after the deadline (other work of the decision was slow) still gets `timeout`: it is asked once."""
    left = remaining()
    return min(timeout, left) if left >= MIN_ATTEMPT_SECONDS else timeout


# ---------------------------------------------------------------------- the loop


def call(ask: Callable[[], T], policy: RetryPolicy,
         retry_on: tuple[type[Exception], ...] = (TransientLanguageModelError,)) -> T:
    """`ask()`, asked again after an exception of `retry_on` while the policy allows."""
    current = _current.get()
    if current is None:  # called outside a runner decision: the call is its own decision
        with decision():
            return call(ask, policy, retry_on)
    if current.deadline is None:
        current.deadline = policy.deadline_seconds

    def give_up(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number > policy.retries:
            return True
        wait = policy.wait(state.attempt_number)
        return current.elapsed() + wait + MIN_ATTEMPT_SECONDS > current.deadline

    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return ask()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(retry_on),
        stop=give_up,
        wait=lambda state: policy.wait(state.attempt_number),
        sleep=lambda seconds: _sleep(seconds),
        reraise=True,
    )
    try:
        return retrying(attempt)
    except retry_on as error:
        note = f"(gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {current.elapsed():.0f} s)"
        if isinstance(error, TransientLanguageModelError):
            raise LanguageModelError(f"{error} {note}") from None  # final now: no outer loop asks again
        if isinstance(error, UnusableReplyError):
            raise UnusableReplyError(f"{error} {note}") from None
        raise
