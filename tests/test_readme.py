"""The README stays true: its test command is the one CI runs, its plugin is the tested one."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    setup = [block.strip() for block in _bash_blocks()[:2]]
    assert setup[1] == ci_command
    assert setup[0].endswith("python -m fmrobot.run task=pick_place")


def test_plugin_section_shows_the_package_the_plugin_test_installs():
    example = ROOT / "tests" / "plugin_example"
    for name in ("pyproject.toml", "tiny_planner/__init__.py", "tiny_planner/configs/planner/tiny.yaml"):
        content = (example / name).read_text().strip()
        assert content in README, f"README's copy of {name} differs from tests/plugin_example/{name}"
    assert (example / "tiny_planner" / "configs" / "__init__.py").read_text() == ""
