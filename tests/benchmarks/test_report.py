"""Reports from a ledger: per-cell statistics, failures by stage, attribution from counterfactuals."""

import json

from benchmarks.harness.ledger import LEDGER_FILE
from benchmarks.harness.pinning import SUITE_FILE, differences
from benchmarks.harness.report import build_report, markdown, write_report
from benchmarks.harness.stats import wilson_interval

SUITE = {"name": "t", "description": "", "tasks": ["pick_place"], "levels": ["none"],
         "configurations": {"clip+scripted": ["perception=clip", "planner=scripted"],
                            "oracle+llm": ["perception=oracle", "planner=llm_scoring"]},
         "seeds": {"start": 0, "count": 4}, "overrides": ["video=none"], "attribution": True}


def meta(configuration, variant, perception, planner):
    cell = f"pick_place__{configuration}__none" + ("" if variant == "base" else f"__{variant}")
    return cell, {"task": "pick_place", "configuration": configuration, "level": "none", "variant": variant,
                  "overrides": [], "config": {"perception": {"name": perception}, "planner": {"name": planner}}}


def pinned():
    cells = dict([
        meta("clip+scripted", "base", "clip", "scripted"),
        meta("clip+scripted", "oracle_perception", "oracle", "scripted"),
        meta("clip+scripted", "oracle_planner", "clip", "oracle"),
        meta("clip+scripted", "oracle_both", "oracle", "oracle"),
        meta("oracle+llm", "base", "oracle", "llm_scoring"),
        meta("oracle+llm", "oracle_planner", "oracle", "oracle"),
    ])
    return {"suite": SUITE, "cells": cells, "commit": "abc", "dirty": False, "fingerprint": "f",
            "starts": [{"commit": "abc"}]}


def episode(cell, seed, success, reason=None, wall=1.0, perception=0.1, failure=None):
    """A ledger record; without `failure`, one written before results carried a typed failure."""
    result = {"success": success, "failure_reason": None if success else reason, "wall_time": wall,
              "latency": {"perception": perception, "control": 0.5}, "instruction": "x"}
    if failure is not None:
        result["failure"] = failure
    return {"cell": cell, "seed": seed, "variant": cell.split("__")[3] if cell.count("__") == 3 else "base",
            "session": 0, "result": result}


def records():
    base, oracle_llm = "pick_place__clip+scripted__none", "pick_place__oracle+llm__none"
    return [
        episode(base, 0, True, wall=1.0),
        episode(base, 1, False, "gave up after 2 replans; last failure: pick: grasp: closed on nothing", wall=2.0),
        episode(base, 2, False, "planning: no plan", wall=3.0),
        episode(base, 3, False, "task not achieved: in_bowl", wall=4.0),
        # seed 1 is fixed by oracle perception only, seed 2 by the oracle plan only, seed 3 by nothing
        episode(base + "__oracle_perception", 1, True), episode(base + "__oracle_planner", 1, False),
        episode(base + "__oracle_both", 1, True),
        episode(base + "__oracle_perception", 2, False), episode(base + "__oracle_planner", 2, True),
        episode(base + "__oracle_both", 2, True),
        episode(base + "__oracle_perception", 3, False), episode(base + "__oracle_planner", 3, False),
        episode(base + "__oracle_both", 3, False),
        episode(oracle_llm, 0, False, "crashed: KeyError: 'side'", wall=0.0, perception=0.0),
        episode(oracle_llm, 1, True, wall=5.0),
        episode(oracle_llm, 2, True, wall=5.0), episode(oracle_llm, 3, False, "planning: bad"),
        episode(oracle_llm + "__oracle_planner", 0, True),  # seed 3's counterfactual has not run yet
    ]


def test_cells_report_rates_intervals_medians_and_failure_stages():
    report = build_report(pinned(), records())
    cell = report["cells"][0]
    assert (cell["episodes"], cell["successes"], cell["success_rate"]) == (4, 1, 0.25)
    assert cell["wilson_95"] == list(wilson_interval(1, 4))
    assert cell["median_wall_time"] == 2.5 and cell["median_stage_seconds"]["perception"] == 0.1
    assert cell["median_stage_seconds"]["planning"] == 0.0  # a stage an episode did not time counts as zero
    # These records have no typed failure: their reasons' words name the stage.
    assert cell["failures_by_stage"] == {"control: pick": 1, "planning": 1, "task": 1}
    assert report["cells"][1]["expected_seeds"] == 3  # counterfactuals run the base cell's failed seeds
    crashed = report["cells"][4]
    assert crashed["failures_by_stage"] == {"crash": 1, "planning": 1}
    assert crashed["median_wall_time"] == 5.0  # of 5, 5, 1 s: the crash's zero is not a time


def test_typed_failures_are_counted_by_their_stage_not_their_words():
    base = "pick_place__clip+scripted__none"
    typed = [
        episode(base, 0, False, "gave up after 2 replans; last failure: pick: grasp: closed on nothing",
                failure={"stage": "safety", "kind": "replans_exhausted", "skill": "pick"}),
        episode(base, 1, False, "words nobody can classify",
                failure={"stage": "control", "kind": "skill_failed", "skill": "place"}),
        episode(base, 2, False, "crashed: WorkerDied: gone", wall=0.0,
                failure={"stage": "crash", "kind": "worker_died", "skill": None}),
        episode(base, 3, False, "task not achieved: in_bowl"),  # an old record beside new ones
    ]
    report = build_report(pinned(), typed)
    assert report["cells"][0]["failures_by_stage"] == {"safety": 1, "control: place": 1, "crash": 1, "task": 1}
    assert report["cells"][0]["median_wall_time"] == 1.0  # the crash's zero is left out
    stages = {e["seed"]: e["failure_stage"] for e in report["episodes"] if e["cell"] == base}
    assert stages == {0: "safety", 1: "control: place", 2: "crash", 3: "task"}


def test_failed_seeds_are_attributed_from_their_counterfactuals():
    report = build_report(pinned(), records())
    by_config = {a["configuration"]: a for a in report["attribution"]}
    assert by_config["clip+scripted"]["seeds"] == {"1": "perception", "2": "planning", "3": "control"}
    # perception already is the oracle: the planner swap alone decides, and seed 3 has not run
    assert by_config["oracle+llm"]["seeds"] == {"0": "planning", "3": "unknown"}
    assert by_config["oracle+llm"]["counts"]["planning"] == 1
    assert not report["complete"]
    assert report["cells"][-1]["missing_seeds"] == [3]


def test_duplicate_ledger_lines_count_once_and_every_episode_is_listed():
    report = build_report(pinned(), records() + [episode("pick_place__clip+scripted__none", 0, False, "x")])
    keys = [(e["cell"], e["seed"]) for e in report["episodes"]]
    assert len(keys) == len(set(keys)) == len(records())
    assert report["cells"][0]["successes"] == 1


def test_markdown_and_figures_are_written_from_the_folder(tmp_path):
    (tmp_path / SUITE_FILE).write_text(json.dumps(pinned()))
    (tmp_path / LEDGER_FILE).write_text("".join(json.dumps(r) + "\n" for r in records()))
    report = write_report(tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert text == markdown(report)
    assert "| pick_place | clip+scripted | none  | 4        | 1         | 25.0%" in text
    assert "## Failure attribution" in text and "incomplete" in text
    for name in ("success.png", "latency.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "results.json").read_text())["cells"][0]["successes"] == 1


def test_definition_differences_name_what_changed():
    old = {"suite": {"seeds": {"count": 4}}, "cells": {"a": {"config": {"task": {"name": "x"}}}}}
    new = {"suite": {"seeds": {"count": 5}}, "cells": {"a": {"config": {"task": {"name": "y"}}}, "b": {}}}
    found = differences(old, new)
    assert found[0] == "suite seeds: {'count': 4} -> {'count': 5}"
    assert "cells removed: none; added: b" in found
    assert any(f.startswith("a config task:") for f in found)
