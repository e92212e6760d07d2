import pytest

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.errors import ConfigError, LanguageModelError
from fmrobot.llm import retry
from fmrobot.llm.retry import RetryPolicy, UnusableReplyError
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.planning.scripted import ScriptedPlanner
from fmrobot.responders import NoResponder, OracleResponder
from fmrobot.runner import Runner, RunnerConfig
from fmrobot.safety.basic import BasicShield, BasicShieldConfig
from fmrobot.safety.rules import Bounds
from fmrobot.trace import (
    DecisionEvent,
    PerceptionEvent,
    ResetEvent,
    ResultEvent,
    SafetyEvent,
    SkillEvent,
)
from fmrobot.types import (
    EpisodeFailure,
    EpisodeResult,
    FailureStage,
    HelpRequest,
    Plan,
    PlanDecision,
    SceneDescription,
    SkillCall,
)
from tests.fakes import FlakyPolicy


def make_runner(env, **parts) -> Runner:
    defaults = {"perceptor": OraclePerceptor(), "planner": ScriptedPlanner(), "policy": ScriptedPolicy(),
                "shield": BasicShield()}
    defaults.update(parts)
    return Runner(env=env, **defaults)


# Seeds 1 and 2 repeat seed 0's checks on other scenes: the full suite runs them.
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_oracle_stack_solves_pick_place(pick_place_env, seed):
    outcome = make_runner(pick_place_env).run_episode(seed)
    result = outcome.result
    assert result.success, result.failure_reason
    assert result.predicates["block_in_bowl"] and result.skill_calls == 2 and result.replans == 0
    assert result.latency.simulation > 0 and result.latency.perception > 0
    assert result.failure is None
    assert [type(e) for e in outcome.events] == [ResetEvent, PerceptionEvent, DecisionEvent, SafetyEvent,
                                                 SkillEvent, SkillEvent, ResultEvent]
    events = [e["event"] for e in outcome.trace]
    assert events == ["reset", "perception", "decision", "safety", "skill", "skill", "result"]


def test_same_seed_gives_the_same_trace(pick_place_env):
    runner = make_runner(pick_place_env)
    first = runner.run_episode(11).trace
    second = runner.run_episode(11).trace
    assert first == second
    assert runner.run_episode(12).trace != first


def test_failed_skill_triggers_reperception_and_replanning(pick_place_env):
    policy = FlakyPolicy(failures=1)
    outcome = make_runner(pick_place_env, policy=policy).run_episode(3)
    assert outcome.result.success, outcome.result.failure_reason
    assert outcome.result.replans == 1
    events = [e["event"] for e in outcome.trace]
    assert events.count("perception") == 2 and events.count("decision") == 2
    # The arm goes out of view before the second look, then the same pick is tried again.
    assert events.index("home") < len(events) - events[::-1].index("perception") - 1
    assert policy.calls[0] == policy.calls[2] and policy.calls[1] == "home()"


def test_retries_are_bounded_and_the_reason_is_kept(pick_place_env):
    runner = make_runner(pick_place_env, policy=FlakyPolicy(failures=100))
    runner.config = RunnerConfig(max_replans=2)
    result = runner.run_episode(3).result
    assert not result.success and result.replans == 2
    assert result.failure_reason.startswith("gave up after 2 replans") and "injected failure" in result.failure_reason
    assert result.failure == EpisodeFailure(stage=FailureStage.CONTROL, kind="skill_failed", skill="pick")


class _HidingPerceptor(OraclePerceptor):
    """Oracle perception that never reports blocks."""

    def perceive(self, obs, queries=()):
        scene = super().perceive(obs, queries)
        return SceneDescription(objects=tuple(o for o in scene.objects if "block" not in o.label), source="hiding")


def test_planning_error_fails_the_episode_with_its_message(pick_place_env):
    result = make_runner(pick_place_env, perceptor=_HidingPerceptor()).run_episode(0).result
    assert not result.success and result.env_steps == 0 and result.replans == 0  # not the model's failure
    assert result.failure_reason.startswith("planning: the instruction names")
    assert "block" in result.failure_reason and "not in the scene" in result.failure_reason
    assert result.failure == EpisodeFailure(stage=FailureStage.PLANNING, kind="object_not_found")


def test_shield_refusal_stops_execution_and_says_why(pick_place_env):
    tiny = BasicShield(BasicShieldConfig(workspace=Bounds(x=(0.0, 0.1), y=(-0.1, 0.1), z=(0.0, 2.0))))
    result = make_runner(pick_place_env, shield=tiny).run_episode(0).result
    assert not result.success and result.env_steps == 0
    assert "safety shield refused the plan" in result.failure_reason
    assert "outside the workspace" in result.failure_reason
    assert result.failure == EpisodeFailure(stage=FailureStage.SAFETY, kind="refused")


class _AskingPlanner(ScriptedPlanner):
    def plan(self, instruction, scene, context):
        return PlanDecision(instruction=instruction, help=HelpRequest(question="which bowl?"))


def test_help_request_without_a_responder_ends_the_episode_with_the_question(pick_place_env):
    result = make_runner(pick_place_env, planner=_AskingPlanner()).run_episode(0).result
    assert not result.success and "asked for help (which bowl?)" in result.failure_reason
    assert result.help_requests == 1
    assert result.failure == EpisodeFailure(stage=FailureStage.HELP, kind="no_answer")


class _UnsurePlanner(ScriptedPlanner):
    """Asks once, offering a wrong first step and the whole right plan."""

    def plan(self, instruction, scene, context):
        right = context.oracle_plan
        wrong_block = next(o.label for o in scene.objects
                           if o.label.endswith("block") and o.label != right.steps[0].args["object"])
        wrong = Plan(steps=(SkillCall(skill="pick", args={"object": wrong_block}),), final=False)
        request = HelpRequest(question="which block?", options=(f"the {wrong_block}", "the other one"),
                              choices=(wrong, right))
        return PlanDecision(instruction=instruction, help=request)


def test_the_responder_answer_is_executed_and_recorded(pick_place_env):
    outcome = make_runner(pick_place_env, planner=_UnsurePlanner(), responder=OracleResponder()).run_episode(0)
    result = outcome.result
    assert result.success, result.failure_reason
    assert result.help_requests == 1 and result.skill_calls == 2
    (asked,) = [e for e in outcome.trace if e["event"] == "help"]
    assert asked["question"] == "which block?" and asked["answer"] == "the other one"


def test_declining_every_option_ends_the_episode_before_anything_moves(pick_place_env):
    outcome = make_runner(pick_place_env, planner=_UnsurePlanner(), responder=NoResponder()).run_episode(0)
    assert not outcome.result.success and outcome.result.env_steps == 0
    assert "no option was chosen" in outcome.result.failure_reason


def test_a_policy_without_the_task_skills_is_a_config_error(pick_place_env):
    class NoSkills(ScriptedPolicy):
        skills = ()

    with pytest.raises(ConfigError, match="needs skills"):
        make_runner(pick_place_env, policy=NoSkills()).run_episode(0)


class _OncePerceptor(OraclePerceptor):
    """Oracle perception that sees the named object only in its first look (as if the arm hid it later)."""

    def __init__(self, hidden_later: str):
        super().__init__()
        self.hidden_later, self.looks = hidden_later, 0

    def perceive(self, obs, queries=()):
        scene = super().perceive(obs, queries)
        self.looks += 1
        if self.looks == 1:
            return scene
        return scene.model_copy(update={"objects": tuple(o for o in scene.objects if o.label != self.hidden_later)})


class _PickAgainPlanner(ScriptedPlanner):
    """Pick the block, put it in the bowl, then pick the same block again and put it back in the bowl."""

    def plan(self, instruction, scene, context):
        first = super().plan(instruction, scene, context).plan.steps
        return PlanDecision(instruction=instruction, plan=Plan(steps=first + first))


def test_a_step_on_an_object_the_plan_moved_looks_again_and_hidden_objects_keep_their_place(pick_place_env):
    pick_place_env.reset_episode(0)
    goal = pick_place_env._goal
    perceptor = _OncePerceptor(hidden_later=goal.bowl)  # the fourth step's target, unseen in the second look
    outcome = make_runner(pick_place_env, perceptor=perceptor, planner=_PickAgainPlanner()).run_episode(0)
    looks = [e for e in outcome.trace if e["event"] == "perception"]
    # One look before the plan, one before the third step (it names the block the plan moved);
    # a place target (the bowl) is not moved, so the fourth step needs none.
    assert len(looks) == 2 and perceptor.looks == 2
    assert outcome.result.success and outcome.result.replans == 0
    skills = [e for e in outcome.trace if e["event"] == "skill"]
    assert [e["status"] for e in skills] == ["success"] * 4


class _FailingFirst(ScriptedPlanner):
    """The scripted planner, except that its first `failures` decisions fail with `error` (plan or replan)."""

    def __init__(self, error: Exception, failures: int = 1, in_replan: bool = False):
        super().__init__()
        self.error, self.failures, self.in_replan = error, failures, in_replan
        self.asked = 0

    def plan(self, instruction, scene, context):
        if not self.in_replan:
            self._maybe_fail()
        return super().plan(instruction, scene, context)

    def replan(self, previous, feedback, scene, context):
        if self.in_replan:
            self._maybe_fail()
        return super().replan(previous, feedback, scene, context)

    def _maybe_fail(self):
        self.asked += 1
        if self.asked <= self.failures:
            raise self.error


@pytest.mark.parametrize("error", [LanguageModelError("language-model server unreachable (gave up after 3 attempts)"),
                                   UnusableReplyError("the language model returned NaN scores (gave up after 3 "
                                                      "attempts)")])
def test_a_failed_decision_is_asked_again_after_a_fresh_look(pick_place_env, error):
    planner = _FailingFirst(error)
    outcome = make_runner(pick_place_env, planner=planner).run_episode(0)
    result = outcome.result
    assert result.success, result.failure_reason
    assert result.replans == 1 and planner.asked == 2
    events = [e["event"] for e in outcome.trace]
    assert events[:5] == ["reset", "perception", "planning_error", "perception", "decision"]
    failed = outcome.trace[2]
    assert failed["type"] == type(error).__name__ and failed["error"] == str(error) and failed["replanning"]


def test_a_failed_replan_is_asked_again_with_the_same_feedback(pick_place_env):
    planner = _FailingFirst(LanguageModelError("timed out"), in_replan=True)
    outcome = make_runner(pick_place_env, planner=planner, policy=FlakyPolicy(failures=1)).run_episode(3)
    assert outcome.result.success, outcome.result.failure_reason
    assert outcome.result.replans == 2  # one for the failed skill, one for the failed decision
    assert [e["event"] for e in outcome.trace].count("planning_error") == 1


def test_failed_decisions_share_the_replan_bound_then_end_the_episode_with_the_error(pick_place_env):
    planner = _FailingFirst(LanguageModelError("language-model server unreachable"), failures=100)
    outcome = make_runner(pick_place_env, planner=planner).run_episode(0)
    result = outcome.result
    assert not result.success and result.env_steps == 0 and result.replans == 2 and planner.asked == 3
    assert result.failure_reason == "planning: language-model server unreachable (gave up after 2 replans)"
    assert result.failure == EpisodeFailure(stage=FailureStage.PLANNING, kind="language_model")
    errors = [e for e in outcome.trace if e["event"] == "planning_error"]
    assert [e["replanning"] for e in errors] == [True, True, False]
    assert [e["event"] for e in outcome.trace][-2:] == ["planning_error", "result"]


def test_without_replans_a_failed_decision_ends_the_episode_at_once(pick_place_env):
    planner = _FailingFirst(LanguageModelError("timed out"))
    runner = make_runner(pick_place_env, planner=planner)
    runner.config = RunnerConfig(max_replans=0)
    result = runner.run_episode(0).result
    assert not result.success and result.failure_reason == "planning: timed out" and planner.asked == 1


def test_the_model_calls_of_one_decision_share_a_deadline(pick_place_env):
    seen = []

    class Timed(ScriptedPlanner):
        def plan(self, instruction, scene, context):
            retry.call(lambda: None, RetryPolicy(deadline_seconds=42.0))
            seen.append(retry.remaining())
            return super().plan(instruction, scene, context)

    make_runner(pick_place_env, planner=Timed()).run_episode(0)
    assert len(seen) == 1 and 0 < seen[0] <= 42.0
    assert retry.remaining() == float("inf")  # outside a decision: no deadline


class _GhostPlanner(ScriptedPlanner):
    """Plans to pick an object nobody perceived."""

    def plan(self, instruction, scene, context):
        return PlanDecision(instruction=instruction, plan=Plan(steps=(SkillCall(skill="pick",
                                                                                args={"object": "ghost"}),)))


class _BadArgumentsPlanner(ScriptedPlanner):
    def plan(self, instruction, scene, context):
        return PlanDecision(instruction=instruction, plan=Plan(steps=(SkillCall(skill="pick", args={"where": 1}),)))


@pytest.mark.parametrize("planner,stage,kind", [
    (_GhostPlanner(), FailureStage.PERCEPTION, "object_not_found"),  # the step names what the scene lacks
    (_BadArgumentsPlanner(), FailureStage.PLANNING, "invalid_plan"),
])
def test_a_step_that_cannot_start_fails_the_episode_in_the_stage_that_caused_it(pick_place_env, planner, stage,
                                                                                 kind):
    runner = make_runner(pick_place_env, planner=planner)
    runner.config = RunnerConfig(max_replans=1)
    result = runner.run_episode(0).result
    assert not result.success and result.replans == 1 and result.env_steps == 0
    assert result.failure == EpisodeFailure(stage=stage, kind=kind, skill="pick")


def test_a_task_the_stages_all_reported_done_but_not_achieved_fails_in_the_task_stage(pick_place_env):
    class _HalfPlanner(ScriptedPlanner):  # picks the block, never places it
        def plan(self, instruction, scene, context):
            decision = super().plan(instruction, scene, context)
            return decision.model_copy(update={"plan": Plan(steps=decision.plan.steps[:1])})

    result = make_runner(pick_place_env, planner=_HalfPlanner()).run_episode(0).result
    assert not result.success and result.failure_reason.startswith("task not achieved")
    assert result.failure == EpisodeFailure(stage=FailureStage.TASK, kind="task_not_achieved")


def test_a_result_recorded_before_failures_were_typed_still_loads():
    old = {"task": "pick_place", "seed": 0, "instruction": "x", "success": False, "predicates": {"success": False},
           "env_steps": 3, "skill_calls": 1, "replans": 2, "failure_reason": "planning: x",
           "latency": {"planning": 0.1}, "wall_time": 1.0}
    result = EpisodeResult.model_validate(old)
    assert result.failure is None and result.failure_reason == "planning: x"
    again = EpisodeResult.model_validate(result.model_copy(
        update={"failure": EpisodeFailure(stage=FailureStage.PLANNING, kind="no_plan")}).model_dump(mode="json"))
    assert again.failure.stage is FailureStage.PLANNING and again.failure.kind == "no_plan"


def test_a_run_lost_to_planning_is_told_by_the_failure_stage_and_by_old_words():
    from fmrobot.run import is_planning_failure

    assert is_planning_failure(EpisodeFailure(stage=FailureStage.PLANNING, kind="empty_plan"))
    assert not is_planning_failure(EpisodeFailure(stage=FailureStage.CONTROL, kind="skill_failed", skill="pick"))
    assert is_planning_failure("planning: timed out") and not is_planning_failure("task not achieved: in_bowl")
