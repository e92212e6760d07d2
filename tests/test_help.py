"""`--help`: short, the groups with their options and defaults, the settings, and the README's tour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fmrobot.compose import group_options
from fmrobot.help import TOUR
from tests.fakes import run_command

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("command, flag", [("run", "--help"), ("collect", "-h"), ("train", "--help")])
def test_help_lists_every_group_with_its_options_in_under_60_lines(command, flag, tmp_path):
    done = run_command(flag, cwd=tmp_path, command=command)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) < 60 and lines[0].startswith(f"python -m fmrobot.{command} [group=option ...]")
    text = done.stdout
    for group in ("task", "perception", "planner", "llm", "policy", "robot", "level", "executor"):
        row = re.search(rf"^  {group} +(.+(?:\n {{13}}.+)*)", text, flags=re.MULTILINE)
        assert row, f"no row for {group}"
        listed = {o.strip().rstrip("*") for o in row.group(1).replace("\n", " ").split(",")}
        assert listed == set(group_options(command, group))
    groups_part = text.split("Settings")[0]
    assert "benchmark" not in groups_part and "hydra" not in groups_part  # not groups a run chooses from
    assert ("A tour:" in text) == (command == "run")
    if command == "run":
        assert "planner    llm_goal*" in text and "task       align_line" in text


def test_the_help_tour_is_the_readme_tour():
    block = re.search(r"## A tour\n\n```bash\n(.*?)```", README, flags=re.DOTALL).group(1)
    assert block == TOUR
