"""Runs of several episodes under a fault: each one ends, each one leaves its record and its trace."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from tests.faults.conftest import fault_config


@pytest.mark.parametrize("fault,planner", [("physics_nan", "oracle"),
                                           pytest.param("grasp_slip", "oracle", marks=pytest.mark.slow),
                                           pytest.param("llm_garbage", "llm_scoring", marks=pytest.mark.slow)])
def test_a_run_in_worker_processes_keeps_every_episode_record(tmp_path, fault, planner):
    from fmrobot.run import run

    config = fault_config(fault, "episodes=3", "seed=10", "executor.workers=2", planner=planner)
    summary = run(OmegaConf.create(config), tmp_path)
    assert summary["episodes"] == 3
    document = json.loads((tmp_path / "results.json").read_text())
    episodes = document["episodes"]
    assert [e["seed"] for e in episodes] == [10, 11, 12]
    for record in episodes:
        assert not (record["failure_reason"] or "").startswith("crashed"), record["failure_reason"]
        trace = [json.loads(line) for line in (tmp_path / record["trace_file"]).read_text().splitlines()]
        assert trace[0]["event"] == "reset" and trace[0]["seed"] == record["seed"]
        assert any(e["event"] == "fault" and e["fault"] == fault for e in trace)
        if not record["success"]:
            assert "[injected faults: " in record["failure_reason"]
    assert document["config"]["fault"]["name"] == fault


@pytest.mark.slow
def test_worker_processes_see_the_same_faults_as_one_process(tmp_path):
    from fmrobot.run import run

    seen = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run(OmegaConf.create(fault_config("knocked_over", "episodes=2", "seed=3", f"executor.workers={workers}")), out)
        # Fault events only: whole traces also hold perceived positions, which differ by renderer, and
        # a process that already renders with EGL (a test session) gives this one the tiny renderer.
        seen[workers] = {p.name: [line for line in p.read_text().splitlines() if '"event": "fault"' in line]
                         for p in (out / "traces").glob("*.jsonl")}
    assert len(seen[1]) == 2 and all(len(events) == 1 for events in seen[1].values())
    assert seen[1] == seen[2]
