"""The plug points of the stack, as structural Protocols.

A component satisfies an interface by having the methods; it does not inherit from
anything. `fmrobot.testing` checks conformance with real calls, not just signatures.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Annotated, Any, Collection, Literal, Protocol, Sequence, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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
    SuccessVerdict,
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
class PerceptionRecorder(Protocol):
    """An episode recorder that also sees each perception: the observation (with the camera frames
    the perceptor was given, if any) and the scene perceived from it (optional for recorders)."""

    def perceived(self, obs: Observation, scene: SceneDescription) -> None: ...


@runtime_checkable
class Responder(Protocol):
    """Answers a planner's request for help: a person at a prompt, or a script in benchmarks."""

    def respond(self, request: HelpRequest, context: PlanningContext, history: Sequence[StepFeedback]) -> int | None:
        """The index of the chosen option, or None when none of them is what was meant."""
        ...


@runtime_checkable
class SuccessDetector(Protocol):
    """Looks at the scene after a skill and says whether the step achieved its intent (Inner Monologue)."""

    #: True when `judge` reads camera frames; the runner renders them for it.
    needs_images: bool

    def judge(self, instruction: str, call: SkillCall, spec: SkillSpec, obs: Observation) -> SuccessVerdict | None:
        """The verdict on `call`, just executed for `instruction`, in the state `obs` shows; None: no verdict."""
        ...


class TextPart(BaseModel):
    """Text inside a message whose content mixes text and images."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """One camera image inside a message, as PNG bytes with its stated resolution."""

    # base64 in JSON, so that messages with images can be written to traces and read back
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    type: Literal["image"] = "image"
    png: bytes
    width: int
    height: int

    @classmethod
    def from_array(cls, rgb: np.ndarray, max_side: int | None = None) -> ImagePart:
        """An HxWx3 uint8 image, scaled down (aspect kept) so that neither side exceeds `max_side`."""
        from PIL import Image

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"an image part needs an HxWx3 uint8 array, got shape {rgb.shape} of {rgb.dtype}")
        image = Image.fromarray(rgb)
        if max_side is not None and max(image.size) > max_side:
            scale = max_side / max(image.size)
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return cls(png=buffer.getvalue(), width=image.width, height=image.height)

    def to_pil(self) -> Any:
        """The image as an RGB PIL image (what model processors take)."""
        from PIL import Image

        return Image.open(io.BytesIO(self.png)).convert("RGB")

    def to_array(self) -> np.ndarray:
        return np.asarray(self.to_pil(), dtype=np.uint8)

    def data_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    role: str  # "system" | "user" | "assistant"
    content: str | tuple[ContentPart, ...]  # a plain string, or text and image parts in order

    @property
    def text(self) -> str:
        """The text of the message: the whole content if a string, else its text parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        if isinstance(self.content, str):
            return ()
        return tuple(part for part in self.content if isinstance(part, ImagePart))


@runtime_checkable
class ReadsImages(Protocol):
    """A language model that accepts ImagePart content in generate(); one without it refuses images
    (ImagesNotSupportedError)."""

    reads_images: bool


def camera_images(obs: Observation, cameras: Sequence[str] = (), max_side: int | None = None) -> tuple[ImagePart, ...]:
    """The observation's camera frames as image parts (those named in `cameras`, in that order; empty: all)."""
    if not obs.frames:
        raise ValueError("the observation holds no camera frames: it was observed without images")
    frames = [obs.frame(name) for name in cameras] if cameras else list(obs.frames)
    return tuple(ImagePart.from_array(np.ascontiguousarray(f.rgb), max_side) for f in frames)


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
class WatchesCamera(Protocol):
    """A planner that reads camera images: the runner renders frames for it and shows it every fresh
    observation (before each plan or replan) with `see`."""

    def see(self, obs: Observation) -> None: ...


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
