"""Language-model planners on the instruction suite and in simulation, with the offline default model.

Four measurements, one run, one thread:

1. plan accuracy of `planner=llm_scoring` on the seen and the held-out paraphrase
   splits of `instruction_suite.py` (a plan is right when its steps equal the oracle's
   and it then says "done"), with the latency and tokens of every decision;
2. the same for `planner=llm_structured` on a few cases (`--structured N`; generation is slow);
3. scoring speed: the backend's tree-batched, prefix-cached `score` against naive
   scoring (one full forward over prompt + candidate per candidate), interleaved on the
   same decisions, with the largest score difference between the two;
4. pick_place in simulation with oracle perception (`--episodes N`), through the same
   runner `python -m fmrobot.run` uses.

    python -m benchmarks.planner --cases 60 --naive 5 --episodes 50
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks import common
from benchmarks import instruction_suite as suite


def roll_out(planner, case, ctx, max_steps: int = 4) -> tuple[bool, list[float], str]:
    """Run the planner to "done", every step succeeding; (matches the oracle, decision seconds, failure)."""
    from fmrobot.errors import FmrobotError
    from fmrobot.types import SkillStatus, StepFeedback

    seconds, steps = [], []
    try:
        start = time.perf_counter()
        decision = planner.plan(case.instruction, case.scene, ctx)
        seconds.append(time.perf_counter() - start)
        while decision.plan is not None and not decision.plan.final and len(steps) < max_steps:
            steps.extend(decision.plan.steps)
            feedback = StepFeedback(step_index=len(decision.plan.steps) - 1, call=decision.plan.steps[-1],
                                    status=SkillStatus.SUCCESS)
            start = time.perf_counter()
            decision = planner.replan(decision, feedback, case.scene, ctx)
            seconds.append(time.perf_counter() - start)
        if decision.plan is not None:
            steps.extend(decision.plan.steps)  # a whole-plan planner returns everything at once
    except FmrobotError as error:
        return False, seconds, str(error)
    ok = tuple(steps) == case.oracle.steps and decision.plan is not None and decision.plan.final
    return ok, seconds, "" if ok else f"planned {[str(s) for s in steps]}"


def accuracy(name: str, planner, lm, cases, ctx) -> dict:
    before = dict(lm.stats)
    results = [roll_out(planner, case, ctx) for case in cases]
    decisions = [s for _, seconds, _ in results for s in seconds]
    used = {k: lm.stats[k] - before.get(k, 0) for k in lm.stats}
    failures = [(case.instruction, why) for case, (ok, _, why) in zip(cases, results) if not ok]
    return {
        "planner": name, "split": cases[0].split, "cases": len(cases),
        "correct": sum(ok for ok, _, _ in results), "accuracy": sum(ok for ok, _, _ in results) / len(cases),
        "decisions": len(decisions), "median_decision_s": statistics.median(decisions),
        "p90_decision_s": float(np.percentile(decisions, 90)),
        "tokens_per_decision": {k: v / max(len(decisions), 1) for k, v in used.items()},
        "failures": failures[:10],
    }


def scoring_speed(lm, planner, cases, ctx) -> dict:
    """Tree-batched against naive scoring on the first decision of each case, interleaved."""
    from fmrobot.planning.llm_scoring import DONE, enumerate_candidates

    batched, naive, worst, counts = [], [], 0.0, []
    for case in cases:
        calls = enumerate_candidates(case.scene, ctx.skills)
        texts = planner.step_texts(calls, ctx)[:9] + [f" {DONE}"]  # ten candidates
        prompt = planner.prompt(planner.ground(case.instruction, case.scene), [])
        start = time.perf_counter()
        fast = lm.score(prompt, texts)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        slow = lm.score_naive(prompt, texts)
        naive.append(time.perf_counter() - start)
        worst = max(worst, max(abs(a - b) for a, b in zip(fast, slow)))
        counts.append(len(texts))
    b, n = statistics.median(batched), statistics.median(naive)
    return {"decisions": len(cases), "candidates": counts[0], "median_batched_s": b, "median_naive_s": n,
            "speedup": n / b, "max_abs_score_difference": worst, "batched_s": batched, "naive_s": naive}


def simulate(episodes: int, seed: int, overrides: list[str]) -> dict:
    from fmrobot.compose import compose_plain
    from fmrobot.stack import build_runner

    config = compose_plain("run", ["task=pick_place", "perception=oracle", "planner=llm_scoring", *overrides])
    runner = build_runner(config)
    results = []
    try:
        for s in range(seed, seed + episodes):
            results.append(runner.run_episode(s).result)
    finally:
        runner.env.close()
    failures = [(r.seed, r.instruction, r.failure_reason) for r in results if not r.success]
    return {"episodes": episodes, "seeds": [seed, seed + episodes - 1], "overrides": overrides,
            "successes": sum(r.success for r in results),
            "median_planning_s_per_episode": statistics.median(r.latency.planning for r in results),
            "median_wall_s": statistics.median(r.wall_time for r in results), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=60, help="instruction cases per split")
    parser.add_argument("--structured", type=int, default=6, help="cases per split for llm_structured (0: skip)")
    parser.add_argument("--naive", type=int, default=5, help="decisions timed batched against naive (0: skip)")
    parser.add_argument("--episodes", type=int, default=50, help="pick_place episodes in simulation (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/planner.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the simulated episodes")
    args = parser.parse_args()

    from fmrobot.llm.smollm2 import SmolLM2
    from fmrobot.planning.llm_scoring import LlmScoringPlanner
    from fmrobot.planning.llm_structured import LlmStructuredPlanner

    start = time.perf_counter()
    lm = SmolLM2()
    load_s = time.perf_counter() - start
    ctx = suite.planning_context()
    scoring = LlmScoringPlanner(llm=lm)  # the defaults of configs/planner/llm_scoring.yaml
    rows, report = [], {"model": "smollm2 (SmolLM2-135M-Instruct, offline)", "load_s": load_s}
    splits = {split: suite.cases(split, args.cases, seed=args.seed) for split in ("seen", "heldout")}
    report["accuracy"] = [accuracy("llm_scoring", scoring, lm, cases, ctx) for cases in splits.values()]
    if args.structured:
        structured = LlmStructuredPlanner(llm=lm)
        report["accuracy"] += [accuracy("llm_structured", structured, lm, cases[: args.structured], ctx)
                               for cases in splits.values()]
    for r in report["accuracy"]:
        tokens = r["tokens_per_decision"]
        rows.append([r["planner"], r["split"], f"{r['correct']}/{r['cases']}", 100 * r["accuracy"],
                     r["median_decision_s"], r["p90_decision_s"], round(tokens.get("prompt_tokens", 0)),
                     round(tokens.get("cached_tokens", 0)),
                     round(tokens.get("tree_tokens", 0) or tokens.get("generated_tokens", 0))])
    print(f"offline default model, loaded in {load_s:.1f} s; {args.cases} cases per split (seed {args.seed})")
    print(common.table(["planner", "split", "correct", "accuracy %", "median decision s", "p90 decision s",
                        "prompt tokens run", "cached tokens", "tree/generated tokens"], rows))
    if args.naive:
        speed = scoring_speed(lm, scoring, splits["seen"][: args.naive + 1][1:], ctx)
        report["scoring_speed"] = speed
        print(f"\nscoring {speed['candidates']} candidates, {speed['decisions']} decisions interleaved: "
              f"tree-batched {speed['median_batched_s']:.3f} s, naive {speed['median_naive_s']:.3f} s, "
              f"speedup {speed['speedup']:.1f}x, largest score difference {speed['max_abs_score_difference']:.1e}")
    if args.episodes:
        sim = simulate(args.episodes, args.seed, args.overrides)
        report["simulation"] = sim
        print(f"\npick_place, planner=llm_scoring perception=oracle, seeds {sim['seeds'][0]}..{sim['seeds'][1]}: "
              f"{sim['successes']}/{sim['episodes']} succeeded; median planning {sim['median_planning_s_per_episode']:.2f}"
              f" s per episode, median episode {sim['median_wall_s']:.2f} s")
        for seed, instruction, reason in sim["failures"]:
            print(f"  seed {seed}: {instruction!r}: {reason}")
    print(f"saved {common.save(args.out, {'args': vars(args), **report})}")


if __name__ == "__main__":
    main()
