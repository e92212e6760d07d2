"""Fault injection: break one part of the stack on purpose, by config (`fault=<name>`).

A fault is a registered component (entry-point group `fmrobot.faults`) that says what it
breaks through its `target`:

- "perception": `wrap(perceptor)` returns a perceptor whose scenes the fault corrupts;
- "language_model": `wrap(llm)` returns a backend that fails or answers nonsense;
- "environment": handed to the environment (`env.inject_fault(fault)`), which calls it
  around every control step (simulated faults live with the simulator, in sims/faults.py);
- "none": nothing is broken.

Faults draw their randomness from a generator seeded by the episode seed and the fault's
own `seed` option, so the same seed gives the same fault wherever the episode runs. What a
fault did is kept as events ({"fault", "effect", "step"}); the runner puts them in the
trace and, when the episode fails, names them in its failure reason.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.interfaces import FaultEvents

FaultTarget = Literal["none", "perception", "language_model", "environment"]

#: Mixed into every fault's seed so its stream differs from the task's (seeded by the episode seed alone).
FAULT_STREAM = 0xFA017


class FaultConfig(BaseModel):
    """Options every fault has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0)  # with the episode seed, seeds the fault's random choices


def episode_generator(episode_seed: int, fault_seed: int) -> np.random.Generator:
    return np.random.default_rng((episode_seed, fault_seed, FAULT_STREAM))


class Fault:
    """Shared behaviour of the faults that live in fmrobot: a per-episode generator and event log."""

    Config: ClassVar[type[FaultConfig]] = FaultConfig
    name: ClassVar[str] = "fault"
    target: ClassVar[FaultTarget] = "none"

    def __init__(self, config: FaultConfig | None = None):
        self.config = config or self.Config()
        self.rng = episode_generator(0, self.config.seed)
        self._events: list[dict[str, Any]] = []

    def begin_episode(self, seed: int) -> None:
        self.rng = episode_generator(seed, self.config.seed)
        self._events = []

    def record(self, effect: str, step: int | None = None, **details: Any) -> None:
        self._events.append({"fault": self.name, "effect": effect, "step": step, **details})

    def drain_events(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events


class NoFault(Fault):
    """`fault=none`: every component works as built."""

    name = "none"
    target = "none"


class EpisodeFaults:
    """The environment, seen through a fault of the stack's own components.

    Only the environment knows when an episode starts and with which seed; this wrapper
    passes that on to the fault and hands the fault's events to the runner. Everything
    else goes to the wrapped environment unchanged.
    """

    def __init__(self, env: Any, fault: Fault):
        self.env, self.fault = env, fault

    def reset_episode(self, seed: int, record_video: bool = False, **overrides: Any):
        self.fault.begin_episode(seed)
        return self.env.reset_episode(seed, record_video=record_video, **overrides)

    def fault_events(self) -> list[dict[str, Any]]:
        inner = list(self.env.fault_events()) if isinstance(self.env, FaultEvents) else []
        return self.fault.drain_events() + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def describe_events(events: list[dict[str, Any]], limit: int = 3) -> str:
    """The distinct effects of injected faults, in order, with the control steps each happened at."""
    steps: dict[str, list[int]] = {}
    for event in events:
        at = steps.setdefault(str(event["effect"]), [])
        if event.get("step") is not None and event["step"] not in at:
            at.append(int(event["step"]))
    parts = [effect + (f" (step{'s' if len(at) > 1 else ''} {', '.join(map(str, at))})" if at else "")
             for effect, at in steps.items()]
    return "; ".join(parts[:limit]) + (f"; and {len(parts) - limit} more" if len(parts) > limit else "")
