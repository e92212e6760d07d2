"""Executors survive dying workers: a dead worker costs one attempt at the episode it was running,
that episode runs again (up to executor.max_retries times) and the rest of the run goes on."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import psutil
import pytest
from pydantic import BaseModel, ConfigDict

from fmrobot import registry
from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.errors import ConfigError
from fmrobot.execution import RunJob
from fmrobot.execution.local import LocalExecutor, LocalExecutorConfig
from fmrobot.planning.oracle import OraclePlanner
from tests.fakes import compose_config

# The oracle stack solves pick_place every time, so any failure below is the executor's.
ORACLE_STACK = ["task=pick_place", "perception=oracle", "planner=oracle", "policy=scripted", "video=none",
                "env.renderer=tiny"]
KILLED = "crashed: WorkerDied: the worker process running this episode died (pid {pid}, killed by SIGKILL)"


class Recorder:
    """on_result: keeps each record, fails on a seed delivered twice, and SIGKILLs a busy worker when the
    k-th record arrives for each k in `kill_after`. The victim is the episode handed out last: it has only
    just started, so the kill lands mid-episode rather than after a result already on its way."""

    def __init__(self, executor, kill_after=()):
        self.executor = executor
        self.kill_after = set(kill_after)
        self.results = {}
        self.killed: dict[int, int] = {}  # seed -> pid of the worker killed while running it

    def __call__(self, result):
        assert result.seed not in self.results, f"seed {result.seed} delivered twice"
        self.results[result.seed] = result
        if len(self.results) in self.kill_after:
            busy = [(pid, seed) for pid, seed in self.executor.running_episodes() if seed not in self.killed]
            assert busy, "no busy worker to kill"
            pid, seed = busy[-1]
            os.kill(pid, signal.SIGKILL)
            self.killed[seed] = pid


def run(executor, config: dict, run_dir: Path, seeds, kill_after=()) -> Recorder:
    recorder = Recorder(executor, kill_after)
    executor.run(RunJob(config=config, run_dir=str(run_dir), seeds=tuple(seeds)), recorder)
    return recorder


def spawned_workers() -> set[int]:
    """Live worker processes this test process spawned (not Ray's, nor multiprocessing's resource tracker)."""
    workers = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                workers.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return workers


def assert_three_kills_cost_nothing(recorder: Recorder, died: str) -> None:
    results = recorder.results
    assert sorted(results) == list(range(20))  # each seed exactly once (Recorder checks for repeats)
    assert len(recorder.killed) == 3
    retried = {seed: r for seed, r in results.items() if r.attempts}
    assert sorted(retried) == sorted(recorder.killed)  # exactly the killed episodes were run again
    for seed, result in retried.items():
        [attempt] = result.attempts
        assert attempt.attempt == 1 and attempt.reason.startswith(died.format(pid=recorder.killed[seed])), attempt
    failed = {seed: r.failure_reason for seed, r in results.items() if not r.success or r.crashed}
    assert not failed


@pytest.mark.slow
def test_local_workers_survive_three_kills_at_random_points(tmp_path):
    before = spawned_workers()
    kill_after = sorted(random.Random(15).sample(range(1, 16), 3))  # fixed seed: the same points every run
    executor = LocalExecutor(LocalExecutorConfig(workers=2, max_retries=1))
    recorder = run(executor, compose_config(ORACLE_STACK), tmp_path / "run", range(20), kill_after)
    assert_three_kills_cost_nothing(recorder, KILLED)
    assert spawned_workers() <= before  # the replacements, too, are gone


@pytest.mark.slow
def test_ray_actors_survive_three_kills_at_random_points(ray_instance, tmp_path):
    from fmrobot.execution.ray import RayExecutor, RayExecutorConfig

    kill_after = sorted(random.Random(15).sample(range(1, 16), 3))
    executor = RayExecutor(RayExecutorConfig(workers=2, max_retries=1))
    recorder = run(executor, compose_config(ORACLE_STACK), tmp_path / "run", range(20), kill_after)
    assert_three_kills_cost_nothing(recorder, "crashed: RayWorkerDied: the Ray worker running this episode died")


@pytest.mark.slow
def test_without_retries_a_killed_episode_is_recorded_as_crashed_once(tmp_path):
    executor = LocalExecutor(LocalExecutorConfig(workers=2, max_retries=0))
    recorder = run(executor, compose_config(ORACLE_STACK), tmp_path / "run", range(6), kill_after=[2])
    [(seed, pid)] = recorder.killed.items()
    assert sorted(recorder.results) == list(range(6))
    crashed = recorder.results[seed]
    assert crashed.crashed and not crashed.success and crashed.attempts == ()
    assert crashed.failure_reason == KILLED.format(pid=pid)
    # The rest of the run went on, on the surviving worker and a replacement.
    assert all(r.success and not r.crashed for s, r in recorder.results.items() if s != seed)


class RaisingPolicy(ScriptedPolicy):
    """The scripted policy, except that its first `raises` episodes across all processes raise a bug."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        marker_dir: str  # one file per raise, created by the call that raises
        raises: int = 1

    def __init__(self, config: Config):
        super().__init__()
        self.raising = config

    def reset(self, call, scene, obs):
        for number in range(self.raising.raises):
            try:
                os.close(os.open(Path(self.raising.marker_dir) / str(number), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            raise RuntimeError(f"policy bug {number + 1}")
        super().reset(call, scene, obs)


def raising_config(tmp_path: Path, raises: int) -> dict:
    config = compose_config(ORACLE_STACK)
    config["policy"] = {"_target_": f"{__name__}.RaisingPolicy", "marker_dir": str(tmp_path), "raises": raises}
    return config


# Fast tier: the retry in process; the worker-process path is test_a_config_error_in_a_worker_stops_the_run's.
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_an_episode_that_raises_is_run_again_and_its_attempt_recorded(tmp_path, workers):
    executor = LocalExecutor(LocalExecutorConfig(workers=workers, max_retries=1))
    results = run(executor, raising_config(tmp_path, raises=1), tmp_path / "run", seeds=(0, 1)).results
    # With one worker seed 0 raises; with two, whichever episode reached the policy first.
    [(seed, retried)] = [(s, r) for s, r in results.items() if r.attempts]
    assert [(a.attempt, a.reason) for a in retried.attempts] == [(1, "crashed: RuntimeError: policy bug 1")]
    assert workers == 2 or seed == 0
    assert all(r.success and not r.crashed for r in results.values())


def test_an_episode_that_keeps_raising_is_crashed_with_every_earlier_attempt(tmp_path):
    executor = LocalExecutor(LocalExecutorConfig(max_retries=2))
    results = run(executor, raising_config(tmp_path, raises=3), tmp_path / "run", seeds=(0, 1)).results
    assert results[0].crashed and results[0].failure_reason == "crashed: RuntimeError: policy bug 3"
    assert [(a.attempt, a.reason) for a in results[0].attempts] == [
        (1, "crashed: RuntimeError: policy bug 1"), (2, "crashed: RuntimeError: policy bug 2")]
    assert results[1].success and results[1].attempts == ()


class ConfigErrorPlanner(OraclePlanner):
    """Finds its config unusable only once an episode runs (some checks need the scene)."""

    def plan(self, instruction, scene, context):
        raise ConfigError("planner: no_such_setting is not a setting of this planner")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("where", ["building the stack", "running an episode"])
def test_a_config_error_in_a_worker_stops_the_run_with_its_message(tmp_path, workers, where):
    before = spawned_workers()
    config = compose_config(ORACLE_STACK)
    if where == "building the stack":
        config["policy"] = {"_target_": "fmrobot.control.scripted.ScriptedPolicy", "no_such_setting": 1}
    else:
        config["planner"] = {"_target_": f"{__name__}.ConfigErrorPlanner"}
    recorder = Recorder(None)
    with pytest.raises(ConfigError, match="no_such_setting"):
        LocalExecutor(LocalExecutorConfig(workers=workers)).run(
            RunJob(config=config, run_dir=str(tmp_path), seeds=(0, 1, 2)), recorder)
    assert recorder.results == {}
    assert spawned_workers() <= before  # no worker left running


@pytest.mark.parametrize("name", ["local", "ray"])
@pytest.mark.parametrize("value", [-1, 11, "often"])
def test_max_retries_out_of_range_is_one_clear_error(name, value):
    with pytest.raises(ConfigError, match=r"max_retries"):
        registry.resolve("executor", {"name": name, "max_retries": value})
