"""`planner=llm_structured` with the offline default model: validity, accuracy and latency.

Pick-and-place instructions and scenes from `instruction_suite.py` (seen and held-out
phrasings, 3 blocks and 2 bowls of distinct colours each) are planned with SmolLM2-135M
on one thread. Per decision: wall and CPU seconds, tokens in the answer (of them forced by
the grammar), forward passes, whether the plan validated on the first attempt, and whether
it equals the oracle plan. The first decision of the process reads the whole fixed prompt
and is reported apart (`cold`); the medians are over the decisions after it.

    python -m benchmarks.structured_decoding --cases 10 --baseline 3
    python -m benchmarks.structured_decoding --cases 10 --form full --dtype bfloat16

`--baseline N` also runs N cases unconstrained (`constrained: false`: free generation,
validated and re-prompted), the behaviour before grammar-constrained decoding.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks import instruction_suite as suite


def run(planner, lm, cases, ctx) -> list[dict]:
    from fmrobot.errors import PlanningError

    rows = []
    for case in cases:
        before = dict(lm.stats)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            decision = planner.plan(case.instruction, case.scene, ctx)
            plan, attempt, error = decision.plan, int(decision.rationale.rsplit(" ", 1)[-1]), ""
        except PlanningError as failure:
            plan, attempt, error = None, None, str(failure)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        used = {k: lm.stats[k] - before.get(k, 0) for k in lm.stats}
        rows.append({
            "instruction": case.instruction, "split": case.split, "wall_s": wall, "cpu_s": cpu,
            "valid_first_attempt": attempt == 1, "valid": plan is not None, "correct": plan == case.oracle,
            "plan": [str(s) for s in plan.steps] if plan else None, "error": error,
            "answer_tokens": used["generated_tokens"], "forced_tokens": used["forced_tokens"],
            "forward_passes": used["generate_passes"], "prompt_tokens_read": used["prompt_tokens"],
            "prompt_tokens_cached": used["cached_tokens"],
        })
    return rows


def summary(rows: list[dict]) -> dict:
    def median(key):
        return statistics.median(r[key] for r in rows)

    return {
        "decisions": len(rows), "valid": sum(r["valid"] for r in rows),
        "valid_first_attempt": sum(r["valid_first_attempt"] for r in rows),
        "correct": sum(r["correct"] for r in rows),
        "median_wall_s": median("wall_s"), "median_cpu_s": median("cpu_s"),
        "max_wall_s": max(r["wall_s"] for r in rows),
        "median_answer_tokens": median("answer_tokens"), "median_forced_tokens": median("forced_tokens"),
        "median_forward_passes": median("forward_passes"), "median_prompt_tokens_read": median("prompt_tokens_read"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10, help="instructions per split (seen, heldout)")
    parser.add_argument("--baseline", type=int, default=0, help="cases to run unconstrained as well")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--form", choices=["auto", "full", "compact"], default="auto", help="the plan's JSON form")
    parser.add_argument("--out", type=Path, default=None, help="write every decision as JSON here")
    args = parser.parse_args()

    from fmrobot.llm.smollm2 import SmolLM2, SmolLM2Config
    from fmrobot.planning.llm_structured import (
        LlmStructuredConfig,
        LlmStructuredPlanner,
    )

    ctx = suite.planning_context()
    cases = suite.cases("seen", args.cases, seed=args.seed) + suite.cases("heldout", args.cases, seed=args.seed)
    warm = suite.cases("seen", 1, seed=args.seed + 1000)  # a cold first decision, kept out of the medians
    lm = SmolLM2(SmolLM2Config(dtype=args.dtype))
    planner = LlmStructuredPlanner(LlmStructuredConfig(form=args.form), llm=lm)
    cold = run(planner, lm, warm, ctx)[0]
    rows = run(planner, lm, cases, ctx)
    report = {"dtype": args.dtype, "form": planner.form(), "constrained": summary(rows),
              "cold_first_decision": cold}
    print(f"cold first decision: {cold['wall_s']:.3f} s wall, {cold['cpu_s']:.3f} CPU-s, "
          f"{cold['prompt_tokens_read']} prompt tokens read")
    for r in rows:
        print(f"{r['wall_s']:6.3f} s {r['cpu_s']:6.3f} CPU-s  tokens {r['answer_tokens']:3d} "
              f"(forced {r['forced_tokens']:3d})  passes {r['forward_passes']:2d}  "
              f"{'valid' if r['valid'] else 'INVALID'}  {'correct' if r['correct'] else 'wrong  '}  "
              f"{r['instruction']!r} -> {r['plan'] or r['error']}")
    if args.baseline:
        free = SmolLM2(SmolLM2Config(constrained=False, dtype=args.dtype))
        report["unconstrained"] = summary(run(LlmStructuredPlanner(llm=free), free, cases[:args.baseline], ctx))
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"report": report, "decisions": rows}, indent=2))


if __name__ == "__main__":
    main()
