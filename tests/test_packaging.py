"""The project installs as a normal package: every package listed, configs inside it."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("fmrobot", "sims")
        for init in (ROOT / top).rglob("__init__.py")
    } | {"fmrobot.configs"}
    assert found == listed, f"missing: {found - listed}; stale: {listed - found}"


@pytest.mark.slow
def test_non_editable_install_runs_from_any_directory(tmp_path):
    """Build and install a real (non-editable) copy, then run it away from the repository."""
    site, source = tmp_path / "site", tmp_path / "source"
    # Build from the tracked files only: a build/ folder left in the checkout could smuggle stale modules in.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(site), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    assert (site / "fmrobot" / "configs" / "run.yaml").exists()
    assert (site / "fmrobot" / "configs" / "task" / "pick_place.yaml").exists()
    env = dict(os.environ, PYTHONPATH=str(site))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = "import fmrobot.run, sims.env; print(fmrobot.run.__file__); print(sims.env.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", "task=pick_place", "video=none", "hydra.run.dir=out"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (elsewhere / "out" / "results.json").exists()
    assert done.stdout.strip().splitlines()[-1].startswith("pick_place: ")
