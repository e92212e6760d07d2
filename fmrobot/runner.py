"""The episode loop: the one place that knows the order of the stages.

perceive -> plan -> shield -> execute each skill call closed loop; after a failed or
refused step, re-perceive and replan, a bounded number of times; then let the task
judge. A decision the planner could not make because its language model failed (after
the model's own retries, fmrobot/llm/retry.py) counts as a failure too: look again and
ask again, within the same bound. Every stage is timed, and every decision and outcome
goes into the trace.
"""

from __future__ import annotations

import inspect
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError, FmrobotError, LanguageModelError, PlanningError, SimulationError
from fmrobot.faults import describe_events
from fmrobot.interfaces import (
    ActionContext,
    CollisionProbe,
    Environment,
    EpisodeRecorder,
    MotionShield,
    Perceptor,
    Planner,
    Policy,
    Responder,
    SafetyShield,
)
from fmrobot.llm import retry
from fmrobot.llm.retry import UnusableReplyError
from fmrobot.types import (
    Action,
    EpisodeResult,
    Observation,
    PlanDecision,
    PlanningContext,
    SafetyReport,
    SafetyViolation,
    SceneDescription,
    SkillCall,
    SkillStatus,
    StageTimes,
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
    trace: list[dict[str, Any]]
    video: list[np.ndarray] = field(default_factory=list)
    annotations: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (name, image) per perception


class _EpisodeOver(Exception):
    def __init__(self, reason: str):
        self.reason = reason


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
    ):
        self.env, self.perceptor, self.planner = env, perceptor, planner
        self.policy, self.shield, self.responder = policy, shield, responder
        self.config = config or RunnerConfig()
        # Optional capabilities: a shield that checks actions, an env that answers collision queries.
        self._motion_shield = shield if isinstance(shield, MotionShield) else None
        self._probe = env if isinstance(env, CollisionProbe) else None
        self._annotations: list[tuple[str, np.ndarray]] | None = None
        self.video_annotate = video_annotate
        self._video_scenes: list[tuple[int, SceneDescription]] | None = None  # (step, scene) per perception
        self._recorder: EpisodeRecorder | None = None

    def run_episode(self, seed: int, record_video: bool = False, annotate: bool = False,
                    recorder: EpisodeRecorder | None = None, instruction: str | None = None,
                    goal: Mapping[str, Any] | None = None) -> EpisodeOutcome:
        """One episode of `seed`; `instruction` replaces the task's own, `goal` (task goal fields) is
        what success is then judged by (without it: the task's goal for the seed)."""
        clock = _StageClock()
        self._annotations = [] if annotate else None
        self._video_scenes = [] if record_video and self.video_annotate else None
        self._recorder = recorder
        started = time.perf_counter()
        trace: list[dict[str, Any]] = []
        self.episode_trace = trace  # the episode under way: what it holds is written even if the episode crashes
        overrides = {k: v for k, v in (("instruction", instruction), ("goal", goal)) if v is not None}
        with clock("reset"):
            episode, obs = self._reset(seed, record_video, overrides)
        context = PlanningContext(skills=self._skills_for(episode.task.skills), task=episode.task,
                                  oracle_plan=episode.oracle_plan, domain=episode.domain)
        trace.append({"event": "reset", "task": episode.task.name, "seed": seed, "instruction": episode.instruction,
                      "given_instruction": episode.given_instruction, "judged_by": _judged_by(episode),
                      "goal": dict(episode.goal)})
        if recorder is not None:
            recorder.begin(episode, obs)
        state = _Progress(budget=episode.task.max_steps)
        failure: str | None = None
        try:
            self._solve(episode.instruction, obs, context, clock, trace, state)
        except _EpisodeOver as over:
            failure = over.reason
        except (PlanningError, LanguageModelError) as error:
            failure = f"planning: {error}"
            trace.append({"event": "planning_error", "error": str(error), "type": type(error).__name__})
        except SimulationError as error:
            failure = f"physics: {error}"
            trace.append({"event": "simulation_error", "error": str(error)})
        predicates: dict[str, bool] = {"success": False}  # a world that blew up is not judged
        if trace[-1]["event"] != "simulation_error":
            try:
                with clock("simulation"):
                    self.env.settle(self.config.settle_seconds)
                predicates = self.env.evaluate()
            except SimulationError as error:  # it blew up while coming to rest
                failure = f"physics: {error}"
                trace.append({"event": "simulation_error", "error": str(error)})
        fault_events = getattr(self.env, "fault_events", None)  # environments with injected faults offer it
        injected = list(fault_events()) if fault_events is not None else []
        trace.extend({"event": "fault", **event} for event in injected)
        success = bool(predicates["success"])
        if success:
            failure = None
        elif failure is None:
            unmet = ", ".join(name for name, ok in predicates.items() if not ok and name != "success")
            failure = f"task not achieved: {unmet or 'success predicate false'}"
        if failure is not None and injected:
            failure += f" [injected faults: {describe_events(injected)}]"
        trace.append({"event": "result", "success": success, "predicates": predicates, "failure": failure,
                      "safety": state.safety_report().model_dump(mode="json")})
        with clock("render"):  # the env recorded poses during the episode; the video's frames are drawn now
            video = self._video_frames() if record_video else []
        result = EpisodeResult(
            task=episode.task.name,
            seed=seed,
            instruction=episode.instruction,
            success=success,
            predicates=predicates,
            env_steps=state.steps,
            skill_calls=state.calls,
            replans=state.replans,
            help_requests=state.help_requests,
            failure_reason=failure,
            given_instruction=episode.given_instruction,
            judged_by=_judged_by(episode),
            goal=dict(episode.goal),
            safety=state.safety_report(),
            latency=clock.times(),
            wall_time=time.perf_counter() - started,
        )
        if recorder is not None:
            recorder.end(result)
        return EpisodeOutcome(result=result, trace=trace, video=video, annotations=self._annotations or [])

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

    def _video_frames(self) -> list[np.ndarray]:
        frames = self.env.video_frames()
        if not frames or not self._video_scenes:
            return frames
        from fmrobot.perception.annotate import draw_video

        return draw_video(frames, self.env.video_frame_steps(), self._video_scenes, self.env.video_camera)

    def _skills_for(self, names) -> tuple:
        by_name = {s.name: s for s in self.policy.skills}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ConfigError(
                f"the task needs skills {missing} that the policy does not provide; "
                f"policy skills: {', '.join(by_name) or 'none'}"
            )
        return tuple(by_name[n] for n in names)

    def _perceive(self, queries, clock: _StageClock, trace: list) -> tuple[Observation, SceneDescription]:
        with clock("render"):
            obs = self.env.observe(images=bool(getattr(self.perceptor, "needs_images", True)))
        with clock("perception"):
            scene = self.perceptor.perceive(obs, queries)
        trace.append({"event": "perception", "scene": scene.model_dump(mode="json")})
        if self._video_scenes is not None:
            self._video_scenes.append((obs.step, scene))
        if self._annotations is not None:
            from fmrobot.perception.annotate import draw_scene

            index = sum(1 for event in trace if event["event"] == "perception") - 1
            self._annotations.extend((f"perception{index}_{f.name}", draw_scene(f, scene)) for f in obs.frames)
        return obs, scene

    def _solve(self, instruction: str, obs: Observation, context: PlanningContext, clock: _StageClock,
               trace: list, state: "_Progress") -> None:
        queries = context.task.vocabulary
        obs, scene = self._perceive(queries, clock, trace)
        decision, obs, scene = self._decide(lambda seen: self.planner.plan(instruction, seen, context),
                                            obs, scene, queries, clock, trace, state)
        for _ in range(self.config.max_decisions):
            trace.append({"event": "decision", "decision": _dump_decision(decision)})
            if decision.help is not None:
                decision = self._ask(decision, context, clock, trace, state)
            feedback, obs = self._execute(decision, scene, obs, context, clock, trace, state)
            if feedback is not None and feedback.status is SkillStatus.FAILURE:
                if state.steps >= state.budget:
                    raise _EpisodeOver(f"step budget of {state.budget} control steps used up ({feedback.reason})")
                if state.replans >= self.config.max_replans:
                    raise _EpisodeOver(f"gave up after {state.replans} replans; last failure: {feedback.reason}")
                state.replans += 1
                if feedback.env_steps > 0:  # the arm moved, so it may be in the way now
                    obs = self._go_home(obs, scene, context, clock, trace, state)
            elif decision.plan is not None and decision.plan.final:
                return
            if feedback is None:
                raise _EpisodeOver("the planner returned an empty plan that is not final")
            obs, scene = self._perceive(queries, clock, trace)
            decision, obs, scene = self._decide(
                lambda seen, previous=decision, feedback=feedback: self.planner.replan(previous, feedback, seen,
                                                                                       context),
                obs, scene, queries, clock, trace, state)
        raise _EpisodeOver(f"no final plan after {self.config.max_decisions} planner decisions")

    def _decide(self, ask: Callable[[SceneDescription], PlanDecision], obs: Observation, scene: SceneDescription,
                queries, clock: _StageClock, trace: list,
                state: _Progress) -> tuple[PlanDecision, Observation, SceneDescription]:
        """`ask(scene)`: the planner's decision. One its language model could not make (the model stayed
        unreachable or answered nonsense through its retries) is a failed decision, like a failed step:
        while replans are left, look again and ask again; then the episode ends with the error.
        Other planning errors (an instruction that names nothing in the scene) end it at once."""
        while True:
            try:
                with clock("planning"), retry.decision():  # the model's calls in it share one deadline
                    return ask(scene), obs, scene
            except (LanguageModelError, UnusableReplyError) as error:
                trace.append({"event": "planning_error", "error": str(error), "type": type(error).__name__,
                              "replanning": state.replans < self.config.max_replans})
                if state.replans >= self.config.max_replans:
                    after = f" (gave up after {state.replans} replans)" if state.replans else ""
                    raise _EpisodeOver(f"planning: {error}{after}") from None
                state.replans += 1
            obs, scene = self._perceive(queries, clock, trace)

    def _ask(self, decision: PlanDecision, context: PlanningContext, clock: _StageClock, trace: list,
             state: "_Progress") -> PlanDecision:
        """Put the planner's question to the responder; the chosen option becomes the decision."""
        request = decision.help
        assert request is not None
        state.help_requests += 1
        answer = None
        if self.responder is not None and request.choices:
            with clock("help"):
                answer = self.responder.respond(request, context, decision.history)
        valid = answer is not None and 0 <= answer < len(request.choices)
        trace.append({"event": "help", "question": request.question, "options": list(request.options),
                      "answer": request.options[answer] if valid else answer})
        if answer is None:
            why = ("the request offers no plan to choose" if not request.choices
                   else "nobody answered" if self.responder is None else "no option was chosen")
            raise _EpisodeOver(f"the planner asked for help ({request.question}) and {why}")
        if not valid:
            raise _EpisodeOver(f"the responder answered {answer}, not an option index 0..{len(request.choices) - 1}")
        return PlanDecision(instruction=decision.instruction, plan=request.choices[answer], confidence=1.0,
                            rationale=f"{decision.rationale}; asked for help, answer: {request.options[answer]}",
                            history=decision.history)

    def _go_home(self, obs: Observation, scene: SceneDescription, context: PlanningContext, clock: _StageClock,
                 trace: list, state: "_Progress") -> Observation:
        """Move the arm out of the cameras' view before looking again, if the policy can.

        After a failed skill the arm often hangs over the objects: seen from the camera it
        hides them, or merges with one of the same colour into a single proposal.
        """
        home = next((s for s in self.policy.skills if s.name == "home"), None)
        if home is None or state.steps >= state.budget:
            return obs
        skills = context.skills if any(s.name == "home" for s in context.skills) else (*context.skills, home)
        feedback, obs = self._run_skill(-1, SkillCall(skill="home"), scene, obs,
                                        context.model_copy(update={"skills": skills}), clock, state)
        state.calls -= 1  # not a planned skill call
        trace.append({"event": "home", **feedback.model_dump(mode="json")})
        return obs

    def _execute(self, decision: PlanDecision, scene: SceneDescription, obs: Observation,
                 context: PlanningContext, clock: _StageClock, trace: list,
                 state: "_Progress") -> tuple[StepFeedback | None, Observation]:
        assert decision.plan is not None
        with clock("safety"):
            verdict = self.shield.check(decision.plan, scene)
        trace.append({"event": "safety", "verdict": verdict.model_dump(mode="json")})
        if not verdict.allowed or verdict.plan is None:
            state.refusals.extend(v for v in verdict.violations if not v.repaired)
            first = verdict.violations[0] if verdict.violations else None
            index = first.step_index if first and first.step_index is not None else 0
            call = decision.plan.steps[index] if decision.plan.steps else SkillCall(skill="(none)")
            reasons = "; ".join(f"{v.rule}: {v.reason}" for v in verdict.violations) or "refused"
            return StepFeedback(step_index=index, call=call, status=SkillStatus.FAILURE,
                                reason=f"safety shield refused the plan: {reasons}"), obs
        feedback = None
        moved: set[str] = set()  # objects earlier steps of this plan moved (picked or pushed)
        for index, call in enumerate(verdict.plan.steps):
            named, moves = self._named_objects(call, context)
            if named & moved:
                # The step acts on something the plan already moved: where it is now comes from
                # a fresh look, not from the scene perceived before the plan started. The arm may
                # hide objects from that look; they keep their last known place.
                obs, fresh = self._perceive(context.task.vocabulary, clock, trace)
                hidden = tuple(o for o in scene.objects if o.label not in fresh.labels)
                scene = fresh.model_copy(update={"objects": fresh.objects + hidden})
                moved.clear()
            feedback, obs = self._run_skill(index, call, scene, obs, context, clock, state)
            trace.append({"event": "skill", **feedback.model_dump(mode="json")})
            if feedback.status is SkillStatus.FAILURE:
                break
            moved |= moves
        return feedback, obs

    def _check_action(self, action: Action, call: SkillCall, involved: frozenset[str], scene: SceneDescription,
                      obs: Observation, state: "_Progress") -> Action | None:
        """The action to apply after the shield's motion rules (maybe repaired); None if refused."""
        assert self._motion_shield is not None
        context = ActionContext(call=call, involved=involved, scene=scene, obs=obs, previous=state.last_action,
                                probe=self._probe)
        verdict = self._motion_shield.check_action(action, context)
        for violation in verdict.violations:
            if violation.repaired:
                state.repairs[violation.rule] = state.repairs.get(violation.rule, 0) + 1
        if verdict.allowed and verdict.action is not None:
            return verdict.action
        refused = [v for v in verdict.violations if not v.repaired]
        state.refusals.extend(refused or [SafetyViolation(rule="shield", step_index=None,
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

    def _run_skill(self, index: int, call: SkillCall, scene: SceneDescription, obs: Observation,
                   context: PlanningContext, clock: _StageClock,
                   state: "_Progress") -> tuple[StepFeedback, Observation]:
        state.calls += 1
        start_steps = state.steps

        recorder = self._recorder

        def outcome(status: SkillStatus, reason: str = "") -> tuple[StepFeedback, Observation]:
            if recorder is not None:
                recorder.skill_ended(call, obs, status)
            return StepFeedback(step_index=index, call=call, status=status, reason=reason,
                                env_steps=state.steps - start_steps), obs

        try:
            spec = context.skill(call.skill)
            spec.validate_call(call)
            named = frozenset(call.objects(spec))
            for label in named:
                scene.find(label)
            # The object the robot last picked or pushed is in (or just left) its fingers: its
            # motion may touch it.
            involved = named | ({state.handled} if state.handled else set())
            with clock("control"):
                self.policy.reset(call, scene, obs)
            if recorder is not None:
                recorder.skill_started(call, spec, scene, obs)
        except FmrobotError as error:
            return outcome(SkillStatus.FAILURE, str(error))
        while True:
            with clock("control"):
                status = self.policy.status(obs)
            if status is SkillStatus.SUCCESS and spec.moved_arguments:
                state.handled = str(call.args.get(spec.moved_arguments[0], "")) or state.handled
            if status is not SkillStatus.RUNNING:
                return outcome(status, self.policy.failure_reason() if status is SkillStatus.FAILURE else "")
            if state.steps >= state.budget:
                return outcome(SkillStatus.FAILURE, f"{call}: step budget of {state.budget} control steps used up")
            with clock("control"):
                action = self.policy.act(obs)
            if self._motion_shield is not None:
                with clock("safety"):
                    checked = self._check_action(action, call, involved, scene, obs, state)
                if checked is None:
                    refused = state.refusals[-1]
                    return outcome(SkillStatus.FAILURE, f"safety shield stopped the motion: {refused.rule}: "
                                                        f"{refused.reason}")
                action = checked
            state.last_action = action
            if recorder is not None:
                recorder.step(obs, action)
            with clock("simulation"):
                obs = self.env.apply(action)
            state.steps += 1


@dataclass
class _Progress:
    budget: int
    steps: int = 0
    calls: int = 0
    replans: int = 0
    help_requests: int = 0
    last_action: Action | None = None  # the last action applied: motion checks measure speed from it
    handled: str | None = None  # the object the last successful pick or push moved
    refusals: list[SafetyViolation] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)  # rule -> actions it repaired

    def safety_report(self) -> SafetyReport:
        return SafetyReport(refusals=tuple(self.refusals), repairs=dict(self.repairs))


def _judged_by(episode: Any) -> str:
    """"given": by the goal that came with the instruction; "task": by the task's goal for the seed."""
    return "given" if getattr(episode, "given_goal", False) else "task"


def _dump_decision(decision: PlanDecision) -> dict[str, Any]:
    return {
        "plan": [str(s) for s in decision.plan.steps] if decision.plan else None,
        "final": decision.plan.final if decision.plan else None,
        "help": decision.help.model_dump(mode="json") if decision.help else None,
        "confidence": decision.confidence,
        "rationale": decision.rationale,
    }
