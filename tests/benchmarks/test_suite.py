"""Suite files: validation messages, expansion into cells and counterfactuals, composition."""

import pytest

from benchmarks.harness.definition import (
    ORACLE_BOTH,
    ORACLE_PERCEPTION,
    ORACLE_PLANNER,
    SuiteError,
    available_suites,
    base_cells,
    compose_cells,
    load_suite,
    needed_variants,
    validate_suite,
    variant_cell,
    with_changes,
)
from fmrobot import registry

MINIMAL = {"name": "t", "tasks": ["pick_place"], "configurations": {"oracle": ["perception=oracle"]},
           "seeds": {"count": 2}}


def test_shipped_suites_validate_and_tasks_all_means_every_registered_task():
    assert {"smoke", "tasks_oracle", "components"} <= set(available_suites())
    for name in available_suites():
        suite, path = load_suite(name)
        assert path.name == f"{name}.yaml" and suite.name == name
    assert load_suite("tasks_oracle")[0].tasks == registry.available("task")
    smoke = load_suite("smoke")[0]
    assert smoke.tasks == ["pick_place"] and smoke.seeds.count == 4 and smoke.overrides == ["video=none"]


def test_unknown_task_lists_the_registered_ones():
    with pytest.raises(SuiteError) as error:
        validate_suite({**MINIMAL, "tasks": ["pick_plcae"]})
    message = str(error.value)
    assert "unknown task(s) pick_plcae" in message
    assert all(task in message for task in registry.available("task"))


@pytest.mark.parametrize("change,expected", [
    ({"levels": ["L9"]}, "unknown level(s) L9; known: L1, L2, L3, L4, none"),
    ({"seeds": {"count": 0}}, "seeds.count"),
    ({"sedes": {"count": 3}}, "sedes: not an option"),
    ({"configurations": {"x": ["perception=oracle", "task=sort_by_color"]}}, "sets 'task', which the harness sets"),
    ({"configurations": {"x": ["level=L2"]}}, "sets 'level'"),
    ({"configurations": {"bad name/": ["perception=oracle"]}}, "configuration name 'bad name/'"),
    ({"configurations": {"x": ["perception"]}}, "is not a Hydra override"),
    ({"tasks": ["pick_place", "pick_place"]}, "listed more than once: pick_place"),
    ({"configurations": {}}, "configurations"),
])
def test_bad_suite_fields_fail_with_one_clear_message(change, expected):
    with pytest.raises(SuiteError) as error:
        validate_suite({**MINIMAL, **change})
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_unknown_suite_name_lists_the_shipped_suites():
    with pytest.raises(SuiteError, match="unknown suite 'nope'; suites: .*smoke"):
        load_suite("nope")


def test_command_line_changes_are_validated_like_the_file():
    suite = validate_suite(MINIMAL)
    assert with_changes(suite, seed_count=7).seeds.count == 7
    with pytest.raises(SuiteError, match="unknown task"):
        with_changes(suite, tasks=["nope"])


def test_cells_cross_tasks_configurations_and_levels_with_the_harness_overrides_last():
    suite = validate_suite({**MINIMAL, "tasks": ["pick_place", "sort_by_color"], "levels": ["none", "L2"],
                            "configurations": {"a": ["perception=oracle"], "b": ["planner=oracle"]}})
    cells = base_cells(suite)
    assert len(cells) == 8 and len({c.id for c in cells}) == 8
    cell = next(c for c in cells if c.id == "sort_by_color__b__L2")
    assert cell.overrides == ("video=none", "planner=oracle", "task=sort_by_color", "level=L2")


def test_counterfactuals_swap_in_oracles_and_drop_the_replaced_components_options():
    suite = validate_suite({**MINIMAL, "configurations": {
        "clip": ["perception=clip", "perception.box_threshold=0.2", "planner=llm_scoring", "+planner.k=3"]}})
    cell = base_cells(suite)[0]
    perception = variant_cell(cell, ORACLE_PERCEPTION).overrides
    assert "perception=oracle" in perception and not any(o.startswith("perception.") for o in perception)
    assert "planner=llm_scoring" in perception and "+planner.k=3" in perception
    both = variant_cell(cell, ORACLE_BOTH).overrides
    assert both[-2:] == ("perception=oracle", "planner=oracle") and not any("planner." in o for o in both)
    assert variant_cell(cell, ORACLE_PLANNER).id == "pick_place__clip__none__oracle_planner"


def test_only_counterfactuals_that_change_something_are_needed():
    def config(perception, planner):
        return {"perception": {"name": perception}, "planner": {"name": planner}}

    assert needed_variants(config("oracle", "oracle")) == []
    assert needed_variants(config("oracle", "llm_scoring")) == [ORACLE_PLANNER]
    assert needed_variants(config("clip", "oracle")) == [ORACLE_PERCEPTION]
    assert needed_variants(config("clip", "scripted")) == [ORACLE_PERCEPTION, ORACLE_PLANNER, ORACLE_BOTH]


def test_composed_cells_are_resolved_plain_configs_with_counterfactuals_after_their_base():
    suite = validate_suite({**MINIMAL, "levels": ["L1"], "attribution": True,
                            "configurations": {"oracle": ["perception=oracle", "planner=oracle"],
                                               "clip+oracle": ["perception=clip", "planner=oracle"]}})
    cells = compose_cells(suite, ["executor.workers=2"])
    assert list(cells) == ["pick_place__oracle__L1", "pick_place__clip+oracle__L1",
                           "pick_place__clip+oracle__L1__oracle_perception"]
    cell, config = cells["pick_place__clip+oracle__L1__oracle_perception"]
    assert config["perception"]["name"] == "oracle" and config["planner"]["name"] == "oracle"
    assert config["task"] == {**config["task"], "name": "pick_place", "level": "L1"}
    assert config["executor"]["workers"] == 2 and config["video"]["episodes"] == "none"


def test_every_cell_that_does_not_compose_is_reported_before_anything_runs():
    suite = validate_suite({**MINIMAL, "configurations": {
        "typo": ["perception=orcale"], "bad_option": ["planner=oracle", "planner.nonsense=1"],
        "ok": ["perception=oracle"]}})
    with pytest.raises(SuiteError) as error:
        compose_cells(suite)
    message = str(error.value)
    assert "2 cell(s) do not compose" in message
    assert "pick_place__typo__none: In 'run': Could not find 'perception/orcale'" in message
    assert "pick_place__bad_option__none" in message and "planner.nonsense" in message
