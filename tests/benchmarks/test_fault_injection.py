"""benchmarks/fault_injection.py: the fault table from a real (small) run of the harness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = """
name: faults_test
tasks: [pick_place]
configurations:
  grasp_slip: [perception=oracle, planner=oracle, fault=grasp_slip]
  physics_runaway: [perception=oracle, planner=oracle, fault=physics_runaway]
levels: [none]
seeds: {start: 0, count: 2}
overrides: [video=none]
"""


@pytest.mark.slow
def test_every_fault_episode_is_counted_with_its_record_and_trace(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "benchmarks.fault_injection", "--suite", str(suite),
                           "--out", str(out), "--quiet"], capture_output=True, text=True, check=False, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {r["fault"]: r for r in json.loads((out / "faults.json").read_text())["rows"]}
    slip, runaway = rows["grasp_slip"], rows["physics_runaway"]
    assert (slip["episodes"], slip["fired"], slip["recovered"], slip["crashed"], slip["traces"]) == (2, 2, 2, 0, 2)
    assert (runaway["episodes"], runaway["clean_failures"], runaway["crashed"], runaway["traces"]) == (2, 2, 0, 2)
    assert runaway["most_common_reason"].startswith("physics: the <object> moves at #")
    table = (out / "faults.md").read_text()
    assert "| records + traces |" in table and "2/2" in table
    assert "crashed: 0; records or traces missing: 0" in done.stdout


def test_failure_reasons_of_one_kind_count_as_one():
    from benchmarks.fault_injection import reason_kind

    first = reason_kind("gave up after 2 replans; last failure: no object labelled 'red block' in the scene; "
                        "perceived: blue bowl [injected faults: perception dropped the red block (step 0)]")
    second = reason_kind("gave up after 2 replans; last failure: no object labelled 'cyan block' in the scene; "
                         "perceived: green bowl [injected faults: perception dropped the cyan block (step 0)]")
    assert first == second == ("gave up after # replans; last failure: no object labelled <object> in the scene; "
                               "perceived: <object>")
