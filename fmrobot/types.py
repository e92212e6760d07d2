"""Value objects that cross the arrows of the episode loop.

Every value here is a frozen pydantic model: components pass them along and never
mutate them. Arrays (images, depth, joint vectors) are numpy arrays made read-only on
entry. Coordinates are metres in the world frame unless a name says otherwise;
quaternions are (x, y, z, w).
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Annotated, Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, model_validator

from fmrobot.errors import ObjectNotFoundError, SkillArgumentError

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]

TOP_DOWN: Quat = (1.0, 0.0, 0.0, 0.0)  # gripper pointing straight down (180 deg about x)


def _readonly_array(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


Array = Annotated[
    np.ndarray,
    PlainValidator(_readonly_array),
    PlainSerializer(lambda a: a.tolist(), when_used="json"),
]


class Value(BaseModel):
    """Base for all value objects: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


# --------------------------------------------------------------------------- geometry


class Pose(Value):
    position: Vec3
    orientation: Quat = (0.0, 0.0, 0.0, 1.0)

    def rotation_matrix(self) -> np.ndarray:
        x, y, z, w = self.orientation
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform from this frame to its parent."""
        transform = np.eye(4)
        transform[:3, :3] = self.rotation_matrix()
        transform[:3, 3] = self.position
        return transform


def yaw_quaternion(yaw: float, base: Quat = TOP_DOWN) -> Quat:
    """`base` rotated by `yaw` radians about the world z axis."""
    half = 0.5 * yaw
    qz: Quat = (0.0, 0.0, math.sin(half), math.cos(half))
    return quaternion_multiply(qz, base)


def quaternion_from_matrix(m: np.ndarray) -> Quat:
    """(x, y, z, w) of a 3x3 rotation matrix (Shepperd's method: stable for every angle)."""
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    return (float(x), float(y), float(z), float(w))


def quaternion_multiply(a: Quat, b: Quat) -> Quat:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


# --------------------------------------------------------------------------- sensing


class CameraIntrinsics(Value):
    """Pinhole model in pixels (OpenCV convention: x right, y down, z forward)."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fx: float = Field(gt=0)
    fy: float = Field(gt=0)
    cx: float
    cy: float

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


class CameraFrame(Value):
    """One RGB-D image with the camera model needed to lift pixels to the world.

    `extrinsics` is the camera pose in the world (camera-to-world), OpenCV axes.
    `segmentation` holds simulator body ids (-1 for background); only privileged
    (oracle) components may read it together with `Observation.segmentation_labels`.
    """

    name: str
    rgb: Array = Field(repr=False)  # (H, W, 3) uint8
    depth: Array = Field(repr=False)  # (H, W) float32, metres along the optical axis
    segmentation: Array | None = Field(default=None, repr=False)  # (H, W) int32
    intrinsics: CameraIntrinsics
    extrinsics: Pose

    @model_validator(mode="after")
    def _shapes_agree(self) -> "CameraFrame":
        h, w = self.intrinsics.height, self.intrinsics.width
        if self.rgb.shape != (h, w, 3):
            raise ValueError(f"rgb has shape {self.rgb.shape}, expected {(h, w, 3)}")
        if self.depth.shape != (h, w):
            raise ValueError(f"depth has shape {self.depth.shape}, expected {(h, w)}")
        if self.segmentation is not None and self.segmentation.shape != (h, w):
            raise ValueError(f"segmentation has shape {self.segmentation.shape}, expected {(h, w)}")
        return self


class RobotState(Value):
    joint_positions: Array = Field(repr=False)
    joint_velocities: Array = Field(repr=False)
    ee_pose: Pose
    gripper_width: float  # metres between the fingers
    gripper_max_width: float


class Observation(Value):
    """What the stack sees at one control step.

    `frames` is empty unless a component asked for images: rendering dominates the
    cost of a step, so the environment renders only on request.
    """

    step: int
    time: float  # simulated seconds since reset
    dt: float  # simulated seconds per control step
    robot: RobotState
    frames: tuple[CameraFrame, ...] = ()
    segmentation_labels: Mapping[int, str] = Field(default_factory=dict)  # privileged

    def frame(self, name: str) -> CameraFrame:
        for frame in self.frames:
            if frame.name == name:
                return frame
        raise KeyError(f"no camera frame named {name!r}; frames: {[f.name for f in self.frames]}")


# --------------------------------------------------------------------------- perception


class DetectedObject(Value):
    label: str
    score: float = Field(ge=0.0, le=1.0)
    position: Vec3  # centre of the object's visible extent, world frame
    extent: Vec3  # axis-aligned size of the visible points, world frame
    yaw: float | None = None  # rotation about world z of the object's footprint, if estimated
    box_2d: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in pixels
    camera: str | None = None
    num_points: int = 0

    @property
    def top_z(self) -> float:
        return self.position[2] + 0.5 * self.extent[2]


def normalize_label(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


class SceneDescription(Value):
    objects: tuple[DetectedObject, ...] = ()
    source: str = ""  # which perceptor made it

    @property
    def labels(self) -> list[str]:
        return [o.label for o in self.objects]

    def find(self, label: str) -> DetectedObject:
        """The most confident object with this label; a clear error if there is none."""
        wanted = normalize_label(label)
        matches = [o for o in self.objects if normalize_label(o.label) == wanted]
        if not matches:
            seen = ", ".join(sorted(self.labels)) or "nothing"
            raise ObjectNotFoundError(f"no object labelled {label!r} in the scene; perceived: {seen}")
        return max(matches, key=lambda o: o.score)

    def has(self, label: str) -> bool:
        wanted = normalize_label(label)
        return any(normalize_label(o.label) == wanted for o in self.objects)


# --------------------------------------------------------------------------- planning


#: What the gripper holds, as a skill's precondition or effect.
GripperState = Literal["empty", "holding"]


class SkillSpec(Value):
    """A skill a policy can execute: its name, what it does, and its typed parameters.

    `parameters` is a pydantic model; its JSON schema is what a planner sees and it
    validates every call before anything moves.
    """

    name: str
    description: str
    parameters: type[BaseModel]
    object_arguments: tuple[str, ...] = ()  # arguments that name objects in the scene
    moved_arguments: tuple[str, ...] = ()  # of those, the ones naming objects the skill moves (pick's object)
    phrase: str = ""  # how a call reads in words, with argument slots: "pick up the {object}"
    # Precondition and effect on the gripper, so a planner can rule out impossible steps without
    # knowing skills by name: "empty" / "holding" (None: either, or unchanged).
    needs_gripper: GripperState | None = None
    leaves_gripper: GripperState | None = None

    def say(self, call: "SkillCall") -> str:
        """The call in words ("pick up the red block"), for language-model prompts."""
        if not self.phrase:
            return str(call)
        return self.phrase.format(**{k: v for k, v in call.args.items()})

    def parameter_schema(self) -> dict[str, Any]:
        return self.parameters.model_json_schema()

    def validate_call(self, call: "SkillCall") -> BaseModel:
        if call.skill != self.name:
            raise SkillArgumentError(f"call {call} is for skill {call.skill!r}, not {self.name!r}")
        try:
            return self.parameters.model_validate(dict(call.args))
        except Exception as error:  # pydantic.ValidationError, reworded in one line
            fields = ", ".join(self.parameters.model_fields) or "none"
            raise SkillArgumentError(
                f"invalid arguments for {call}: {_first_error(error)}; {self.name} takes: {fields}"
            ) from None


def _first_error(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        return f"{where}: {first.get('msg')}"
    return str(error)


class SkillCall(Value):
    skill: str
    args: Mapping[str, Any] = Field(default_factory=dict)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.skill}({inner})"

    def objects(self, spec: SkillSpec) -> list[str]:
        return [str(self.args[name]) for name in spec.object_arguments if name in self.args]


class Plan(Value):
    steps: tuple[SkillCall, ...]
    # False when the planner decides step by step and wants to be asked again after
    # these steps (SayCan-style); True when executing the steps finishes the task.
    final: bool = True

    def __str__(self) -> str:
        return " -> ".join(str(s) for s in self.steps) or "(empty plan)"


class HelpRequest(Value):
    """A question for a person: which of these options did you mean?"""

    question: str
    options: tuple[str, ...] = ()
    # The plan each option stands for, when the planner can run it as soon as it is chosen.
    choices: tuple[Plan, ...] = ()

    @model_validator(mode="after")
    def _one_plan_per_option(self) -> "HelpRequest":
        if self.choices and len(self.choices) != len(self.options):
            raise ValueError(f"{len(self.options)} options but {len(self.choices)} plans")
        return self


class PlanDecision(Value):
    """A plan to execute, or a request for help; never both."""

    instruction: str
    plan: Plan | None = None
    help: HelpRequest | None = None
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    rationale: str = ""
    # What has been executed for this instruction so far, oldest first: planners that decide
    # step by step carry it from decision to decision instead of keeping state.
    history: tuple["StepFeedback", ...] = ()

    @model_validator(mode="after")
    def _plan_xor_help(self) -> "PlanDecision":
        if (self.plan is None) == (self.help is None):
            raise ValueError("a PlanDecision holds exactly one of `plan` and `help`")
        return self


class InstructionTemplate(Value):
    """An instruction pattern with slots and the plan it stands for.

    `text` uses `{slot}` placeholders ("put the {block} in the {bowl}"); the plan's
    string arguments may use the same placeholders.
    """

    text: str
    plan: tuple[SkillCall, ...]

    @property
    def slots(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.text)

    def fill(self, **values: str) -> str:
        return self.text.format(**values)

    def plan_for(self, **values: str) -> Plan:
        steps = tuple(
            SkillCall(
                skill=step.skill,
                args={k: v.format(**values) if isinstance(v, str) else v for k, v in step.args.items()},
            )
            for step in self.plan
        )
        return Plan(steps=steps)


class GoalOption(Value):
    """One goal a task can pursue in a scene, in words, with a sound plan that reaches it.

    Goal-interpreting planners (LLM+P) choose among these: understanding the instruction is
    the model's part, sequencing the steps the task's own solver's."""

    description: str  # how the goal reads: "put the red block in the blue bowl"
    phrasings: tuple[str, ...] = ()  # other ways to say the same goal ("put the red block into the blue bowl")
    # The objects the goal is about (moves, or puts things in, on or beside); empty: those its words name.
    objects: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()  # objects the goal names only to leave them alone ("every block but the red one")
    # Facts the goal makes true between its objects, as (relation, subject, object): ("on", "red block", "blue block");
    # ("at", object, place) says where in a tower or row it ends up (bottom/middle/top, left/middle/right) or,
    # with place "via", the zone a move passes through (towers_of_hanoi's spare peg).
    relations: tuple[tuple[str, str, str], ...] = ()
    plan: Plan  # reaches the goal from the scene it was listed for
    goal: Mapping[str, Any] = Field(default_factory=dict)  # the task's goal fields


class TaskSpec(Value):
    """What a task tells the stack: its skills, instruction templates and vocabulary."""

    name: str
    description: str
    skills: tuple[str, ...]
    templates: tuple[InstructionTemplate, ...]
    vocabulary: tuple[str, ...]  # every object label the task can put in a scene
    max_steps: int = 800  # control steps an episode may take


class EpisodeSpec(Value):
    """What an environment reset produces besides the first observation."""

    task: TaskSpec
    seed: int
    instruction: str
    # Privileged: the task's own solution, for oracle components and failure attribution.
    oracle_plan: Plan
    # Privileged: the goal the episode is judged by (the task's goal model, as JSON data).
    goal: Mapping[str, Any] = Field(default_factory=dict)
    given_instruction: bool = False  # True: a user's instruction replaced the task's generated one
    given_goal: bool = False  # True: the episode is judged by a goal given with the instruction
    # Not privileged: the goals this task can express, for planners that interpret instructions
    # as goals (fmrobot.interfaces.GoalDomain); None when the environment offers none.
    domain: Any = None


class PlanningContext(Value):
    """Everything a planner may use besides the instruction and the scene."""

    skills: tuple[SkillSpec, ...]
    task: TaskSpec
    oracle_plan: Plan | None = None  # privileged: only oracle planners read it
    # The goals the task can express in a scene (fmrobot.interfaces.GoalDomain); not privileged:
    # it knows the task, not the instruction. None when the environment offers none.
    domain: Any = None

    def skill(self, name: str) -> SkillSpec:
        for spec in self.skills:
            if spec.name == name:
                return spec
        raise SkillArgumentError(
            f"unknown skill {name!r}; available skills: {', '.join(s.name for s in self.skills)}"
        )


# --------------------------------------------------------------------------- control


class SkillStatus(str, Enum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"


class StepFeedback(Value):
    """The outcome of one executed (or refused) skill call."""

    step_index: int
    call: SkillCall
    status: SkillStatus
    reason: str = ""
    env_steps: int = 0


class Action(Value):
    """An absolute end-effector target and a gripper command (0 open, 1 closed)."""

    ee_position: Vec3
    ee_orientation: Quat = TOP_DOWN
    gripper: float = Field(default=0.0, ge=0.0, le=1.0)

    def to_array(self) -> np.ndarray:
        return np.array([*self.ee_position, *self.ee_orientation, self.gripper], dtype=np.float32)

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Action":
        a = np.asarray(array, dtype=np.float64).reshape(-1)
        if a.shape != (8,):
            raise ValueError(f"an action array has 8 entries (x, y, z, qx, qy, qz, qw, gripper), got {a.shape}")
        q = a[3:7]
        norm = float(np.linalg.norm(q))
        orientation = tuple(float(v) for v in q / norm) if norm > 1e-6 else TOP_DOWN
        return cls(
            ee_position=tuple(float(v) for v in a[:3]),
            ee_orientation=orientation,
            gripper=float(np.clip(a[7], 0.0, 1.0)),
        )


# --------------------------------------------------------------------------- safety


class SafetyViolation(Value):
    rule: str
    step_index: int | None  # the plan step it concerns; None for a whole plan or an action
    reason: str
    repaired: bool = False  # True: the rule changed the step or action instead of refusing it


class SafetyVerdict(Value):
    allowed: bool
    plan: Plan | None  # the plan to execute: the original, or a repaired one
    violations: tuple[SafetyViolation, ...] = ()


class ActionVerdict(Value):
    """The shield's word on one action, before it is applied."""

    allowed: bool
    action: Action | None  # the action to apply: as proposed, or repaired; None when refused
    violations: tuple[SafetyViolation, ...] = ()  # refusals, and repairs (repaired=True)


class Obstruction(Value):
    """What a swept probe would touch: the nearest object within the margin."""

    label: str
    distance: float  # metres between probe and object; negative: they would overlap
    at: Vec3  # the probe's centre at that point of the path


class SafetyReport(Value):
    """What the shield did in one episode."""

    refusals: tuple[SafetyViolation, ...] = ()  # every refused plan step or action, with its rule and reason
    repairs: Mapping[str, int] = {}  # rule -> how many actions it repaired


# --------------------------------------------------------------------------- results


class StageTimes(Value):
    """Wall seconds spent per stage of one episode."""

    reset: float = 0.0
    render: float = 0.0
    perception: float = 0.0
    planning: float = 0.0
    safety: float = 0.0
    control: float = 0.0
    simulation: float = 0.0
    help: float = 0.0  # waiting for an answer to a request for help
    detection: float = 0.0  # the success detector judging executed steps


class FailureStage(str, Enum):
    """The stage of the episode loop a failure is attributed to."""

    RESET = "reset"
    PERCEPTION = "perception"  # a plan step names an object that the scene (as perceived) lacks
    PLANNING = "planning"
    SAFETY = "safety"
    CONTROL = "control"  # a skill failed while executing, or used up the step budget
    SIMULATION = "simulation"  # the simulated world blew up
    HELP = "help"  # the planner asked for help and got no usable answer
    TASK = "task"  # every stage reported success, but the task's goal is not met
    CRASH = "crash"  # the episode never finished: an exception, or its worker died


#: How a failure happened, within its stage; a machine-readable name for tables and exit codes.
FailureKind = Literal[
    "task_not_achieved",  # the judge found the goal unmet
    # A failed step ends the episode once no replan is left (EpisodeResult.replans says how many were
    # made): its kind is the step's, one of these six.
    "step_budget",  # the task's control steps ran out (the stage is that of the step they ran out in)
    "refused",  # the safety shield refused the plan
    "motion_refused",  # the motion shield stopped an action
    "skill_failed",  # a skill's policy reported failure
    "object_not_found",  # a step or the instruction names an object not in the scene
    "invalid_plan",  # a step calls an unknown skill or has arguments its schema rejects
    "empty_plan",  # the planner returned an empty plan that is not final
    "step_not_achieved",  # the success detector judged that a step the policy finished missed its intent
    "decisions_exhausted",  # no final plan within the runner's planner decisions
    "language_model",  # the planner's language model could not answer
    "unusable_reply",  # the language model answered, but nothing could be decided from it
    "no_plan",  # another planning error
    "no_answer",  # nobody answered a request for help, or no option was chosen
    "invalid_answer",  # the answer to a request for help is not one of its options
    "physics",  # the simulated world became invalid
    "exception",  # the episode code raised
    "worker_died",  # the worker process or actor running the episode died
]


class EpisodeFailure(Value):
    """Where and how an episode failed, for machines; `EpisodeResult.failure_reason` says it in words."""

    stage: FailureStage
    kind: FailureKind
    skill: str | None = None  # the skill whose call failed, when a failed skill call ended the episode


class SuccessVerdict(Value):
    """A success detector's word on one executed step: did it achieve what it was for?"""

    achieved: bool
    reason: str = ""


class StepCheck(Value):
    """One executed step as the success detector and the simulator saw it."""

    step: str  # the call, as SkillCall prints it
    skill_status: SkillStatus  # what the policy reported, read from simulator state
    achieved: bool  # the detector's verdict
    reason: str = ""


class DetectorRecord(Value):
    """A success detector's verdicts in one episode beside the simulator's, so its accuracy can be
    computed from results.json alone."""

    steps: tuple[StepCheck, ...] = ()
    final: bool | None = None  # the verdict on the last executed step: compare with EpisodeResult.success


class CrashedAttempt(Value):
    """An attempt at an episode that did not finish: its worker died, or the episode code raised."""

    attempt: int  # 1 for the first try
    reason: str


class EpisodeResult(Value):
    task: str
    seed: int
    instruction: str
    success: bool
    predicates: Mapping[str, bool]
    env_steps: int
    skill_calls: int
    replans: int
    help_requests: int = 0  # questions the planner asked a person (or a scripted responder)
    failure_reason: str | None = None
    # The same failure, typed; None for a success, and in records written before it existed.
    failure: EpisodeFailure | None = None
    given_instruction: bool = False  # the instruction came from the user, not from the task
    # What success was judged by: "task" (the task's goal for this seed) or "given" (the instruction's own goal).
    judged_by: str = "task"
    goal: Mapping[str, Any] = Field(default_factory=dict)  # the goal it was judged by
    safety: SafetyReport = SafetyReport()
    latency: StageTimes
    wall_time: float
    trace_file: str | None = None
    video_file: str | None = None
    rerun_file: str | None = None  # the episode's Rerun recording (record.rerun=true), relative to the run dir
    # The episode never finished (failure_reason says why): a crash, not a failure of the stack.
    crashed: bool = False
    attempts: tuple[CrashedAttempt, ...] = ()  # earlier attempts that crashed before this one, in order
    detector: DetectorRecord | None = None  # the success detector's verdicts; None: the run had none


PlanDecision.model_rebuild()
