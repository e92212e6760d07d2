"""The episode trace: one typed event per thing that happened in an episode, in order.

A trace is written one JSON object per line, keyed by `event`, with the keys traces had
before the events were typed: `read_trace` reads old and new traces alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from fmrobot.types import (
    HelpRequest,
    PlanDecision,
    SafetyReport,
    SafetyVerdict,
    SceneDescription,
    SkillCall,
    SkillStatus,
    StepFeedback,
)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    #: Fields written only when they were given: older writers left them out.
    _written_when_given: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The event as one trace line holds it."""
        left_out = {name for name in self._written_when_given if name not in self.model_fields_set}
        return self.model_dump(mode="json", exclude=left_out or None)


class ResetEvent(_Event):
    event: Literal["reset"] = "reset"
    task: str
    seed: int
    instruction: str
    given_instruction: bool
    judged_by: str  # "given" or "task": see EpisodeResult.judged_by
    goal: dict[str, Any]


class PerceptionEvent(_Event):
    event: Literal["perception"] = "perception"
    scene: SceneDescription


class DecisionRecord(BaseModel):
    """A planner decision as the trace keeps it: the plan's steps as text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: list[str] | None
    final: bool | None
    help: HelpRequest | None
    confidence: float
    rationale: str

    @classmethod
    def of(cls, decision: PlanDecision) -> DecisionRecord:
        plan = decision.plan
        return cls(plan=[str(s) for s in plan.steps] if plan else None, final=plan.final if plan else None,
                   help=decision.help, confidence=decision.confidence, rationale=decision.rationale)


class DecisionEvent(_Event):
    event: Literal["decision"] = "decision"
    decision: DecisionRecord


class HelpEvent(_Event):
    event: Literal["help"] = "help"
    question: str
    options: list[str]
    answer: str | int | None  # the chosen option's text; the raw answer when it is not an option index


class SafetyEvent(_Event):
    event: Literal["safety"] = "safety"
    verdict: SafetyVerdict


class SkillEvent(_Event, StepFeedback):
    """A planned skill call's outcome."""

    event: Literal["skill"] = "skill"

    @classmethod
    def of(cls, feedback: StepFeedback) -> SkillEvent:
        return cls(**dict(feedback))


class HomeEvent(_Event, StepFeedback):
    """The arm moved out of the cameras' view after a failed step (not a planned call)."""

    event: Literal["home"] = "home"

    @classmethod
    def of(cls, feedback: StepFeedback) -> HomeEvent:
        return cls(**dict(feedback))


class DetectionEvent(_Event):
    """The success detector's verdict on an executed step, beside what the policy reported from simulator state."""

    event: Literal["detection"] = "detection"
    step_index: int
    call: SkillCall
    skill_status: SkillStatus  # the simulator's side: the status the policy reported
    achieved: bool | None  # the detector's side; None: its model failed, and the reason says how
    reason: str = ""
    seconds: float = 0.0  # how long the detector took


class PlanningErrorEvent(_Event):
    event: Literal["planning_error"] = "planning_error"
    error: str
    type: str  # the error's class name
    replanning: bool | None = None  # given for a failed decision: True when the runner asks again

    _written_when_given: ClassVar[frozenset[str]] = frozenset({"replanning"})


class SimulationErrorEvent(_Event):
    event: Literal["simulation_error"] = "simulation_error"
    error: str


class FaultEvent(_Event):
    """What an injected fault did; faults add details of their own."""

    model_config = ConfigDict(frozen=True, extra="allow")

    event: Literal["fault"] = "fault"
    fault: str
    effect: str
    step: int | None = None  # the control step it happened at

    _written_when_given: ClassVar[frozenset[str]] = frozenset({"step"})


class ResultEvent(_Event):
    event: Literal["result"] = "result"
    success: bool
    predicates: dict[str, bool]
    failure: str | None  # the failure reason, in words
    safety: SafetyReport


class CrashEvent(_Event):
    """The episode code raised: the last event of a crashed episode's trace."""

    event: Literal["crash"] = "crash"
    error: str  # "<class name>: <message>"


TraceEvent = Annotated[
    ResetEvent | PerceptionEvent | DecisionEvent | HelpEvent | SafetyEvent | SkillEvent | HomeEvent | DetectionEvent
    | PlanningErrorEvent | SimulationErrorEvent | FaultEvent | ResultEvent | CrashEvent,
    Field(discriminator="event"),
]

_EVENT = TypeAdapter(TraceEvent)


def parse_event(data: dict[str, Any]) -> TraceEvent:
    return _EVENT.validate_python(data)


def trace_json(events: Iterable[TraceEvent]) -> list[dict[str, Any]]:
    """The events as the trace file's lines hold them."""
    return [event.to_json() for event in events]


def read_trace(path: str | Path) -> list[TraceEvent]:
    """The events of a trace file (fmrobot.outputs.write_trace), old or new."""
    with Path(path).open() as handle:
        return [parse_event(json.loads(line)) for line in handle if line.strip()]
