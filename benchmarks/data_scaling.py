"""Success of learned policies against the number of demonstrations they were trained on.

For each policy and each count N it trains on the first N successful demonstrations of
one dataset (`python -m fmrobot.train policy=<p> task=pick_place train.demos=N`, the
dataset collected first if missing) and runs the trained checkpoint on the evaluation
seeds with oracle perception and plan. Trained checkpoints and per-seed results are kept
in --out, so a rerun only does what is missing. Writes results.json, results.md and
data_scaling.png.

    python -m benchmarks.data_scaling                          # bc, diffusion x 10, 50, 200 demos, seeds 0-49
    python -m benchmarks.data_scaling --policies diffusion --demos 10 50 --seeds 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from benchmarks import common
from benchmarks.harness.definition import compose_config
from benchmarks.harness.stats import wilson_interval


def evaluate(policy: str, checkpoint: Path | None, seeds: int, workers: int,
             run_dir: Path) -> list[dict]:
    """Per-seed results of the policy on pick_place, run by `python -m fmrobot.run`'s own `run`."""
    from omegaconf import OmegaConf

    from fmrobot.run import run

    results_file = run_dir / "results.json"
    if not results_file.exists():
        overrides = [f"policy.checkpoint={checkpoint}"] if checkpoint else []
        config = compose_config(["task=pick_place", "perception=oracle", "planner=oracle", f"policy={policy}",
                                 *overrides, f"episodes={seeds}", "video=none", f"executor.workers={workers}"])
        run(OmegaConf.create(config), run_dir)
    return sorted(json.loads(results_file.read_text())["episodes"], key=lambda r: r["seed"])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for policy in sorted({r["policy"] for r in rows if r["demos"]}):
        mine = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["demos"])
        x = [r["demos"] for r in mine]
        y = [100 * r["rate"] for r in mine]
        low = [max(0.0, 100 * (r["rate"] - r["ci"][0])) for r in mine]
        high = [max(0.0, 100 * (r["ci"][1] - r["rate"])) for r in mine]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=policy)
    scripted = [r for r in rows if r["policy"] == "scripted"]
    if scripted:
        ax.axhline(100 * scripted[0]["rate"], color="gray", linestyle="--", label="scripted")
    ax.set_xscale("log")
    ax.set_xlabel("demonstrations")
    ax.set_ylabel("success (%), 95% Wilson interval")
    ax.set_ylim(-3, 103)
    ax.set_title("pick_place, oracle perception and plan")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure(policy: str, demos: int | None, seeds: int, workers: int, out: Path) -> dict:
    """Train `policy` on `demos` demonstrations unless its cell has a checkpoint, then evaluate it;
    `demos=None` evaluates the scripted policy."""
    from fmrobot.train import train

    cell = out / (f"{policy}-n{demos}" if demos else policy)
    checkpoint = None
    if demos is not None:
        checkpoint = cell / "policy.pt"
        if not checkpoint.exists():
            config = compose_config([f"policy={policy}", "task=pick_place", f"train.demos={demos}",
                                     f"train.out_dir={cell}"], config_name="train")
            train(config, command=f"benchmarks/data_scaling.py {policy} {demos}")
    results = evaluate(policy, checkpoint, seeds, workers, cell / "eval")
    successes = sum(r["success"] for r in results)
    print(f"{policy} {demos or '-'} demos: {successes}/{len(results)}", flush=True)
    return {"policy": policy, "demos": demos, "successes": successes, "episodes": len(results),
            "rate": successes / len(results), "ci": wilson_interval(successes, len(results))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", nargs="+", default=["bc", "diffusion"])
    parser.add_argument("--demos", nargs="+", type=int, default=[10, 50, 200])
    parser.add_argument("--seeds", type=int, default=50, help="evaluation seeds 0..n-1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data_scaling"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pending = [(p, n) for p in args.policies for n in args.demos] + [("scripted", None)]
    rows = [measure(policy, demos, args.seeds, args.workers, out) for policy, demos in pending]
    headers = ["policy", "demos", "success", "95% CI"]
    lines = [[r["policy"], r["demos"] or "-", f"{r['successes']}/{r['episodes']}",
              f"{100 * r['ci'][0]:.0f}-{100 * r['ci'][1]:.0f}%"] for r in rows]
    (out / "results.md").write_text(common.table(headers, lines) + "\n")
    common.save(out / "results.json", {"rows": rows, "seeds": args.seeds})
    plot(rows, out / "data_scaling.png")
    print(common.table(headers, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
