"""A planner plugin package, installed with pip, runs by its short name."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent / "plugin_example"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
    return site


def _env_with(site: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return env


def test_installed_plugin_planner_runs_by_name(plugin_site, tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", "planner=tiny", "planner.confidence=0.7", "video=none",
         f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=_env_with(plugin_site), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["config"]["planner"] == {"name": "tiny", "confidence": 0.7}
    assert results["summary"]["successes"] == 1
    trace = [json.loads(line) for line in (run_dir / "traces" / "seed_000000.jsonl").read_text().splitlines()]
    decision = next(e for e in trace if e["event"] == "decision")["decision"]
    assert decision["rationale"].startswith("tiny planner") and decision["confidence"] == 0.7


def test_plugin_passes_the_planner_conformance_check(plugin_site):
    code = "from tiny_planner import TinyPlanner; from fmrobot.testing import check_planner; check_planner(TinyPlanner())"
    subprocess.run([sys.executable, "-c", code], env=_env_with(plugin_site), check=True, timeout=120)


def test_without_the_plugin_the_name_is_unknown_and_options_are_listed(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", "planner=tiny", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "no option 'tiny' in group 'planner'" in done.stderr and "scripted" in done.stderr
    assert "planner.name=tiny" not in done.stderr  # not installed: nothing to select by name
