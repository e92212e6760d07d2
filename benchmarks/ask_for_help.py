"""Conformal ask-for-help for `planner=llm_scoring` with the offline default model.

Decisions come from pick_place scenes (benchmarks/help_decisions.py): half of the
instructions leave out which block or which bowl is meant. The threshold is calibrated
on one range of seeds for a target coverage, then evaluated on a disjoint range:
coverage (the intended step is in the prediction set), help rate (sets of more than
one option), average set size, overall and by kind of instruction, beside the accuracy
of acting on the top-scored step without asking.

    python -m benchmarks.ask_for_help --coverage 0.95 --calibration 150 --test 150
    # and to ship the threshold the planner loads (ask_for_help=true):
    python -m benchmarks.ask_for_help ... --write fmrobot/planning/calibrations/smollm2-tabletop.json
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from benchmarks import common

CALIBRATION_SEED, TEST_SEED = 100_000, 200_000  # disjoint from the seeds other benchmarks use


def collect(planner, ctx, seeds: range) -> list[dict]:
    from benchmarks.help_decisions import decisions, intended_index
    from fmrobot.planning.llm_scoring import softmax

    rows = []
    for d in decisions(seeds):
        plans, texts, scores = planner.options(d.instruction, d.scene, ctx, d.history)
        p = softmax(scores)
        rows.append({"seed": d.seed, "ambiguity": d.ambiguity, "step": len(d.history), "options": texts,
                     "probabilities": [float(x) for x in p], "intended": intended_index(plans, d.remaining)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coverage", type=float, default=0.95)
    parser.add_argument("--calibration", type=int, default=150, help="episodes (3 decisions each)")
    parser.add_argument("--test", type=int, default=150, help="held-out episodes (3 decisions each)")
    parser.add_argument("--write", help="save the calibrated threshold here (JSON)")
    parser.add_argument("--out", default="benchmarks/results/ask_for_help.json")
    args = parser.parse_args()

    from benchmarks.instruction_suite import planning_context
    from fmrobot.llm.smollm2 import SmolLM2
    from fmrobot.planning.conformal import (
        HelpCalibration,
        conformal_threshold,
        prediction_set,
        set_statistics,
    )
    from fmrobot.planning.llm_scoring import LlmScoringPlanner

    ctx = planning_context()
    planner = LlmScoringPlanner(llm=SmolLM2())  # the defaults of configs/planner/llm_scoring.yaml, without help
    start = time.perf_counter()
    calibration = collect(planner, ctx, range(CALIBRATION_SEED, CALIBRATION_SEED + args.calibration))
    test = collect(planner, ctx, range(TEST_SEED, TEST_SEED + args.test))
    seconds = time.perf_counter() - start
    nonconformity = [1.0 - r["probabilities"][r["intended"]] for r in calibration]
    threshold = conformal_threshold(nonconformity, args.coverage)

    groups: dict[str, list[dict]] = defaultdict(list)
    for r in test:
        r["set"] = prediction_set(r["probabilities"], threshold)
        groups["all"].append(r)
        groups[f"ambiguous {r['ambiguity']}" if r["ambiguity"] != "none" else "unambiguous"].append(r)
        # The one decision of an ambiguous episode that the words do not settle.
        open_step = {"block": 0, "bowl": 1}.get(r["ambiguity"])
        groups["left open by the words" if r["step"] == open_step else "settled by the words"].append(r)
    table, summary = [], {}
    for name in ("all", "unambiguous", "ambiguous block", "ambiguous bowl", "left open by the words",
                 "settled by the words"):
        rows = groups.get(name, [])
        if not rows:
            continue
        stats = set_statistics([r["set"] for r in rows], [r["intended"] for r in rows])
        top = sum(max(range(len(r["probabilities"])), key=r["probabilities"].__getitem__) == r["intended"]
                  for r in rows) / len(rows)
        summary[name] = {**stats, "top_choice_accuracy": top}
        table.append([name, stats["decisions"], 100 * stats["coverage"], 100 * stats["help_rate"],
                      stats["average_set_size"], 100 * top])
    print(f"target coverage {args.coverage:.2f}; threshold q = {threshold:.4f} from {len(calibration)} calibration "
          f"decisions (seeds {CALIBRATION_SEED}..{CALIBRATION_SEED + args.calibration - 1}); held-out: "
          f"{len(test)} decisions (seeds {TEST_SEED}..{TEST_SEED + args.test - 1}); {seconds:.0f} s")
    print(common.table(["held-out decisions", "n", "coverage %", "help rate %", "average set size",
                        "top choice right %"], table))
    command = (f"python -m benchmarks.ask_for_help --coverage {args.coverage} --calibration {args.calibration} "
               f"--test {args.test} --write {args.write}")
    if args.write:
        calibrated = HelpCalibration(coverage=args.coverage, threshold=threshold, examples=len(calibration),
                                     model="smollm2 + llm_scoring defaults (prompt tabletop_steps)", made_by=command)
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(calibrated.model_dump_json(indent=2) + "\n")
        print(f"wrote {args.write}")
    print(f"saved {common.save(args.out, {'args': vars(args), 'threshold': threshold, 'summary': summary, 'calibration': calibration, 'test': test})}")


if __name__ == "__main__":
    main()
