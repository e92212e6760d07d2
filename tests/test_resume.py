"""Resuming `python -m fmrobot.run`: a run directory is continued, never overwritten, and a killed run
ends with every seed recorded once, as an uninterrupted run would have recorded it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmrobot.errors import ConfigError
from fmrobot.outputs import summarize, summary_line
from fmrobot.resume import (
    RecordedRun,
    check_resumable,
    config_difference,
    earlier_crashes,
    fresh_dir,
    split_recorded,
    with_earlier_crashes,
)
from fmrobot.run import EXIT_CRASHED, EXIT_PLANNING_FAILED, exit_status
from fmrobot.stack import RunSettings
from fmrobot.types import (
    CrashedAttempt,
    EpisodeFailure,
    EpisodeResult,
    FailureStage,
    StageTimes,
)
from tests.fakes import run_command

FAST = ("task=pick_place", "perception=oracle", "planner=oracle", "video=none", "env.renderer=tiny")
#: What an episode's record says about the episode itself (not how long it took or where its files are).
COMPARED = ("task", "seed", "instruction", "success", "predicates", "env_steps", "skill_calls", "replans",
            "failure_reason", "goal", "crashed")


def result(seed: int, success: bool = True, reason: str | None = None, crashed: bool = False,
           attempts: tuple[CrashedAttempt, ...] = ()) -> EpisodeResult:
    return EpisodeResult(task="pick_place", seed=seed, instruction="x", success=success,
                         predicates={"success": success}, env_steps=1, skill_calls=1, replans=0,
                         failure_reason=reason, latency=StageTimes(), wall_time=0.1, crashed=crashed,
                         attempts=attempts)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmrobot.run", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))


def episodes(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())["episodes"]


# ---------------------------------------------------------------------------- pieces


def test_config_difference_names_the_first_setting_that_differs():
    recorded = {"seed": 0, "task": {"name": "pick_place", "max_steps": 10}, "executor": {"workers": 1}}
    assert config_difference(recorded, {**recorded, "executor": {"workers": 2}, "resume": True,
                                        "video": {"episodes": "all"}}) is None
    assert config_difference(recorded, {**recorded, "task": {"name": "pick_place", "max_steps": 11}}) == \
        "task.max_steps is 10 in the recorded run, 11 now"
    assert "planner is set now" in config_difference(recorded, {**recorded, "planner": {"name": "oracle"}})


def test_a_crashed_seed_is_run_again_and_keeps_its_earlier_attempts():
    crash = CrashedAttempt(attempt=1, reason="crashed: worker died")
    recorded = RecordedRun(config={}, results=(result(0), result(1, False, "crashed: again", True, (crash,)),
                                               result(2, False, "task not achieved: x"), result(9)))
    kept, pending = split_recorded(recorded, [0, 1, 2, 3])
    assert [r.seed for r in kept] == [0, 2] and pending == [1, 3]  # seed 9 is outside this run's seeds
    earlier = earlier_crashes(recorded)
    assert [a.reason for a in earlier[1]] == ["crashed: worker died", "crashed: again"]
    redone = with_earlier_crashes(result(1, attempts=(CrashedAttempt(attempt=1, reason="crashed: third"),)), earlier[1])
    assert [(a.attempt, a.reason) for a in redone.attempts] == [
        (1, "crashed: worker died"), (2, "crashed: again"), (3, "crashed: third")]


def test_fresh_dir_never_names_a_directory_that_holds_a_run(tmp_path):
    run_dir = tmp_path / "run"
    assert fresh_dir(run_dir) == run_dir
    for name in ("run", "run-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text("{}")
    assert fresh_dir(run_dir) == tmp_path / "run-3"


def test_an_unreadable_results_file_is_one_line_that_says_what_to_do(tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read to resume its run .*choose another hydra.run.dir"):
        check_resumable(tmp_path, {})


def test_summary_lists_failure_reasons_most_frequent_first_and_counts_crashes_apart(tmp_path):
    results = [result(0), result(1, False, "task not achieved: block_in_bowl"),
               result(2, False, "crashed: RayWorkerDied: gone", crashed=True),
               result(3, False, "task not achieved: block_in_bowl")]
    summary = summarize(results)
    assert summary["crashed"] == 1
    assert [(r["reason"], r["count"], r["seeds"]) for r in summary["failure_reasons"]] == [
        ("task not achieved: block_in_bowl", 2, [1, 3]), ("crashed: RayWorkerDied: gone", 1, [2])]
    text = summary_line("pick_place", summary, tmp_path / "results.json")
    lines = text.splitlines()
    assert lines[0].startswith("pick_place: 1/4 episodes succeeded (25.0%); 1 crashed; results in ")
    assert lines[2].split() == ["2:", "task", "not", "achieved:", "block_in_bowl", "[seeds", "1,", "3]"]
    assert "crashed: RayWorkerDied: gone [seed 2]" in lines[3]


def test_exit_status_fails_runs_with_crashes_unless_allowed_and_runs_lost_to_planning():
    settings = RunSettings()
    crashed = summarize([result(0), result(1, False, "crashed: x", crashed=True)])
    assert exit_status(crashed, settings)[0] == EXIT_CRASHED
    assert exit_status(crashed, RunSettings(allow_crashes=True))[0] == 0
    planning = summarize([result(0, False, "planning: the language model server is unreachable")] * 2)
    assert exit_status(planning, settings)[0] == EXIT_PLANNING_FAILED
    # One episode that got past planning means the stack works: its failures are results, not errors.
    mixed = summarize([result(0, False, "planning: x"), result(1, False, "task not achieved: y")])
    assert exit_status(mixed, settings) == (0, None)
    # The typed stage decides when there is one: an invalid plan is a planning failure whatever its words.
    typed = [result(s, False, "the plan names no object in the scene").model_copy(
        update={"failure": EpisodeFailure(stage=FailureStage.PLANNING, kind="invalid_plan")}) for s in (0, 1)]
    assert exit_status(summarize(typed), settings)[0] == EXIT_PLANNING_FAILED
    control = [r.model_copy(update={"failure": EpisodeFailure(stage=FailureStage.CONTROL, kind="skill_failed")})
               for r in typed]
    assert exit_status(summarize(control), settings) == (0, None)


# ---------------------------------------------------------------------------- the command line


@pytest.mark.slow
def test_a_different_config_is_refused_before_anything_in_the_directory_changes(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(*FAST, "episodes=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    refused = run_cli(*FAST, "episodes=2", "runner.max_replans=5", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("fmrobot: error:")]
    assert len(errors) == 1 and "runner.max_replans is 2 in the recorded run, 5 now" in errors[0]
    assert "resume=false" in errors[0]
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # .hydra/ copies included


@pytest.mark.slow
def test_resume_false_starts_over_beside_the_recorded_run(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli(*FAST, "episodes=1", f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    recorded = (run_dir / "results.json").read_bytes()
    again = run_cli(*FAST, "episodes=1", "resume=false", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run_dir / "results.json").read_bytes() == recorded
    assert episodes(tmp_path / "run-2")[0]["seed"] == 0
    assert "this one goes to" in again.stderr and "run-2/results.json" in again.stdout


def test_a_recorded_crash_is_redone_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    assert run_command(*FAST, "episodes=2", f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    document = json.loads((run_dir / "results.json").read_text())
    original = document["episodes"][1]
    # As the executors record an episode whose worker died.
    document["episodes"][1] = {**original, "success": False, "crashed": True, "env_steps": 0,
                               "failure_reason": "crashed: BrokenProcessPool: a worker died"}
    (run_dir / "results.json").write_text(json.dumps(document))
    resumed = run_command(*FAST, "episodes=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "1 of 2 episodes recorded, running 1 (1 crashed before)" in resumed.stderr
    redone = episodes(run_dir)[1]
    assert {k: redone[k] for k in COMPARED} == {k: original[k] for k in COMPARED}
    assert redone["attempts"] == [{"attempt": 1, "reason": "crashed: BrokenProcessPool: a worker died"}]


def test_the_terminal_says_why_episodes_failed_and_the_exit_status_says_planning_failed(tmp_path):
    done = run_command("task=sort_by_color", "planner=scripted", "perception=oracle", "video=none", "env.renderer=tiny",
                   "episodes=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == EXIT_PLANNING_FAILED
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("sort_by_color: 0/2 episodes succeeded")
    assert lines[2].strip().startswith("2: planning: ") and "needs a planner that reads the scene" in lines[2]
    assert "every episode failed in planning" in done.stderr


@pytest.mark.slow
def test_a_run_killed_five_times_ends_with_each_seed_once_and_the_results_of_an_uninterrupted_run(tmp_path):
    count = 20
    args = (*FAST, f"episodes={count}")
    reference = run_cli(*args, f"hydra.run.dir={tmp_path / 'reference'}", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-2000:]
    run_dir = tmp_path / "killed"
    chooser = random.Random(15)
    kills = 0
    while kills < 5:
        recorded = len(episodes(run_dir)) if (run_dir / "results.json").exists() else 0
        assert recorded < count, f"the run finished after {kills} kills; the test needs 5"
        # Kill once a random number of further episodes is recorded, a random fraction of an episode later.
        target, delay = recorded + chooser.randint(0, 3), chooser.uniform(0.0, 0.4)
        process = subprocess.Popen([sys.executable, "-m", "fmrobot.run", *args, f"hydra.run.dir={run_dir}"],
                                   cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if (run_dir / "results.json").exists() and len(episodes(run_dir)) >= target:
                break
            time.sleep(0.02)
        time.sleep(delay)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
    finished = run_cli(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-2000:]
    got, expected = episodes(run_dir), episodes(tmp_path / "reference")
    assert [e["seed"] for e in got] == list(range(count))
    assert [{k: e[k] for k in COMPARED} for e in got] == [{k: e[k] for k in COMPARED} for e in expected]
    traces = sorted(p.name for p in (run_dir / "traces").iterdir())
    assert traces == [f"seed_{s:06d}.jsonl" for s in range(count)]
