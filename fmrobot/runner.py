"""The episode loop: the one place that knows the order of the stages.

perceive -> plan -> shield -> execute each skill call closed loop; after a failed or
refused step, re-perceive and replan, a bounded number of times; then let the task
judge. A decision the planner could not make because its language model failed (after
the model's own retries, fmrobot/llm/retry.py) counts as a failure too: look again and
ask again, within the same bound. Every stage is timed, and every decision and outcome
goes into the trace (fmrobot/trace.py). What one episode keeps while it runs is one
`_Episode`, which the stage methods share; a failure ends it with a reason in words and
a typed `EpisodeFailure` (the stage it happened in, and its kind).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import (
    ConfigError,
    FmrobotError,
    LanguageModelError,
    ObjectNotFoundError,
    PlanningError,
    SimulationError,
    SkillArgumentError,
)
from fmrobot.faults import describe_events
from fmrobot.interfaces import (
    ActionContext,
    CollisionProbe,
    Environment,
    EpisodeRecorder,
    FaultEvents,
    MotionShield,
    NeedsImages,
    PerceptionRecorder,
    Perceptor,
    Planner,
    Policy,
    Responder,
    SafetyShield,
    SuccessDetector,
    WatchesCamera,
)
from fmrobot.llm import retry
from fmrobot.llm.retry import UnusableReplyError
from fmrobot.trace import (
    DecisionEvent,
    DecisionRecord,
    DetectionEvent,
    FaultEvent,
    HelpEvent,
    HomeEvent,
    PerceptionEvent,
    PlanningErrorEvent,
    ResetEvent,
    ResultEvent,
    SafetyEvent,
    SimulationErrorEvent,
    SkillEvent,
    TraceEvent,
    trace_json,
)
from fmrobot.types import (
    Action,
    DetectorRecord,
    EpisodeFailure,
    EpisodeResult,
    EpisodeSpec,
    FailureKind,
    FailureStage,
    Observation,
    PlanDecision,
    PlanningContext,
    SafetyReport,
    SafetyViolation,
    SceneDescription,
    SkillCall,
    SkillStatus,
    StageTimes,
    StepCheck,
    StepFeedback,
)


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # re-perceive and replan after a failed step or a failed decision (the model failed) at most this often
    max_replans: int = Field(default=2, ge=0)
    max_decisions: int = Field(default=20, ge=1)  # for planners that decide step by step
    settle_seconds: float = Field(default=1.0, ge=0.0)  # at most this long for objects to come to rest


class _StageClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def times(self) -> StageTimes:
        return StageTimes(**self.seconds)


@dataclass
class EpisodeOutcome:
    result: EpisodeResult
    events: list[TraceEvent]  # what happened, in order
    video: list[np.ndarray] = field(default_factory=list)
    annotations: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (name, image) per perception

    @property
    def trace(self) -> list[dict[str, Any]]:
        """The events as the trace file's lines hold them (fmrobot.outputs.write_trace)."""
        return trace_json(self.events)


@dataclass(frozen=True)
class _Ending:
    """Why the episode stopped before the task was judged: in words, and typed."""

    reason: str
    failure: EpisodeFailure


class _EpisodeOver(Exception):
    def __init__(self, reason: str, stage: FailureStage, kind: FailureKind, skill: str | None = None):
        super().__init__(reason)
        self.ending = _Ending(reason, EpisodeFailure(stage=stage, kind=kind, skill=skill))


@dataclass(frozen=True)
class _Step:
    """A skill call's outcome; `failure` says where a failed one failed."""

    feedback: StepFeedback
    obs: Observation
    failure: EpisodeFailure | None = None


@dataclass
class _Episode:
    """Everything one episode keeps while it runs; the stages read and update it."""

    spec: EpisodeSpec
    seed: int
    context: PlanningContext
    clock: _StageClock
    started: float  # perf_counter at the start
    recorder: EpisodeRecorder | None
    annotations: list[tuple[str, np.ndarray]] | None  # None: not asked for
    video_scenes: list[tuple[int, SceneDescription]] | None  # (step, scene) per perception; None: not drawn
    trace: list[TraceEvent] = field(default_factory=list)
    perceptions: int = 0
    ending: _Ending | None = None  # set when a stage ended the episode
    # progress
    steps: int = 0
    calls: int = 0
    replans: int = 0
    help_requests: int = 0
    last_action: Action | None = None  # the last action applied: motion checks measure speed from it
    handled: str | None = None  # the object the last successful pick or push moved
    refusals: list[SafetyViolation] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)  # rule -> actions it repaired
    checks: list[StepCheck] = field(default_factory=list)  # the success detector's verdicts, in order

    @property
    def budget(self) -> int:
        return self.spec.task.max_steps

    def safety_report(self) -> SafetyReport:
        return SafetyReport(refusals=tuple(self.refusals), repairs=dict(self.repairs))


class Runner:
    def __init__(
        self,
        env: Environment,
        perceptor: Perceptor,
        planner: Planner,
        policy: Policy,
        shield: SafetyShield,
        config: RunnerConfig | None = None,
        responder: Responder | None = None,  # answers the planner's requests for help; None: nobody
        video_annotate: bool = False,  # draw each perception's boxes into the episode's video
        success_detector: SuccessDetector | None = None,  # judges each executed step from a fresh look; None: none
    ):
        self.env, self.perceptor, self.planner = env, perceptor, planner
        self.policy, self.shield, self.responder = policy, shield, responder
        self.config = config or RunnerConfig()
        # Optional capabilities: a shield that checks actions, an env that answers collision queries.
        self._motion_shield = shield if isinstance(shield, MotionShield) else None
        self._probe = env if isinstance(env, CollisionProbe) else None
        self._watcher = planner if isinstance(planner, WatchesCamera) else None  # a planner that reads images
        self.success_detector = success_detector
        self.video_annotate = video_annotate
        self._under_way: _Episode | None = None  # kept only so that a crashed episode's trace can be written

    def run_episode(self, seed: int, record_video: bool = False, annotate: bool = False,
                    recorder: EpisodeRecorder | None = None, instruction: str | None = None,
                    goal: Mapping[str, Any] | None = None) -> EpisodeOutcome:
        """One episode of `seed`; `instruction` replaces the task's own, `goal` (task goal fields) is
        what success is then judged by (without it: the task's goal for the seed)."""
        self._under_way = None
        clock, started = _StageClock(), time.perf_counter()
        overrides = {k: v for k, v in (("instruction", instruction), ("goal", goal)) if v is not None}
        with clock("reset"):
            spec, obs = self._reset(seed, record_video, overrides)
        context = PlanningContext(skills=self._skills_for(spec.task.skills), task=spec.task,
                                  oracle_plan=spec.oracle_plan, domain=spec.domain)
        episode = self._under_way = _Episode(
            spec=spec, seed=seed, context=context, clock=clock, started=started, recorder=recorder,
            annotations=[] if annotate else None, video_scenes=[] if record_video and self.video_annotate else None)
        episode.trace.append(ResetEvent(task=spec.task.name, seed=seed, instruction=spec.instruction,
                                        given_instruction=spec.given_instruction, judged_by=_judged_by(spec),
                                        goal=dict(spec.goal)))
        if recorder is not None:
            recorder.begin(spec, obs)
        try:
            self._solve(episode, obs)
        except _EpisodeOver as over:
            episode.ending = over.ending
        except (PlanningError, LanguageModelError) as error:
            episode.ending = _Ending(f"planning: {error}", EpisodeFailure(stage=FailureStage.PLANNING,
                                                                          kind=_planning_kind(error)))
            episode.trace.append(PlanningErrorEvent(error=str(error), type=type(error).__name__))
        except SimulationError as error:
            self._blew_up(episode, error)
        result = self._judge(episode)
        with clock("render"):  # the env recorded poses during the episode; the video's frames are drawn now
            video = self._video_frames(episode) if record_video else []
        result = result.model_copy(update={"latency": clock.times(), "wall_time": time.perf_counter() - started})
        if recorder is not None:
            recorder.end(result)
        return EpisodeOutcome(result=result, events=episode.trace, video=video, annotations=episode.annotations or [])

    def episode_events(self) -> list[TraceEvent]:
        """The trace so far of the episode under way (or of the last one): after an episode raised,
        what happened up to the crash. Empty when it raised before its environment was reset."""
        return list(self._under_way.trace) if self._under_way is not None else []

    # ------------------------------------------------------------------ judging

    def _blew_up(self, episode: _Episode, error: SimulationError) -> None:
        episode.ending = _Ending(f"physics: {error}",
                                 EpisodeFailure(stage=FailureStage.SIMULATION, kind="physics"))
        episode.trace.append(SimulationErrorEvent(error=str(error)))

    def _judge(self, episode: _Episode) -> EpisodeResult:
        """Let the world come to rest and have the task judge it; the result, timed up to now."""
        predicates: dict[str, bool] = {"success": False}
        ending = episode.ending
        if ending is None or ending.failure.stage is not FailureStage.SIMULATION:  # a world that blew up is not judged
            try:
                with episode.clock("simulation"):
                    self.env.settle(self.config.settle_seconds)
                predicates = self.env.evaluate()
            except SimulationError as error:  # it blew up while coming to rest
                self._blew_up(episode, error)
                ending = episode.ending
        injected = list(self.env.fault_events()) if isinstance(self.env, FaultEvents) else []
        episode.trace.extend(FaultEvent(**event) for event in injected)
        success = bool(predicates["success"])
        if success:
            ending = None
        elif ending is None:
            unmet = ", ".join(name for name, ok in predicates.items() if not ok and name != "success")
            ending = _Ending(f"task not achieved: {unmet or 'success predicate false'}",
                             EpisodeFailure(stage=FailureStage.TASK, kind="task_not_achieved"))
        reason = ending.reason if ending is not None else None
        if reason is not None and injected:
            reason += f" [injected faults: {describe_events(injected)}]"
        episode.trace.append(ResultEvent(success=success, predicates=predicates, failure=reason,
                                         safety=episode.safety_report()))
        spec = episode.spec
        return EpisodeResult(
            task=spec.task.name,
            seed=episode.seed,
            instruction=spec.instruction,
            success=success,
            predicates=predicates,
            env_steps=episode.steps,
            skill_calls=episode.calls,
            replans=episode.replans,
            help_requests=episode.help_requests,
            failure_reason=reason,
            failure=ending.failure if ending is not None else None,
            given_instruction=spec.given_instruction,
            judged_by=_judged_by(spec),
            goal=dict(spec.goal),
            safety=episode.safety_report(),
            detector=DetectorRecord(steps=tuple(episode.checks), final=episode.checks[-1].achieved)
            if episode.checks else None,
            latency=episode.clock.times(),
            wall_time=time.perf_counter() - episode.started,
        )

    # ------------------------------------------------------------------ stages

    def _reset(self, seed: int, record_video: bool, overrides: dict[str, Any]):
        if not overrides:
            return self.env.reset_episode(seed, record_video=record_video)
        try:
            accepted = inspect.signature(self.env.reset_episode).parameters
        except (TypeError, ValueError):
            accepted = {}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        refused = [k for k in overrides if k not in accepted and not takes_any]
        if refused:
            raise ConfigError(f"the environment {type(self.env).__name__} takes no {' or '.join(refused)} override: "
                              "its reset_episode(seed, record_video) accepts only the task's own instruction")
        try:
            return self.env.reset_episode(seed, record_video=record_video, **overrides)
        except ValueError as error:  # a goal the task's goal model or the scene rejects
            raise ConfigError(f"seed {seed}: {error}") from None

    def _video_frames(self, episode: _Episode) -> list[np.ndarray]:
        frames = self.env.video_frames()
        if not frames or not episode.video_scenes:
            return frames
        from fmrobot.perception.annotate import draw_video

        return draw_video(frames, self.env.video_frame_steps(), episode.video_scenes, self.env.video_camera)

    def _skills_for(self, names) -> tuple:
        by_name = {s.name: s for s in self.policy.skills}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ConfigError(
                f"the task needs skills {missing} that the policy does not provide; "
                f"policy skills: {', '.join(by_name) or 'none'}"
            )
        return tuple(by_name[n] for n in names)

    def _perceive(self, episode: _Episode) -> tuple[Observation, SceneDescription]:
        # A perceptor that does not say whether it reads images gets them.
        images = bool(self.perceptor.needs_images) if isinstance(self.perceptor, NeedsImages) else True
        with episode.clock("render"):
            obs = self.env.observe(images=images or self._watcher is not None)
        if self._watcher is not None:
            self._watcher.see(obs)  # the planner decides next from this look
        with episode.clock("perception"):
            scene = self.perceptor.perceive(obs, episode.spec.task.vocabulary)
        episode.trace.append(PerceptionEvent(scene=scene))
        if isinstance(episode.recorder, PerceptionRecorder):  # it sees the frames the perceptor saw
            episode.recorder.perceived(obs, scene)
        index, episode.perceptions = episode.perceptions, episode.perceptions + 1
        if episode.video_scenes is not None:
            episode.video_scenes.append((obs.step, scene))
        if episode.annotations is not None:
            from fmrobot.perception.annotate import draw_scene

            episode.annotations.extend((f"perception{index}_{f.name}", draw_scene(f, scene)) for f in obs.frames)
        return obs, scene

    def _solve(self, episode: _Episode, obs: Observation) -> None:
        instruction, context = episode.spec.instruction, episode.context
        obs, scene = self._perceive(episode)
        decision, obs, scene = self._decide(episode, lambda seen: self.planner.plan(instruction, seen, context),
                                            obs, scene)
        for _ in range(self.config.max_decisions):
            episode.trace.append(DecisionEvent(decision=DecisionRecord.of(decision)))
            if decision.help is not None:
                decision = self._ask(episode, decision)
            step = self._execute(episode, decision, scene, obs)
            feedback, obs = (step.feedback, step.obs) if step is not None else (None, obs)
            if step is not None and step.failure is not None:
                # The episode fails where the step failed; the budget, when it is what leaves no replan, is the kind.
                failed = step.failure
                if episode.steps >= episode.budget:
                    raise _EpisodeOver(f"step budget of {episode.budget} control steps used up ({step.feedback.reason})",
                                       failed.stage, "step_budget", failed.skill)
                if episode.replans >= self.config.max_replans:
                    raise _EpisodeOver(f"gave up after {episode.replans} replans; last failure: "
                                       f"{step.feedback.reason}", failed.stage, failed.kind, failed.skill)
                episode.replans += 1
                if step.feedback.env_steps > 0:  # the arm moved, so it may be in the way now
                    obs = self._go_home(episode, obs, scene)
            elif decision.plan is not None and decision.plan.final:
                return
            if feedback is None:
                raise _EpisodeOver("the planner returned an empty plan that is not final", FailureStage.PLANNING,
                                   "empty_plan")
            obs, scene = self._perceive(episode)
            decision, obs, scene = self._decide(
                episode,
                lambda seen, previous=decision, feedback=feedback: self.planner.replan(previous, feedback, seen,
                                                                                       context),
                obs, scene)
        raise _EpisodeOver(f"no final plan after {self.config.max_decisions} planner decisions",
                           FailureStage.PLANNING, "decisions_exhausted")

    def _decide(self, episode: _Episode, ask: Callable[[SceneDescription], PlanDecision], obs: Observation,
                scene: SceneDescription) -> tuple[PlanDecision, Observation, SceneDescription]:
        """`ask(scene)`: the planner's decision. One its language model could not make (the model stayed
        unreachable or answered nonsense through its retries) is a failed decision, like a failed step:
        while replans are left, look again and ask again; then the episode ends with the error.
        Other planning errors (an instruction that names nothing in the scene) end it at once."""
        while True:
            try:
                with episode.clock("planning"), retry.decision():  # the model's calls in it share one deadline
                    return ask(scene), obs, scene
            except (LanguageModelError, UnusableReplyError) as error:
                replanning = episode.replans < self.config.max_replans
                episode.trace.append(PlanningErrorEvent(error=str(error), type=type(error).__name__,
                                                        replanning=replanning))
                if not replanning:
                    after = f" (gave up after {episode.replans} replans)" if episode.replans else ""
                    raise _EpisodeOver(f"planning: {error}{after}", FailureStage.PLANNING,
                                       _planning_kind(error)) from None
                episode.replans += 1
            obs, scene = self._perceive(episode)

    def _ask(self, episode: _Episode, decision: PlanDecision) -> PlanDecision:
        """Put the planner's question to the responder; the chosen option becomes the decision."""
        request = decision.help
        assert request is not None
        episode.help_requests += 1
        answer = None
        if self.responder is not None and request.choices:
            with episode.clock("help"):
                answer = self.responder.respond(request, episode.context, decision.history)
        valid = answer is not None and 0 <= answer < len(request.choices)
        episode.trace.append(HelpEvent(question=request.question, options=list(request.options),
                                       answer=request.options[answer] if valid else answer))
        if answer is None:
            why = ("the request offers no plan to choose" if not request.choices
                   else "nobody answered" if self.responder is None else "no option was chosen")
            raise _EpisodeOver(f"the planner asked for help ({request.question}) and {why}", FailureStage.HELP,
                               "no_answer")
        if not valid:
            raise _EpisodeOver(f"the responder answered {answer}, not an option index 0..{len(request.choices) - 1}",
                               FailureStage.HELP, "invalid_answer")
        return PlanDecision(instruction=decision.instruction, plan=request.choices[answer], confidence=1.0,
                            rationale=f"{decision.rationale}; asked for help, answer: {request.options[answer]}",
                            history=decision.history)

    def _go_home(self, episode: _Episode, obs: Observation, scene: SceneDescription) -> Observation:
        """Move the arm out of the cameras' view before looking again, if the policy can.

        After a failed skill the arm often hangs over the objects: seen from the camera it
        hides them, or merges with one of the same colour into a single proposal.
        """
        home = next((s for s in self.policy.skills if s.name == "home"), None)
        if home is None or episode.steps >= episode.budget:
            return obs
        context = episode.context
        skills = context.skills if any(s.name == "home" for s in context.skills) else (*context.skills, home)
        step = self._run_skill(episode, -1, SkillCall(skill="home"), scene, obs,
                               context.model_copy(update={"skills": skills}))
        episode.calls -= 1  # not a planned skill call
        episode.trace.append(HomeEvent.of(step.feedback))
        return step.obs

    def _execute(self, episode: _Episode, decision: PlanDecision, scene: SceneDescription,
                 obs: Observation) -> _Step | None:
        """The plan's steps, in order, up to the first that fails; None for an empty plan."""
        assert decision.plan is not None
        with episode.clock("safety"):
            verdict = self.shield.check(decision.plan, scene)
        episode.trace.append(SafetyEvent(verdict=verdict))
        if not verdict.allowed or verdict.plan is None:
            episode.refusals.extend(v for v in verdict.violations if not v.repaired)
            first = verdict.violations[0] if verdict.violations else None
            index = first.step_index if first and first.step_index is not None else 0
            call = decision.plan.steps[index] if decision.plan.steps else SkillCall(skill="(none)")
            reasons = "; ".join(f"{v.rule}: {v.reason}" for v in verdict.violations) or "refused"
            feedback = StepFeedback(step_index=index, call=call, status=SkillStatus.FAILURE,
                                    reason=f"safety shield refused the plan: {reasons}")
            return _Step(feedback, obs, EpisodeFailure(stage=FailureStage.SAFETY, kind="refused"))
        step = None
        moved: set[str] = set()  # objects earlier steps of this plan moved (picked or pushed)
        context = episode.context
        for index, call in enumerate(verdict.plan.steps):
            named, moves = self._named_objects(call, context)
            if named & moved:
                # The step acts on something the plan already moved: where it is now comes from
                # a fresh look, not from the scene perceived before the plan started. The arm may
                # hide objects from that look; they keep their last known place.
                obs, fresh = self._perceive(episode)
                hidden = tuple(o for o in scene.objects if o.label not in fresh.labels)
                scene = fresh.model_copy(update={"objects": fresh.objects + hidden})
                moved.clear()
            step = self._run_skill(episode, index, call, scene, obs, context)
            obs = step.obs
            episode.trace.append(SkillEvent.of(step.feedback))
            if self.success_detector is not None and step.feedback.env_steps > 0:
                step = self._detect(episode, step, episode.spec.instruction, context)
            if step.failure is not None:
                break
            moved |= moves
        return step

    def _detect(self, episode: _Episode, step: _Step, instruction: str, context: PlanningContext) -> _Step:
        """The success detector's verdict on an executed step, from a fresh look, recorded beside the policy's
        status. A "no" on a step the policy finished makes it a failed step (Inner Monologue): the planner
        gets the detector's reason as feedback and replans, within max_replans. A failed skill stays failed."""
        detector, feedback = self.success_detector, step.feedback
        assert detector is not None
        obs = step.obs
        if detector.needs_images:
            with episode.clock("render"):
                obs = self.env.observe(images=True)
        started = time.perf_counter()
        try:
            with episode.clock("detection"), retry.decision():  # the detector's model calls share one deadline
                verdict = detector.judge(instruction, feedback.call, context.skill(feedback.call.skill), obs)
        except LanguageModelError as error:  # no verdict: the step stands as the policy reported it
            episode.trace.append(DetectionEvent(step_index=feedback.step_index, call=feedback.call,
                                                skill_status=feedback.status, achieved=None,
                                                reason=f"no verdict: {error}", seconds=time.perf_counter() - started))
            return step
        if verdict is None:
            return step
        episode.checks.append(StepCheck(step=str(feedback.call), skill_status=feedback.status,
                                        achieved=verdict.achieved, reason=verdict.reason))
        episode.trace.append(DetectionEvent(step_index=feedback.step_index, call=feedback.call,
                                            skill_status=feedback.status, achieved=verdict.achieved,
                                            reason=verdict.reason, seconds=time.perf_counter() - started))
        if verdict.achieved or feedback.status is not SkillStatus.SUCCESS:
            return step
        rejected = feedback.model_copy(update={"status": SkillStatus.FAILURE,
                                               "reason": f"the success detector saw no success: {verdict.reason}"})
        return _Step(rejected, step.obs, EpisodeFailure(stage=FailureStage.CONTROL, kind="step_not_achieved",
                                                        skill=feedback.call.skill))

    def _check_action(self, episode: _Episode, action: Action, call: SkillCall, involved: frozenset[str],
                      scene: SceneDescription, obs: Observation) -> Action | None:
        """The action to apply after the shield's motion rules (maybe repaired); None if refused."""
        assert self._motion_shield is not None
        context = ActionContext(call=call, involved=involved, scene=scene, obs=obs, previous=episode.last_action,
                                probe=self._probe)
        verdict = self._motion_shield.check_action(action, context)
        for violation in verdict.violations:
            if violation.repaired:
                episode.repairs[violation.rule] = episode.repairs.get(violation.rule, 0) + 1
        if verdict.allowed and verdict.action is not None:
            return verdict.action
        refused = [v for v in verdict.violations if not v.repaired]
        episode.refusals.extend(refused or [SafetyViolation(rule="shield", step_index=None,
                                                            reason=f"{call}: action refused without a reason")])
        return None

    @staticmethod
    def _named_objects(call: SkillCall, context: PlanningContext) -> tuple[set[str], set[str]]:
        """Objects the call names, and those of them it moves. A place target stays where it is,
        so placing several things into one tray needs no fresh look."""
        try:
            spec = context.skill(call.skill)
            named = set(call.objects(spec))
        except FmrobotError:
            return set(), set()  # _run_skill reports the bad call
        return named, {str(call.args[a]) for a in spec.moved_arguments if a in call.args}

    def _run_skill(self, episode: _Episode, index: int, call: SkillCall, scene: SceneDescription,
                   obs: Observation, context: PlanningContext) -> _Step:
        episode.calls += 1
        start_steps = episode.steps
        recorder, clock = episode.recorder, episode.clock

        def outcome(status: SkillStatus, reason: str = "", failure: EpisodeFailure | None = None) -> _Step:
            if recorder is not None:
                recorder.skill_ended(call, obs, status)
            feedback = StepFeedback(step_index=index, call=call, status=status, reason=reason,
                                    env_steps=episode.steps - start_steps)
            return _Step(feedback, obs, failure)

        def failed(stage: FailureStage, kind: FailureKind, reason: str) -> _Step:
            return outcome(SkillStatus.FAILURE, reason, EpisodeFailure(stage=stage, kind=kind, skill=call.skill))

        try:
            spec = context.skill(call.skill)
            spec.validate_call(call)
            named = frozenset(call.objects(spec))
            for label in named:
                scene.find(label)
            # The object the robot last picked or pushed is in (or just left) its fingers: its
            # motion may touch it.
            involved = named | ({episode.handled} if episode.handled else set())
            with clock("control"):
                self.policy.reset(call, scene, obs)
            if recorder is not None:
                recorder.skill_started(call, spec, scene, obs)
        except FmrobotError as error:
            return failed(*_call_failure(error), str(error))
        while True:
            with clock("control"):
                status = self.policy.status(obs)
            if status is SkillStatus.SUCCESS and spec.moved_arguments:
                episode.handled = str(call.args.get(spec.moved_arguments[0], "")) or episode.handled
            if status is SkillStatus.FAILURE:
                return failed(FailureStage.CONTROL, "skill_failed", self.policy.failure_reason())
            if status is not SkillStatus.RUNNING:
                return outcome(status)
            if episode.steps >= episode.budget:
                return failed(FailureStage.CONTROL, "step_budget",
                              f"{call}: step budget of {episode.budget} control steps used up")
            with clock("control"):
                action = self.policy.act(obs)
            if self._motion_shield is not None:
                with clock("safety"):
                    checked = self._check_action(episode, action, call, involved, scene, obs)
                if checked is None:
                    refused = episode.refusals[-1]
                    return failed(FailureStage.SAFETY, "motion_refused",
                                  f"safety shield stopped the motion: {refused.rule}: {refused.reason}")
                action = checked
            episode.last_action = action
            if recorder is not None:
                recorder.step(obs, action)
            with clock("simulation"):
                obs = self.env.apply(action)
            episode.steps += 1


def _call_failure(error: FmrobotError) -> tuple[FailureStage, FailureKind]:
    """Where a skill call that could not start failed."""
    if isinstance(error, ObjectNotFoundError):  # the plan names an object the scene (as perceived) lacks
        return FailureStage.PERCEPTION, "object_not_found"
    if isinstance(error, SkillArgumentError):
        return FailureStage.PLANNING, "invalid_plan"
    return FailureStage.CONTROL, "skill_failed"  # the policy could not start it


def _planning_kind(error: Exception) -> FailureKind:
    if isinstance(error, LanguageModelError):
        return "language_model"
    if isinstance(error, UnusableReplyError):
        return "unusable_reply"
    if isinstance(error, ObjectNotFoundError):
        return "object_not_found"
    if isinstance(error, SkillArgumentError):
        return "invalid_plan"
    return "no_plan"


def _judged_by(spec: EpisodeSpec) -> str:
    """"given": by the goal that came with the instruction; "task": by the task's goal for the seed."""
    return "given" if getattr(spec, "given_goal", False) else "task"  # older environments' specs lack it
