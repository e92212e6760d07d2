"""Turn a results folder's ledger and pinned suite into results.json and results.md."""

from __future__ import annotations

import datetime
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from benchmarks.common import table
from benchmarks.harness.ledger import LEDGER_FILE, is_crashed, read_ledger, unique_records
from benchmarks.harness.pinning import read_pinned, write_json
from benchmarks.harness.stats import Blame, attribute, attribution_counts, failure_stage, wilson_interval
from benchmarks.harness.definition import BASE, ORACLE_BOTH, ORACLE_PERCEPTION, ORACLE_PLANNER, is_oracle, needed_variants

EXAMPLE_CHARS = 160  # of one failure reason shown per stage


def stage_names() -> list[str]:
    from fmrobot.types import StageTimes

    return list(StageTimes.model_fields)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def cell_summary(cell_id: str, meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                 expected: Sequence[int]) -> dict[str, Any]:
    results = [r["result"] for r in records]
    n, successes = len(results), sum(bool(r["success"]) for r in results)
    low, high = wilson_interval(successes, n)
    stages: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for result in results:
        if not result["success"]:
            stage = failure_stage(result)
            stages[stage] += 1
            examples.setdefault(stage, (result.get("failure_reason") or "")[:EXAMPLE_CHARS])
    seen = {int(r["seed"]) for r in records}
    crashed = sorted(int(r["seed"]) for r in records if is_crashed(r))
    # A crashed episode has no timings (zeros), not fast ones: leave it out of the latency medians.
    timed = [r for r in results if r["success"] or failure_stage(r) != "crash"]
    return {
        "cell": cell_id, "task": meta["task"], "configuration": meta["configuration"], "level": meta["level"],
        "variant": meta["variant"], "overrides": meta["overrides"],
        "episodes": n, "successes": successes, "success_rate": successes / n if n else None,
        "wilson_95": [low, high],
        "median_wall_time": _median([float(r["wall_time"]) for r in timed]),
        "median_stage_seconds": {
            stage: _median([float(r["latency"].get(stage, 0.0)) for r in timed]) for stage in stage_names()
        },
        "failures_by_stage": dict(stages.most_common()),
        "failure_examples": examples,
        "expected_seeds": len(expected),
        "missing_seeds": sorted(set(expected) - seen),
        "crashed_seeds": crashed,  # counted as failures until a rerun of the same command redoes them
    }


def attribution_for(base_id: str, config: Mapping[str, Any], outcomes: Mapping[str, Mapping[int, bool]],
                    failed: Sequence[int]) -> dict[str, Any]:
    """Blame each failed seed of a base cell from its counterfactual runs."""
    perception_oracle, planner_oracle = is_oracle(config, "perception"), is_oracle(config, "planner")

    def outcome(variant: str, seed: int) -> bool | None:
        return outcomes.get(f"{base_id}__{variant}", {}).get(seed)

    blames: dict[int, Blame] = {}
    for seed in failed:
        with_perception = False if perception_oracle else outcome(ORACLE_PERCEPTION, seed)
        with_plan = False if planner_oracle else outcome(ORACLE_PLANNER, seed)
        # With one oracle already in place, swapping in the other is swapping in both.
        both = with_plan if perception_oracle else with_perception if planner_oracle else outcome(ORACLE_BOTH, seed)
        blames[seed] = attribute(with_perception, with_plan, both)
    return {"failed": len(failed), "counts": attribution_counts(blames),
            "seeds": {str(seed): blame.value for seed, blame in sorted(blames.items())}}


def build_report(pinned: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    suite = pinned["suite"]
    seeds = list(range(suite["seeds"]["start"], suite["seeds"]["start"] + suite["seeds"]["count"]))
    cells_meta: Mapping[str, Mapping[str, Any]] = pinned["cells"]
    records = [r for r in unique_records(records) if r["cell"] in cells_meta]
    by_cell: dict[str, list[Mapping[str, Any]]] = {cell_id: [] for cell_id in cells_meta}
    for record in records:
        by_cell[record["cell"]].append(record)
    for cell_records in by_cell.values():
        cell_records.sort(key=lambda r: int(r["seed"]))
    outcomes = {cell_id: {int(r["seed"]): bool(r["result"]["success"]) for r in rs} for cell_id, rs in by_cell.items()}
    failed = {cell_id: sorted(s for s, ok in outcome.items() if not ok) for cell_id, outcome in outcomes.items()}

    cells, attribution = [], []
    for cell_id, meta in cells_meta.items():
        expected = seeds if meta["variant"] == BASE else failed.get(_base_id(meta), [])
        cells.append(cell_summary(cell_id, meta, by_cell[cell_id], expected))
        if meta["variant"] == BASE and suite.get("attribution") and needed_variants(meta["config"]):
            attribution.append({"cell": cell_id, "task": meta["task"], "configuration": meta["configuration"],
                                "level": meta["level"],
                                **attribution_for(cell_id, meta["config"], outcomes, failed[cell_id])})
    episodes = [{
        "cell": r["cell"], "seed": int(r["seed"]), "variant": r.get("variant", BASE), "session": r.get("session"),
        "success": bool(r["result"]["success"]), "failure_reason": r["result"].get("failure_reason"),
        "failure_stage": None if r["result"]["success"] else failure_stage(r["result"]),
        "wall_time": r["result"]["wall_time"], "instruction": r["result"].get("instruction"),
    } for cell_id in cells_meta for r in by_cell[cell_id]]
    starts = pinned.get("starts", [])
    return {
        "suite": suite, "source": pinned.get("source"), "fingerprint": pinned.get("fingerprint"),
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": pinned.get("commit"), "dirty": pinned.get("dirty"),
        "commits": sorted({s.get("commit") or "unknown" for s in starts}),
        "starts": starts, "environment": pinned.get("environment"),
        # Complete: every expected episode ran to its end; a crashed one is redone by the next start.
        "complete": all(not c["missing_seeds"] and not c["crashed_seeds"] for c in cells),
        "cells": cells, "attribution": attribution, "episodes": episodes,
        "configs": {cell_id: meta["config"] for cell_id, meta in cells_meta.items()},
    }


def _base_id(meta: Mapping[str, Any]) -> str:
    return f"{meta['task']}__{meta['configuration']}__{meta['level']}"


# --------------------------------------------------------------------------- markdown

def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(report: Mapping[str, Any]) -> str:
    suite = report["suite"]
    seeds = suite["seeds"]
    base = [c for c in report["cells"] if c["variant"] == BASE]
    lines = [f"# Benchmark suite `{suite['name']}`", ""]
    if suite.get("description"):
        lines += [suite["description"].strip(), ""]
    commit = report.get("commit") or "unknown"
    dirty = " (uncommitted changes in the tree)" if report.get("dirty") else ""
    lines += [
        f"- commit: `{commit}`{dirty}",
        f"- seeds {seeds['start']}..{seeds['start'] + seeds['count'] - 1} ({seeds['count']} per cell); "
        f"levels: {', '.join(suite['levels'])}; common overrides: `{' '.join(suite['overrides']) or '-'}`",
        f"- {len(report['starts'])} start(s); report generated {report['generated']}"
        + ("" if report["complete"] else "; **incomplete: some episodes have not run yet or crashed "
                                         "(a rerun of the same command runs them)**"),
    ]
    if len(report["commits"]) > 1:
        lines.append(f"- **episodes come from {len(report['commits'])} commits**: {', '.join(report['commits'])} "
                     "(per-episode `session` in results.json maps to `starts`)")
    lines += ["", "## Success", "",
              "Success rate with its Wilson 95% score interval; medians per episode in seconds.", ""]
    stages = [s for s in stage_names() if any((c["median_stage_seconds"].get(s) or 0) > 0 for c in base)]
    rows = [[c["task"], c["configuration"], c["level"], c["episodes"], c["successes"], _pct(c["success_rate"]),
             f"{_pct(c['wilson_95'][0])} - {_pct(c['wilson_95'][1])}", _secs(c["median_wall_time"]),
             *[_secs(c["median_stage_seconds"].get(s)) for s in stages]] for c in base]
    lines += [table(["task", "configuration", "level", "episodes", "successes", "rate", "95% CI", "wall s",
                     *[f"{s} s" for s in stages]], rows), ""]
    failing = [c for c in base if c["failures_by_stage"]]
    if failing:
        lines += ["## Failures by stage", "",
                  "Each failed episode, counted by the stage its failure names.", ""]
        rows = [[c["task"], c["configuration"], c["level"], c["episodes"] - c["successes"],
                 ", ".join(f"{stage} {count}" for stage, count in c["failures_by_stage"].items())] for c in failing]
        lines += [table(["task", "configuration", "level", "failures", "by stage"], rows), "", "Examples:", ""]
        for c in failing:
            for stage, example in c["failure_examples"].items():
                lines.append(f"- {c['cell']}, {stage}: {example}")
        lines.append("")
    if report["attribution"]:
        lines += ["## Failure attribution", "",
                  "Each failed seed is run again with oracle perception, with the oracle plan, and with both "
                  "(counterfactuals only for failed seeds). perception / planning: only that oracle fixes it; "
                  "either: each oracle alone fixes it; both: only the two together fix it; control: it fails "
                  "even with oracle perception and plan (control or execution); unknown: not run yet.", ""]
        blames = [b.value for b in Blame]
        episodes = {c["cell"]: c["episodes"] for c in report["cells"]}
        rows = [[a["task"], a["configuration"], a["level"], f"{a['failed']}/{episodes[a['cell']]}",
                 *[a["counts"][b] for b in blames]] for a in report["attribution"]]
        lines += [table(["task", "configuration", "level", "failed/episodes", *blames], rows), ""]
        variants = [c for c in report["cells"] if c["variant"] != BASE and c["expected_seeds"]]
        if variants:
            rows = [[c["task"], c["configuration"], c["level"], c["variant"], c["episodes"], c["successes"]]
                    for c in variants]
            lines += ["Counterfactual runs (seeds that failed in the base cell):", "",
                      table(["task", "configuration", "level", "swapped in", "seeds run", "succeeded"], rows), ""]
    lines += ["## Configurations", ""]
    for name, overrides in suite["configurations"].items():
        lines.append(f"- `{name}`: `{' '.join(overrides) or '(defaults)'}`")
    lines += ["", "Resolved run configs per cell: `configs` in results.json (pinned in suite.json).", "",
              "![success by task and configuration](success.png)", "",
              "![latency by stage](latency.png)", ""]
    return "\n".join(lines)


def write_report(out: Path, plots: bool = True) -> dict[str, Any]:
    """Rebuild results.json, results.md (and the figures) from suite.json and the ledger."""
    pinned = read_pinned(out)
    records, _ = read_ledger(out / LEDGER_FILE)
    report = build_report(pinned, records)
    write_json(out / "results.json", report)
    (out / "results.md").write_text(markdown(report))
    if plots:
        from benchmarks.harness.plots import latency_plot, success_plot

        success_plot(report, out / "success.png")
        latency_plot(report, out / "latency.png")
    return report
