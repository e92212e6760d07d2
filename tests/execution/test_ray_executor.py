"""The Ray executor against a real local Ray instance (started once for the module).

Ray is a test dependency: if it is missing these tests fail at import, they do not skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from pydantic import BaseModel, ConfigDict

from fmrobot import registry
from fmrobot.errors import ConfigError
from fmrobot.execution import RunJob
from fmrobot.execution.local import LocalExecutor
from fmrobot.execution.ray import RayExecutor, RayExecutorConfig
from fmrobot.planning.oracle import OraclePlanner
from tests.fakes import compose_config

# The tiny renderer in both: the local run renders in this process, where an earlier test's world may
# hold the one EGL context PyBullet allows, and perception read from another renderer differs slightly.
ORACLE_STACK = ["task=pick_place", "perception=oracle", "planner=oracle", "policy=scripted", "video=none",
                "env.renderer=tiny"]
SEEDS = (0, 1, 2, 3)


class ExitOncePlanner(OraclePlanner):
    """The oracle planner, except that the first plan() across all processes ends its process at once,
    as a segfault or the OOM killer would: no exception, no result."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        marker: str  # created by the one call that exits

    def __init__(self, config: Config):
        self.marker = config.marker

    def plan(self, instruction, scene, context):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return super().plan(instruction, scene, context)
        os._exit(3)


def run_executor(executor, config: dict, run_dir: Path, seeds: tuple[int, ...] = SEEDS) -> dict:
    results = {}

    def record(result):
        assert result.seed not in results, f"seed {result.seed} reported twice"
        results[result.seed] = result

    executor.run(RunJob(config=config, run_dir=str(run_dir), seeds=seeds), record)
    return results


def outcome(result) -> tuple:
    return (result.success, dict(result.predicates), result.env_steps, result.skill_calls, result.failure_reason)


@pytest.mark.slow
def test_ray_gives_the_same_per_seed_results_and_traces_as_local(ray_instance, tmp_path):
    config = compose_config(ORACLE_STACK)
    local = run_executor(LocalExecutor(), config, tmp_path / "local")
    remote = run_executor(RayExecutor(RayExecutorConfig(workers=2)), config, tmp_path / "ray")
    assert sorted(remote) == list(SEEDS)
    assert {s: outcome(r) for s, r in remote.items()} == {s: outcome(r) for s, r in local.items()}
    assert all(r.success for r in remote.values())  # the oracle stack solves pick_place: a real comparison
    for seed, result in remote.items():  # the actors wrote their traces into the run directory
        assert result.trace_file is not None
        ray_trace = (tmp_path / "ray" / result.trace_file).read_text()
        assert ray_trace and ray_trace == (tmp_path / "local" / local[seed].trace_file).read_text()
    assert ray.is_initialized()  # not the executor's instance: it must not shut it down


@pytest.mark.slow
@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_worker_that_dies_costs_its_episode_only(ray_instance, tmp_path, max_retries):
    config = compose_config(ORACLE_STACK)
    config["planner"] = {"_target_": f"{__name__}.ExitOncePlanner", "marker": str(tmp_path / "exited")}
    # One actor, so the first episode (seed 0) kills it and a replacement must run the rest.
    executor = RayExecutor(RayExecutorConfig(workers=1, max_retries=max_retries))
    results = run_executor(executor, config, tmp_path / "run", seeds=(0, 1, 2))
    assert sorted(results) == [0, 1, 2]
    assert (tmp_path / "exited").exists()
    died = "crashed: RayWorkerDied: the Ray worker running this episode died"
    if max_retries == 0:  # recorded as crashed, once
        crashed = results[0]
        assert crashed.crashed and not crashed.success and crashed.env_steps == 0 and crashed.attempts == ()
        assert crashed.failure_reason.startswith(died)
    else:  # run again on the replacement, which succeeds; the lost attempt is kept
        assert results[0].success and not results[0].crashed, results[0].failure_reason
        [attempt] = results[0].attempts
        assert attempt.attempt == 1 and attempt.reason.startswith(died)
    assert results[1].success and results[2].success, (results[1].failure_reason, results[2].failure_reason)
    assert results[1].attempts == results[2].attempts == ()


@pytest.mark.slow
def test_a_config_error_inside_a_worker_stops_the_run_with_its_message(ray_instance, tmp_path):
    config = compose_config(ORACLE_STACK)
    config["policy"] = {"_target_": "fmrobot.control.scripted.ScriptedPolicy", "no_such_option": 1}
    with pytest.raises(ConfigError, match="no_such_option"):
        run_executor(RayExecutor(RayExecutorConfig(workers=1)), config, tmp_path / "run", seeds=(0,))


def test_a_malformed_address_is_rejected_before_ray_starts():
    with pytest.raises(ConfigError, match=r"address: .*expected null .*'ray://host:port'.*got 'localhost'"):
        registry.resolve("executor", {"name": "ray", "address": "localhost"})


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmrobot.run", *ORACLE_STACK, "executor=ray", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def test_an_unreachable_cluster_is_one_clear_error(tmp_path):
    done = run_cli("executor.address=ray://127.0.0.1:1", f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("fmrobot: error:")]
    assert len(errors) == 1 and "cannot reach the Ray cluster at 'ray://127.0.0.1:1'" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_cli_starts_its_own_ray_and_writes_results_a_trace_and_a_video(tmp_path):
    run_dir = tmp_path / "out"
    done = run_cli("seed=7", "video=first", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("pick_place: 1/1 episodes succeeded")
    [episode] = json.loads((run_dir / "results.json").read_text())["episodes"]
    assert episode["seed"] == 7 and episode["trace_file"] == "traces/seed_000007.jsonl"
    assert (run_dir / "traces" / "seed_000007.jsonl").read_text().count("\n") >= 5
    assert [p.name for p in (run_dir / "videos").iterdir()] == ["seed_000007.mp4"]
    assert (run_dir / "videos" / "seed_000007.mp4").stat().st_size > 1000
