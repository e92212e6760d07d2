"""Acceptance: a suite killed with SIGKILL mid-run and started again records every episode exactly once.

Real processes, real episodes: `python -m benchmarks.suite --suite smoke` (pick_place with
the oracle stack, about a second per episode) is killed, whole process group, workers and
all, as soon as its ledger holds two episodes, then run again to completion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = 6
CELL = "pick_place__oracle__none"


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.suite", "--suite", "smoke", "--seeds", str(SEEDS),
            "--out", str(out), "--quiet", *extra]


def environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1")


def ledger_lines(out: Path) -> list[str]:
    path = out / "episodes.jsonl"
    return path.read_text().splitlines(keepends=True) if path.exists() else []


def kill_mid_run(out: Path, *extra: str) -> int:
    """Start the suite in its own process group; SIGKILL the group once two episodes are recorded."""
    log = out.with_name(out.name + "_stderr.txt")  # a file, not a pipe: a full pipe would stall the run
    with log.open("w") as stderr:
        process = subprocess.Popen(command(out, *extra), cwd=ROOT, env=environment(), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    try:
        while sum(line.endswith("\n") for line in ledger_lines(out)) < 2:
            assert process.poll() is None, f"the suite stopped before it was killed: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "no two episodes recorded within 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the harness and any worker processes it spawned
        process.wait(timeout=30)
    _wait_for_group_to_die(process.pid)
    recorded = len(ledger_lines(out))
    assert recorded < SEEDS, "the run finished before it could be killed; the test proves nothing"
    return recorded


def _wait_for_group_to_die(group: int) -> None:
    for _ in range(200):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {group} outlived SIGKILL")


def finish(out: Path, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command(out, *extra), cwd=ROOT, env=environment(), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def per_seed(out: Path) -> dict[int, tuple]:
    records = [json.loads(line) for line in ledger_lines(out)]
    return {r["seed"]: (r["result"]["success"], r["result"]["env_steps"], r["result"]["failure_reason"])
            for r in records}


def check_exactly_once(out: Path) -> None:
    records = [json.loads(line) for line in ledger_lines(out)]
    keys = [(r["cell"], r["seed"]) for r in records]
    assert sorted(keys) == [(CELL, seed) for seed in range(SEEDS)]  # each (cell, seed) once, none missing
    report = json.loads((out / "results.json").read_text())
    assert sorted((e["cell"], e["seed"]) for e in report["episodes"]) == sorted(keys)
    assert report["complete"] and report["cells"][0]["episodes"] == SEEDS
    for r in records:
        result = r["result"]
        assert isinstance(result["success"], bool) and result["seed"] == r["seed"]
        assert (result["failure_reason"] is None) == result["success"]
        assert result["env_steps"] > 0 and result["wall_time"] > 0
    assert sum(r["result"]["success"] for r in records) >= SEEDS - 1  # the oracle stack rarely fails pick_place
    assert report["cells"][0]["successes"] == sum(r["result"]["success"] for r in records)


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory) -> dict[str, Path]:
    outs = {}
    for name, extra in (("in_process", ()), ("workers", ("--workers", "2"))):
        out = tmp_path_factory.mktemp(name)
        kill_mid_run(out, *extra)
        if name == "in_process":
            with (out / "episodes.jsonl").open("a") as ledger:
                ledger.write('{"cell": "pick_place__oracle__none", "seed": 5, "resu')  # as if killed mid-write
        finish(out, *extra)
        outs[name] = out
    return outs


@pytest.mark.slow
def test_a_run_killed_with_sigkill_and_restarted_records_every_episode_exactly_once(interrupted_runs):
    out = interrupted_runs["in_process"]
    check_exactly_once(out)
    starts = json.loads((out / "suite.json").read_text())["starts"]
    assert len(starts) == 2  # the killed start and the one that finished
    sessions = {json.loads(line)["session"] for line in ledger_lines(out)}
    assert sessions == {0, 1}  # episodes from both starts, none run twice


@pytest.mark.slow
def test_worker_processes_are_killed_with_the_run_and_leave_no_duplicates(interrupted_runs):
    check_exactly_once(interrupted_runs["workers"])
    assert json.loads((interrupted_runs["workers"] / "suite.json").read_text())["starts"][-1]["executor"] == {
        "name": "local", "workers": 2, "max_retries": 1}


@pytest.mark.slow
def test_resumed_runs_give_the_same_per_seed_results_in_process_and_over_workers(interrupted_runs):
    assert per_seed(interrupted_runs["in_process"]) == per_seed(interrupted_runs["workers"])


@pytest.mark.slow
def test_a_different_suite_definition_is_refused_and_the_report_rebuilds_alone(interrupted_runs):
    out = interrupted_runs["in_process"]
    before = ledger_lines(out)
    refused = subprocess.run([*command(out)[:-1], "--tasks", "sort_by_color"], cwd=ROOT, env=environment(),
                             capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "holds results of a different suite definition" in refused.stderr and "--fresh" in refused.stderr
    assert ledger_lines(out) == before
    (out / "results.json").unlink()
    rebuilt = subprocess.run([sys.executable, "-m", "benchmarks.suite", "--suite", "smoke", "--out",
                              str(out), "--report-only"], cwd=ROOT, env=environment(), capture_output=True,
                             text=True, check=False, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    check_exactly_once(out)
    assert f"{SEEDS} episodes recorded (complete)" in rebuilt.stdout


@pytest.mark.slow
def test_a_crashed_episode_leaves_the_run_incomplete_until_a_restart_redoes_it(tmp_path):
    out = tmp_path / "suite"
    finish(out)
    lines = ledger_lines(out)
    original = json.loads(lines[2])
    # What the executors record for an episode whose worker died before it could retry.
    crashed = {**original, "result": {**original["result"], "success": False, "crashed": True, "env_steps": 0,
                                      "failure_reason": "crashed: RayWorkerDied: the worker died"}}
    (out / "episodes.jsonl").write_text("".join(lines[:2] + [json.dumps(crashed) + "\n"] + lines[3:]))
    report = subprocess.run([*command(out), "--report-only"], cwd=ROOT, env=environment(), capture_output=True,
                            text=True, check=False, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert f"{SEEDS} episodes recorded (INCOMPLETE: 1 crashed, rerun the same command" in report.stdout
    assert json.loads((out / "results.json").read_text())["cells"][0]["crashed_seeds"] == [original["seed"]]
    finish(out)
    records = [json.loads(line) for line in ledger_lines(out)]
    assert len(records) == SEEDS + 1  # the crash stays in the ledger's history; the redo counts
    redone = records[-1]
    assert redone["seed"] == original["seed"] and not redone["result"]["crashed"]
    assert redone["result"]["success"] == original["result"]["success"]
    assert per_seed(out)[original["seed"]] == (original["result"]["success"], original["result"]["env_steps"],
                                               original["result"]["failure_reason"])
    final = json.loads((out / "results.json").read_text())
    assert final["complete"] and final["cells"][0]["crashed_seeds"] == []
    assert final["cells"][0]["successes"] == sum(r["result"]["success"] for r in records if not r["result"]["crashed"])
