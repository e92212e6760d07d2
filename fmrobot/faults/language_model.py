"""Language-model faults: the model server is down, too slow, or answers nonsense.

They wrap the backend the `llm` group built, so planners meet them exactly where a real
server would fail: a `LanguageModelError` from the call, or a reply they must reject.
A fault stands for the server and the network, so what it breaks goes through the client's
retry loop (the backend's retry policy, fmrobot/llm/retry.py), as a real server's timeout
or refused connection would; a garbage reply is the planner's to re-ask.
"""

from __future__ import annotations

import json
import time
from typing import Sequence

from pydantic import BaseModel, Field, model_validator

from fmrobot.faults import Fault, FaultConfig
from fmrobot.interfaces import LanguageModel, Message
from fmrobot.llm import retry
from fmrobot.llm.retry import RetryPolicy, TransientLanguageModelError


class FaultyLanguageModel:
    """A backend every call of which goes through a language-model fault first."""

    def __init__(self, inner: LanguageModel, fault: "LanguageModelFault"):
        self.inner, self.fault = inner, fault
        self.retry_policy: RetryPolicy = retry.policy_of(inner)
        self.reads_images = bool(getattr(inner, "reads_images", False))  # a broken vision model still takes images

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        return retry.call(lambda: self.fault.score(self.inner, prompt, continuations), self.retry_policy)

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return [self.score(prompt, texts) if texts else [] for prompt, texts in requests]

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str:
        return retry.call(lambda: self.fault.generate(self.inner, messages, schema), self.retry_policy)


class LanguageModelFault(Fault):
    target = "language_model"

    def wrap(self, llm: LanguageModel) -> FaultyLanguageModel:
        return FaultyLanguageModel(llm, self)

    def score(self, llm: LanguageModel, prompt: str, continuations: Sequence[str]) -> list[float]:
        self.before_call()
        return list(llm.score(prompt, continuations))

    def generate(self, llm: LanguageModel, messages: Sequence[Message], schema: type[BaseModel] | None) -> str:
        self.before_call()
        return llm.generate(messages, schema=schema)

    def before_call(self) -> None:
        """Raise TransientLanguageModelError where the fault makes this call fail."""


class DownConfig(FaultConfig):
    after_calls: int = Field(default=0, ge=0)  # calls per episode that still get through before the server dies


class LlmDown(LanguageModelFault):
    """The server cannot be reached: every call (after the first `after_calls` of an episode) fails."""

    Config = DownConfig
    name = "llm_down"
    config: DownConfig

    def __init__(self, config: DownConfig | None = None):
        super().__init__(config)
        self._calls = 0

    def begin_episode(self, seed: int) -> None:
        super().begin_episode(seed)
        self._calls = 0

    def before_call(self) -> None:
        self._calls += 1
        if self._calls > self.config.after_calls:
            self.record("the language-model server was unreachable")
            raise TransientLanguageModelError("language-model server unreachable: connection refused")


class SlowConfig(FaultConfig):
    delay_seconds: tuple[float, float] = (1.0, 45.0)  # each reply takes this long (uniform), in simulated time
    timeout_seconds: float = Field(default=30.0, gt=0.0)  # the client gives up after this long
    stall_seconds: float = Field(default=0.01, ge=0.0, le=5.0)  # real time each call waits, so latency shows

    @model_validator(mode="after")
    def _ordered(self) -> "SlowConfig":
        low, high = self.delay_seconds
        if not 0.0 <= low <= high:
            raise ValueError(f"delay_seconds must be (low, high) with 0 <= low <= high, got {self.delay_seconds}")
        return self


class LlmSlow(LanguageModelFault):
    """Each reply takes a random time; one longer than the client's timeout fails as a timeout.

    The delay is simulated: waiting minutes for real would only make the suite slow, and
    what the stack sees, a call that ends in a timeout error, is the same.
    """

    Config = SlowConfig
    name = "llm_slow"
    config: SlowConfig

    def before_call(self) -> None:
        low, high = self.config.delay_seconds
        delay = float(self.rng.uniform(low, high))
        time.sleep(self.config.stall_seconds)
        # The client waits at most its timeout, or what is left of the decision's deadline.
        limit = retry.attempt_timeout(self.config.timeout_seconds)
        retry.spend(min(delay, limit))  # simulated time passes as a real wait would
        if delay > limit:
            self.record(f"the language model did not answer within {self.config.timeout_seconds:g} s")
            raise TransientLanguageModelError(
                f"language model timed out: no reply within {limit:.3g} s (this one would take {delay:.0f} s)")


class GarbageConfig(FaultConfig):
    probability: float = Field(default=1.0, ge=0.0, le=1.0)  # each call answers nonsense with this probability


class LlmGarbage(LanguageModelFault):
    """The server answers, but with nonsense: non-finite or missing scores, text that is no plan."""

    Config = GarbageConfig
    name = "llm_garbage"
    config: GarbageConfig

    def score(self, llm: LanguageModel, prompt: str, continuations: Sequence[str]) -> list[float]:
        if self.rng.random() >= self.config.probability:
            return list(llm.score(prompt, continuations))
        kind = int(self.rng.integers(3))
        self.record("the language model returned " + ("NaN scores", "infinite scores", "too few scores")[kind])
        n = len(continuations)
        if kind == 0:
            return [float("nan")] * n
        if kind == 1:
            return [float("inf") if i == 0 or self.rng.random() < 0.5 else float("-inf") for i in range(n)]
        return [float(v) for v in self.rng.normal(-5.0, 1.0, max(n - 1, 0))]

    def generate(self, llm: LanguageModel, messages: Sequence[Message], schema: type[BaseModel] | None) -> str:
        if self.rng.random() >= self.config.probability:
            return llm.generate(messages, schema=schema)
        kind = int(self.rng.integers(3))
        self.record("the language model answered " + ("gibberish", "cut-off JSON", "a plan of unknown skills")[kind])
        if kind == 0:
            letters = self.rng.choice(list("abcdefghijklmnopqrstuvwxyz #%&*"), size=int(self.rng.integers(8, 60)))
            return "".join(letters)
        plan = json.dumps({"steps": [{"skill": "teleport", "args": {"object": "everything", "to": "moon"}}]})
        return plan[: int(self.rng.integers(5, len(plan) - 5))] if kind == 1 else plan
