"""Plugin packages, installed with pip, run by their short names: a planner and a robot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent / "plugin_example"
ROBOT_EXAMPLE = Path(__file__).parent / "plugin_example_robot"


def _install(package: Path, site: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(package)],
        check=True, capture_output=True, text=True,
    )
    return site


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    return _install(EXAMPLE, tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def robot_plugin_site(tmp_path_factory) -> Path:
    return _install(ROBOT_EXAMPLE, tmp_path_factory.mktemp("robot_site"))


def _env_with(site: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return env


def _run(site: Path, run_dir: Path, *overrides: str) -> dict:
    """One episode of `python -m fmrobot.run` with the plugins of `site` installed: its results.json."""
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", *overrides, "video=none", f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent, env=_env_with(site), capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.slow
def test_installed_plugin_planner_runs_by_name(plugin_site, tmp_path):
    run_dir = tmp_path / "run"
    results = _run(plugin_site, run_dir, "planner=tiny", "planner.confidence=0.7")
    assert results["config"]["planner"] == {"name": "tiny", "confidence": 0.7}
    assert results["summary"]["successes"] == 1
    trace = [json.loads(line) for line in (run_dir / "traces" / "seed_000000.jsonl").read_text().splitlines()]
    decision = next(e for e in trace if e["event"] == "decision")["decision"]
    assert decision["rationale"].startswith("tiny planner") and decision["confidence"] == 0.7


@pytest.mark.slow
def test_plugin_passes_the_planner_conformance_check(plugin_site):
    code = "from tiny_planner import TinyPlanner; from fmrobot.testing import check_planner; check_planner(TinyPlanner())"
    subprocess.run([sys.executable, "-c", code], env=_env_with(plugin_site), check=True, timeout=120)


def test_without_the_plugin_the_name_is_unknown_and_options_are_listed(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", "planner=tiny", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode != 0
    assert "no option 'tiny' in group 'planner'" in done.stderr and "scripted" in done.stderr
    assert "planner.name=tiny" not in done.stderr  # not installed: nothing to select by name


@pytest.mark.slow
def test_installed_plugin_robot_runs_by_name(robot_plugin_site, tmp_path):
    results = _run(robot_plugin_site, tmp_path / "run", "robot=tiny_arm", "perception=oracle", "planner=oracle")
    assert results["config"]["robot"] == {"name": "tiny_arm", "gripper_force": 35.0}
    assert results["summary"]["successes"] == 1
    code = ("from sims.env import TabletopEnv; env = TabletopEnv(robot={'name': 'tiny_arm'}, config={'renderer': 'tiny'}); "
            "print(type(env.robot).__module__, env.robot_config.gripper_force); env.close()")
    built = subprocess.run([sys.executable, "-c", code], env=_env_with(robot_plugin_site), capture_output=True,
                           text=True, check=False, timeout=120)
    assert built.stdout.split() == ["tiny_arm", "35.0"], built.stderr[-2000:]


def test_without_the_robot_plugin_the_robot_is_unknown():
    from fmrobot.errors import UnknownComponentError
    from sims.robots import resolve_robot, robot_names

    assert "tiny_arm" not in robot_names() and {"panda", "ur5e_robotiq"} <= set(robot_names())
    with pytest.raises(UnknownComponentError, match="unknown robot 'tiny_arm'; installed: panda, "):
        resolve_robot({"name": "tiny_arm"})
