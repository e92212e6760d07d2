"""Command-line mistakes get the closest existing names, not Hydra's advice to append a `+key`."""

from __future__ import annotations

import pytest

from fmrobot import hints, registry
from fmrobot.errors import ConfigError
from fmrobot.stack import check_run_keys
from tests.fakes import run_command


@pytest.mark.parametrize("override, expected", [
    ("planer=llm_scoring", "unknown config key 'planer'; did you mean 'planner'? (a run's groups and keys: "),
    ("episode=3", "unknown config key 'episode'; did you mean 'episodes'?"),
    ("perception.thread=2", ("unknown config key 'perception.thread'; did you mean 'perception.threads'? "
                             "(perception (clip) has: name, model, ")),
    ("runner.max_replan=1", "did you mean 'runner.max_replans'? (runner has: max_replans, max_decisions, "),
])
def test_an_unknown_key_names_the_closest_keys(override, expected):
    key = override.split("=")[0]
    leaf = key.rpartition(".")[2]
    message = f"Could not override '{key}'. Key '{leaf}' is not in struct"
    assert expected in hints.hint_for(message, "run", [override])


def test_a_key_with_no_near_name_lists_what_is_there_without_guessing():
    line = hints.hint_for("Could not override 'perception.nonexistent_field'. Key 'nonexistent_field' is not in "
                          "struct", "run", ["perception.nonexistent_field=1"])
    assert line == ("unknown config key 'perception.nonexistent_field' (perception (clip) has: name, model, "
                    "pretrained, assignment, min_score, ground_colors, threads)")


def test_an_unknown_group_option_names_the_closest_options():
    line = hints.hint_for("Could not find 'planner/llm_scorin'", "run", ["planner=llm_scorin"])
    assert line.startswith("no option 'llm_scorin' in group 'planner'; did you mean 'llm_scoring'")
    assert line.endswith("options: llm_goal, llm_scoring, llm_scoring_scene, llm_structured, oracle, scripted, vlm")


def test_a_plugin_component_without_a_yaml_is_listed_with_the_name_form(monkeypatch):
    installed = registry.available("planner")
    monkeypatch.setattr(registry, "available", lambda group: [*installed, "tiny"] if group == "planner" else [])
    line = hints.hint_for("Could not find 'planner/tiny'", "run", ["planner=tiny"])
    assert "installed without a yaml (select by name, with the Config's defaults): planner.name=tiny" in line


def test_an_unknown_top_level_key_added_with_plus_is_refused_with_the_closest_name():
    with pytest.raises(ConfigError, match=r"^unknown top-level config key\(s\) 'planer'; did you mean 'planner'\?"):
        check_run_keys({"planer": "x", "planner": {}})


def test_the_command_line_prints_the_hint_in_one_line(tmp_path):
    done = run_command("planer=llm_scoring", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("fmrobot: error:")]
    assert len(errors) == 1 and "did you mean 'planner'?" in errors[0] and "+planer" not in done.stderr
