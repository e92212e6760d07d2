"""run_one: a crashed episode still leaves its record and the trace up to the crash."""

from __future__ import annotations

import json

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.execution import RunJob, crashed_result, run_one
from fmrobot.execution.local import WorkerDied
from fmrobot.execution.ray import RayWorkerDied
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.planning.oracle import OraclePlanner
from fmrobot.runner import Runner
from fmrobot.safety.basic import BasicShield
from fmrobot.trace import CrashEvent, ResetEvent, read_trace
from fmrobot.types import EpisodeFailure, FailureStage
from tests.fakes import BrokenPolicy


def test_a_crash_writes_a_record_and_the_trace_so_far(pick_place_env, tmp_path):
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=OraclePlanner(),
                    policy=BrokenPolicy(), shield=BasicShield())
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(4,))
    result = run_one(runner, job, 4)
    assert result.failure_reason == "crashed: RuntimeError: policy bug" and not result.success
    assert result.trace_file == "traces/seed_000004.jsonl"
    events = [json.loads(line) for line in (tmp_path / result.trace_file).read_text().splitlines()]
    assert [e["event"] for e in events[:2]] == ["reset", "perception"] and events[0]["seed"] == 4
    assert events[-1] == {"event": "crash", "error": "RuntimeError: policy bug"}
    assert result.failure == EpisodeFailure(stage=FailureStage.CRASH, kind="exception")
    typed = read_trace(tmp_path / result.trace_file)
    assert isinstance(typed[0], ResetEvent) and typed[-1] == CrashEvent(error="RuntimeError: policy bug")


def test_the_next_episode_after_a_crash_starts_its_own_trace(pick_place_env, tmp_path):
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=OraclePlanner(),
                    policy=BrokenPolicy(), shield=BasicShield())
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(4, 6))
    run_one(runner, job, 4)
    runner.policy = ScriptedPolicy()
    result = run_one(runner, job, 6)
    assert result.success and result.failure is None
    events = read_trace(tmp_path / result.trace_file)
    assert [e.seed for e in events if isinstance(e, ResetEvent)] == [6] and not any(
        isinstance(e, CrashEvent) for e in events)


def test_a_dead_worker_is_a_crash_of_its_own_kind():
    for error, kind in [(WorkerDied("killed"), "worker_died"), (RayWorkerDied("gone"), "worker_died"),
                        (KeyError("side"), "exception")]:
        result = crashed_result("pick_place", 1, error)
        assert result.crashed and result.failure == EpisodeFailure(stage=FailureStage.CRASH, kind=kind)
        assert result.failure_reason == f"crashed: {type(error).__name__}: {error}"


def test_a_finished_episode_writes_its_whole_trace(pick_place_env, tmp_path):
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=OraclePlanner(),
                    policy=ScriptedPolicy(), shield=BasicShield())
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(5,))
    result = run_one(runner, job, 5)
    events = [json.loads(line) for line in (tmp_path / result.trace_file).read_text().splitlines()]
    assert events[0]["seed"] == 5 and events[-1]["event"] == "result"
