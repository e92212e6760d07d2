"""The plug points of the stack, as structural Protocols.

A component satisfies an interface by having the methods; it does not inherit from
anything. `fmrobot.testing` checks conformance with real calls, not just signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Protocol, Sequence, runtime_checkable

import numpy as np
from pydantic import BaseModel

from fmrobot.types import (
    Action,
    ActionVerdict,
    EpisodeResult,
    EpisodeSpec,
    GoalOption,
    HelpRequest,
    Observation,
    Obstruction,
    PlanDecision,
    PlanningContext,
    Plan,
    SafetyVerdict,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
    Quat,
    StepFeedback,
    Vec3,
)


@runtime_checkable
class Perceptor(Protocol):
    """Turns an observation into a typed scene."""

    #: True when `perceive` reads camera frames; the runner renders only then.
    needs_images: bool

    def perceive(self, obs: Observation, queries: Sequence[str]) -> SceneDescription: ...


@runtime_checkable
class Planner(Protocol):
    """Turns an instruction and a scene into a plan of skill calls, or asks for help."""

    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision: ...

    def replan(
        self,
        previous: PlanDecision,
        feedback: StepFeedback,
        scene: SceneDescription,
        context: PlanningContext,
    ) -> PlanDecision: ...


@runtime_checkable
class Policy(Protocol):
    """Executes one skill call, closed loop on the observation."""

    #: The skills this policy can execute; planners see these.
    skills: Sequence[SkillSpec]

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None: ...

    def act(self, obs: Observation) -> Action: ...

    def status(self, obs: Observation) -> SkillStatus: ...

    def failure_reason(self) -> str: ...


@runtime_checkable
class GoalDomain(Protocol):
    """What a task can be asked to achieve, and how: the domain and solver of LLM+P-style planning."""

    def options(self, scene: SceneDescription) -> list[GoalOption]:
        """Every goal the task can pursue among the scene's objects, each with a sound plan."""
        ...


@runtime_checkable
class SafetyShield(Protocol):
    """Stands between planner and execution: rejects or repairs a plan, with reasons."""

    def check(self, plan: Plan, scene: SceneDescription) -> SafetyVerdict: ...


@runtime_checkable
class CollisionProbe(Protocol):
    """Geometric queries on the world an action would run in (the environment answers them)."""

    def sweep(self, start: Vec3, end: Vec3, orientation: Quat, margin: float, ignore: Collection[str],
              only: Sequence[str] | None = None) -> Obstruction | None:
        """The nearest object that the robot's gripper (hand, open fingers and what they hold)
        would come within `margin` of, moved in a straight line from end-effector position
        `start` to `end` at `orientation`; None if the path is clear. Objects in `ignore` are skipped, and so are
        those whose labels match none of the shell patterns in `only` (None: every object).
        The table, the robot and whatever the robot already touches are never obstructions."""
        ...


@dataclass(frozen=True)
class ActionContext:
    """What a motion check sees besides the action itself."""

    call: SkillCall
    involved: frozenset[str]  # objects the call names: its motion may come close to them
    scene: SceneDescription
    obs: Observation  # the state the action would be applied in
    previous: Action | None  # the action applied before this one in the episode, if any
    probe: CollisionProbe | None  # None: no collision queries (the environment cannot answer them)


@runtime_checkable
class MotionShield(Protocol):
    """A shield that also checks every action before it is applied (optional for shields)."""

    def check_action(self, action: Action, context: ActionContext) -> ActionVerdict: ...


@runtime_checkable
class EpisodeRecorder(Protocol):
    """Watches one episode as the runner drives it: demonstrations are recorded through this."""

    def begin(self, episode: EpisodeSpec, obs: Observation) -> None: ...

    def skill_started(self, call: SkillCall, spec: SkillSpec, scene: SceneDescription, obs: Observation) -> None: ...

    def step(self, obs: Observation, action: Action) -> None:
        """`action` is about to be applied in the state `obs` shows."""
        ...

    def skill_ended(self, call: SkillCall, obs: Observation, status: SkillStatus) -> None: ...

    def end(self, result: EpisodeResult) -> None: ...


@runtime_checkable
class Responder(Protocol):
    """Answers a planner's request for help: a person at a prompt, or a script in benchmarks."""

    def respond(self, request: HelpRequest, context: PlanningContext, history: Sequence[StepFeedback]) -> int | None:
        """The index of the chosen option, or None when none of them is what was meant."""
        ...


class Message(BaseModel):
    role: str  # "system" | "user" | "assistant"
    content: str


@runtime_checkable
class LanguageModel(Protocol):
    """What planners need from any language-model backend.

    A backend may also score in batches (`BatchScoring`); planners use that when it is
    there and fall back to one `score` per prompt.
    """

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Log-likelihood of each continuation after the prompt."""
        ...

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str: ...


@runtime_checkable
class Environment(Protocol):
    """The typed face of a simulated (or real) world, as the runner drives it.

    Simulators implement it; `fmrobot` never imports one. The runner receives the
    environment that the config built.
    """

    def reset_episode(self, seed: int, record_video: bool = False) -> tuple[EpisodeSpec, Observation]:
        """Start the episode of `seed`; the same seed always gives the same episode.

        An environment that takes free-text instructions also accepts the keywords
        `instruction` (replaces the task's instruction) and `goal` (what to judge by);
        the runner passes them only when a run gives them."""
        ...

    def observe(self, images: bool = False) -> Observation: ...

    def apply(self, action: Action) -> Observation: ...

    def settle(self, max_seconds: float = 1.0) -> Observation:
        """Let the world come to rest, robot holding still, before it is judged."""
        ...

    def evaluate(self) -> dict[str, bool]:
        """Named success predicates of the current task; always holds "success"."""
        ...

    #: Frames per second of recorded video, in simulated time.
    video_fps: float

    def video_frames(self) -> list[np.ndarray]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- optional capabilities
# A component has one of these or not; whoever uses it checks with isinstance.


@runtime_checkable
class NeedsImages(Protocol):
    """A perceptor that says whether it reads camera frames (`Perceptor`); one without it gets them."""

    needs_images: bool


@runtime_checkable
class UsesLanguageModel(Protocol):
    """A planner class that is built with a language model (`llm=`) when `needs_llm` is true."""

    needs_llm: bool


@runtime_checkable
class BatchScoring(Protocol):
    """A language model that scores several (prompt, continuations) pairs in one call
    (the transformers backend runs them in one forward pass)."""

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]: ...


@runtime_checkable
class FaultInjection(Protocol):
    """An environment that can break its world on purpose (fmrobot.faults, target "environment")."""

    def inject_fault(self, fault: Any) -> None:
        """Break the world with `fault` from the next episode on; None: no fault."""
        ...


@runtime_checkable
class FaultEvents(Protocol):
    """An environment with injected faults, which reports what they did."""

    def fault_events(self) -> list[dict[str, Any]]:
        """What the faults did since the last call: {"fault", "effect", "step", ...} each."""
        ...


@runtime_checkable
class SourceCheck(Protocol):
    """A component class that loads from somewhere (a model hub) and can tell up front whether it can."""

    def check_sources(self, config: Any) -> None:
        """Raise ConfigError when what `config` names cannot be had here (a classmethod)."""
        ...
