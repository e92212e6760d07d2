"""Symbolic mode of the planning benchmark: the executor against every task's oracle, each typed
error from a hand-written plan that commits it, and the report and CLI on a small run."""

from __future__ import annotations

import json

import pytest

from benchmarks.planning.errors import classify
from benchmarks.planning.symbolic import (
    ScenePerceptor,
    SymbolicEnv,
    SymbolicPolicy,
    SymbolicState,
    canonical,
)
from fmrobot.errors import PlanningError
from fmrobot.runner import Runner, RunnerConfig
from fmrobot.safety.basic import BasicShield, BasicShieldConfig, NoShield
from fmrobot.types import (
    EpisodeResult,
    HelpRequest,
    Plan,
    PlanDecision,
    SkillCall,
    StageTimes,
)

TASKS = ("pick_place", "sort_by_color", "stack_blocks", "spatial_placement", "align_line", "push_to_zone",
         "separate_piles", "pack_all", "towers_of_hanoi", "swap_blocks", "ambiguous_pick_place", "hazards")


def pick(label: str) -> SkillCall:
    return SkillCall(skill="pick", args={"object": label})


def place(target: str) -> SkillCall:
    return SkillCall(skill="place", args={"target": target})


class FixedPlanner:
    """Returns the given decisions in turn (the last one again when they run out); an exception is raised."""

    def __init__(self, *decisions):
        self.decisions = list(decisions)
        self.index = 0

    def _next(self, instruction: str) -> PlanDecision:
        decision = self.decisions[min(self.index, len(self.decisions) - 1)]
        self.index += 1
        if isinstance(decision, Exception):
            raise decision
        if isinstance(decision, Plan):
            return PlanDecision(instruction=instruction, plan=decision)
        return decision

    def plan(self, instruction, scene, context):
        return self._next(instruction)

    def replan(self, previous, feedback, scene, context):
        return self._next(previous.instruction)


class FirstOption:
    def respond(self, request, context, history):
        return 0


@pytest.fixture(scope="module")
def envs():
    """One SymbolicEnv per (task, options) for the whole module: a scene costs ~0.1 s, a world more."""
    from sims.env import TabletopEnv, load_task

    made: dict[tuple, SymbolicEnv] = {}

    def get(task: str, **options) -> SymbolicEnv:
        key = (task, tuple(sorted(options.items())))
        if key not in made:
            cls = load_task(task)
            made[key] = SymbolicEnv(TabletopEnv({"renderer": "tiny"}, task=cls(cls.Config(**options))))
        return made[key]

    yield get
    for env in made.values():
        env.close()


def run(env: SymbolicEnv, planner, seed: int = 0, expect: str = "achieve", shield=None, responder=None,
        max_decisions: int = 20):
    """One episode through the real runner; (its error type, its result, its trace)."""
    runner = Runner(env, ScenePerceptor(env), planner, SymbolicPolicy(env), shield or BasicShield(),
                    RunnerConfig(max_decisions=max_decisions), responder)
    outcome = runner.run_episode(seed)
    episode = env.episode
    error = classify(outcome.result, outcome.trace, expect, episode.oracle_plan, episode.task.skills,
                     start=env.start)
    return error, outcome.result, outcome.trace


def oracle(env: SymbolicEnv, seed: int = 0) -> Plan:
    episode, _ = env.reset_episode(seed)
    return episode.oracle_plan


# --------------------------------------------------------------------------- the executor


@pytest.mark.parametrize("task", TASKS)
def test_the_oracle_plan_succeeds_symbolically_on_every_task(envs, task):
    from fmrobot.planning.oracle import OraclePlanner

    env = envs(task)
    for seed in (0, 1):
        error, result, _ = run(env, OraclePlanner(), seed=seed, expect="refuse" if task == "hazards" else "achieve")
        assert result.success, (task, seed, result.failure_reason)
        assert error is None
        assert result.predicates["safe"] and result.predicates["hand_empty"]


def test_a_symbolic_episode_runs_again_on_the_scene_it_built(envs):
    # Its speed is the planning benchmark's figure (the whole symbolic suite in minutes), not asserted here.
    from fmrobot.planning.oracle import OraclePlanner

    env = envs("towers_of_hanoi")
    run(env, OraclePlanner(), seed=3)
    _, result, _ = run(env, OraclePlanner(), seed=3)  # same seed: the scene is reused
    assert result.success and result.skill_calls == 14


def test_equivalent_relations_and_independent_orders_judge_the_same():
    assert canonical("a", ("beside", "b", "left")) == canonical("b", ("beside", "a", "right"))
    assert canonical("x", ("between", "b", "a")) == canonical("x", ("between", "a", "b"))


def test_preconditions_name_what_is_wrong(envs):
    env = envs("towers_of_hanoi")
    episode, _ = env.reset_episode(0)
    goal = episode.goal
    state: SymbolicState = env.start.copy()
    bottom, middle, top = goal["tower"]
    assert state.execute(pick(bottom)) == f"precondition: the {middle} rests on the {bottom}"
    assert state.execute(place(goal["target"])) == "precondition: place needs something in the hand; it is empty"
    assert state.execute(pick(top)) is None
    assert state.execute(pick(middle)).startswith("precondition: pick needs an empty hand")
    assert state.execute(place(goal["target"])) is None
    assert state.execute(pick(middle)) is None
    assert state.execute(place(top)) == f"precondition: the {middle} may not go on the smaller {top}"
    assert state.execute(place(goal["spare"])) is None
    assert state.execute(pick(goal["target"])).endswith("which cannot be picked up")
    assert state.execute(pick(top)) is None
    assert state.execute(SkillCall(skill="push", args={"object": top, "target": goal["spare"]})).startswith(
        "precondition: push needs an empty hand")


def test_the_perceived_scene_follows_the_symbolic_moves(envs):
    env = envs("pick_place")
    episode, _ = env.reset_episode(0)
    block, bowl = episode.goal["block"], episode.goal["bowl"]
    env.execute(pick(block))
    env.execute(place(bowl))
    scene = ScenePerceptor(env).perceive(env.observe())
    assert scene.find(block).position[:2] == pytest.approx(scene.find(bowl).position[:2])
    assert all(o.score == 1.0 for o in scene.objects)


def test_a_given_goal_is_judged_with_its_own_oracle_plan(envs):
    from fmrobot.planning.oracle import OraclePlanner

    env = envs("pick_place")
    episode, _ = env.reset_episode(0)
    other = next(label for label in env.start.things if label.endswith("bowl") and label != episode.goal["bowl"])
    runner = Runner(env, ScenePerceptor(env), OraclePlanner(), SymbolicPolicy(env), BasicShield())
    outcome = runner.run_episode(0, instruction=f"put the {episode.goal['block']} in the {other}",
                                 goal={"bowl": other})
    assert outcome.result.success and outcome.result.goal["bowl"] == other
    assert str(env.episode.oracle_plan.steps[-1]) == str(place(other))


# --------------------------------------------------------------------------- one test per error type


def test_unknown_object(envs):
    env = envs("pick_place")
    bowl = oracle(env).steps[1].args["target"]
    error, result, _ = run(env, FixedPlanner(Plan(steps=(pick("purple elephant"), place(bowl)))))
    assert error == "unknown_object" and "no object labelled 'purple elephant'" in result.failure_reason


def test_unknown_object_from_a_planner_that_grounds_a_word_in_nothing(envs):
    from fmrobot.errors import ObjectNotFoundError

    error, _, _ = run(envs("pick_place"), FixedPlanner(ObjectNotFoundError(
        "the instruction names 'leftmost block' (block), which is not in the scene; perceived: red block")))
    assert error == "unknown_object"


def test_unsupported_skill(envs):
    env = envs("pick_place")
    block, bowl = (step.args[key] for step, key in zip(oracle(env).steps, ("object", "target")))
    error, _, _ = run(env, FixedPlanner(Plan(steps=(SkillCall(skill="push", args={"object": block, "target": bowl}),))))
    assert error == "unsupported_skill"


def test_precondition_violated(envs):
    env = envs("pick_place")
    error, result, _ = run(env, FixedPlanner(Plan(steps=(oracle(env).steps[1],))))  # place with an empty hand
    assert error == "precondition_violated"
    assert "precondition: place needs something in the hand" in result.failure_reason


def test_missing_step(envs):
    env = envs("stack_blocks")
    steps = oracle(env).steps  # middle onto bottom, then top onto middle
    error, result, _ = run(env, FixedPlanner(Plan(steps=steps[2:])))  # the top goes on; the middle never does
    assert error == "missing_step" and not result.success


def test_extra_step(envs):
    env = envs("pick_place")
    steps = oracle(env).steps
    other = next(label for label in env.start.things
                 if label.endswith("block") and label != steps[0].args["object"])
    error, result, _ = run(env, FixedPlanner(Plan(steps=steps + (pick(other), steps[1]))))
    assert error == "extra_step" and not result.predicates["nothing_else_changed"]


def test_a_wrong_target_is_an_extra_step(envs):
    env = envs("pick_place")
    steps = oracle(env).steps
    other = next(label for label in env.start.things if label.endswith("bowl") and label != steps[1].args["target"])
    error, _, _ = run(env, FixedPlanner(Plan(steps=(steps[0], place(other)))))
    assert error == "extra_step"


def test_wrong_order(envs):
    env = envs("swap_blocks")
    steps = oracle(env).steps  # A -> spare, B -> first bowl, A -> second bowl
    reordered = steps[4:6] + steps[2:4] + steps[0:2]  # A -> second bowl first, and ends in the spare
    error, result, _ = run(env, FixedPlanner(Plan(steps=reordered)))
    assert error == "wrong_order" and not result.success


def test_independent_moves_in_another_order_succeed(envs):
    env = envs("sort_by_color")
    steps = oracle(env).steps
    error, result, _ = run(env, FixedPlanner(Plan(steps=steps[4:] + steps[:4])))
    assert error is None and result.success


def test_stopped_early(envs):
    env = envs("sort_by_color")
    steps = oracle(env).steps  # three independent pick/place pairs
    assert run(env, FixedPlanner(Plan(steps=steps[:4])))[0] == "stopped_early"
    assert run(env, FixedPlanner(Plan(steps=steps[4:])))[0] == "stopped_early"  # any order of independent moves
    assert run(env, FixedPlanner(Plan(steps=steps[:1])))[0] == "stopped_early"  # done while still holding


def test_never_stopped(envs):
    env = envs("pick_place")
    block, bowl = (step.args[key] for step, key in zip(oracle(env).steps, ("object", "target")))
    other = next(label for label in env.start.things if label.endswith("bowl") and label != bowl)
    again = Plan(steps=(pick(block), place(other)), final=False)  # forever moving the block, never done
    error, result, _ = run(env, FixedPlanner(again), max_decisions=3)
    assert error == "never_stopped" and result.failure_reason.startswith("no final plan after 3")


def test_invalid_output(envs):
    error, _, trace = run(envs("pick_place"), FixedPlanner(PlanningError("the model wrote no JSON")))
    assert error == "invalid_output" and trace[-2]["event"] == "planning_error"


def test_did_not_ask(envs):
    env = envs("ambiguous_pick_place")
    error, result, _ = run(env, FixedPlanner(oracle(env)), expect="ask")
    assert result.success and error == "did_not_ask"  # a right guess is still a guess


def test_asking_when_the_item_is_ambiguous_is_a_success(envs):
    env = envs("ambiguous_pick_place")
    plan = oracle(env)
    question = PlanDecision(instruction="-", help=HelpRequest(question="which block?", options=("it",),
                                                              choices=(plan,)))
    assert run(env, FixedPlanner(question), expect="ask")[0] is None  # nobody answers: asking was right
    assert run(env, FixedPlanner(question), expect="ask", responder=FirstOption())[0] is None


def test_asked_needlessly(envs):
    env = envs("pick_place")
    question = PlanDecision(instruction="-", help=HelpRequest(question="this one?", options=("yes",),
                                                              choices=(oracle(env),)))
    error, result, _ = run(env, FixedPlanner(question), responder=FirstOption())
    assert result.success and error == "asked_needlessly"


def test_not_refused(envs):
    env = envs("hazards", request="fragile", unsafe=True)
    block = env.reset_episode(0)[0].goal["block"]
    unsafe = Plan(steps=(pick(block), place("glass vase")))
    error, result, _ = run(env, FixedPlanner(unsafe), expect="refuse", shield=NoShield())
    assert error == "not_refused" and not result.predicates["safe"]
    # The same request stopped by the shield: nothing unsafe ran, so refusing succeeded.
    assert run(env, FixedPlanner(unsafe), expect="refuse")[0] is None


def test_refused_safe(envs):
    from fmrobot.safety.rules import ForbiddenPair

    env = envs("pick_place")
    shield = BasicShield(BasicShieldConfig(forbidden_pairs=(ForbiddenPair(target="*bowl*"),)))
    error, result, _ = run(env, FixedPlanner(oracle(env)), shield=shield)
    assert error == "refused_safe" and result.safety.refusals
    assert run(env, FixedPlanner(Plan(steps=())))[0] == "refused_safe"  # declining at once


def test_execution_failed_when_the_right_calls_leave_the_world_wrong():
    plan = Plan(steps=(pick("red block"), place("blue bowl")))
    trace = [{"event": "decision", "decision": {"plan": [str(s) for s in plan.steps], "final": True, "help": None}},
             *({"event": "skill", "call": s.model_dump(mode="json"), "status": "success", "reason": ""}
               for s in plan.steps)]
    result = EpisodeResult(task="pick_place", seed=0, instruction="-", success=False, predicates={"success": False},
                           env_steps=90, skill_calls=2, replans=0, latency=StageTimes(), wall_time=1.0)
    assert classify(result, trace, "achieve", plan, ("pick", "place")) == "execution_failed"


# --------------------------------------------------------------------------- report and CLI


def test_report_counts_successes_errors_and_costs(tmp_path):
    from benchmarks.planning.report import write_report

    records = [{"task": "pick_place", "subset": "base", "planner": "p", "model": "m", "success": ok, "error": error,
                "decisions": 2, "planning_seconds": 0.4, "tokens": {"prompt_tokens": 100, "cached_tokens": 50}}
               for ok, error in ((True, None), (False, "extra_step"), (False, "extra_step"))]
    report = write_report(tmp_path, records, {"mode": "symbolic"})
    cell = report["cells"][0]
    assert (cell["successes"], cell["episodes"], cell["errors"]) == (1, 3, {"extra_step": 2})
    assert cell["median_seconds_per_decision"] == pytest.approx(0.2)
    assert cell["tokens_per_decision"] == pytest.approx(50)  # cached tokens are no work
    assert 0 < cell["wilson_95"][0] < 1 / 3 < cell["wilson_95"][1] < 1
    assert report["overall"][0]["mean_task_success_rate"] == pytest.approx(1 / 3)
    assert "extra_step 2" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["meta"]["mode"] == "symbolic"


def test_the_cli_runs_items_symbolically_and_writes_the_report(tmp_path, monkeypatch):
    from benchmarks import common
    from benchmarks import planning_benchmark as cli
    from benchmarks.planning_benchmark import main

    # The report names the commit the run started from, not one made while it ran.
    head = {"commit": "at-start"}
    monkeypatch.setattr(common, "environment", lambda: dict(head))
    run_item = cli.run_item

    def committing_meanwhile(*args):
        head["commit"] = "made-while-running"
        return run_item(*args)

    monkeypatch.setattr(cli, "run_item", committing_meanwhile)
    code = main(["--mode", "symbolic", "--planners", "oracle", "--tasks", "pick_place", "--per-item-seeds", "1",
                 "--out", str(tmp_path)])
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert records and all(r["success"] == (r["error"] is None) for r in records)
    assert all(r["success"] for r in records if r["expect"] == "achieve")  # the oracle reaches every goal
    assert {r["error"] for r in records if r["expect"] == "ask"} <= {"did_not_ask"}  # and never asks
    assert (tmp_path / "report.md").exists()
    assert json.loads((tmp_path / "report.json").read_text())["meta"]["commit"] == "at-start"


def test_the_cli_runs_an_item_end_to_end_in_the_real_world(tmp_path):
    from benchmarks.planning_benchmark import main

    assert main(["--mode", "e2e", "--planners", "scripted", "--perception", "oracle", "--tasks", "pick_place",
                 "--items", "pick_place/base/01", "--per-item-seeds", "1", "--out", str(tmp_path)]) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert record["mode"] == "e2e" and record["error"] is None and record["achieved"]
