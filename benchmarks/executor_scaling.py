"""Episode throughput of the local and Ray executors at 1 and 2 workers, side by side.

The same episodes (pick_place, oracle stack, no video) run through
  local 1  - LocalExecutor in this process,
  local 2  - LocalExecutor with two spawned worker processes,
  ray 1/2  - RayExecutor with one or two actors on a Ray instance it starts itself,
as `python -m fmrobot.run executor=...` would run them. Wall time is end to end: worker or
actor start, building each worker's stack, Ray's start and shutdown, all episodes. The
configurations are interleaved, in reversed order every other round; medians over rounds.
Every configuration must give the same per-seed outcome, or the script stops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

CONFIGS = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))


def run_once(kind: str, workers: int, config: dict, seeds: tuple[int, ...], run_dir: Path) -> dict:
    from fmrobot.execution import RunJob
    from fmrobot.execution.local import LocalExecutor, LocalExecutorConfig
    from fmrobot.execution.ray import RayExecutor, RayExecutorConfig

    executor = (LocalExecutor(LocalExecutorConfig(workers=workers)) if kind == "local"
                else RayExecutor(RayExecutorConfig(workers=workers)))
    outcomes: dict[int, tuple] = {}
    first: list[float] = []
    start = time.perf_counter()

    def record(result) -> None:
        if not first:
            first.append(time.perf_counter() - start)
        outcomes[result.seed] = (result.success, result.env_steps, result.skill_calls, result.failure_reason)

    executor.run(RunJob(config=config, run_dir=str(run_dir), seeds=seeds), record)
    wall = time.perf_counter() - start
    return {"wall": wall, "first_result": first[0], "outcomes": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "executor_scaling.json"))
    args = parser.parse_args()

    from fmrobot.compose import compose_plain

    config = compose_plain("run", ["task=pick_place", "perception=oracle", "planner=oracle", "policy=scripted",
                                   "video=none"])
    seeds = tuple(range(args.episodes))
    runs: dict[tuple[str, int], list[dict]] = {c: [] for c in CONFIGS}
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            order = CONFIGS if round_index % 2 == 0 else tuple(reversed(CONFIGS))
            for kind, workers in order:
                run = run_once(kind, workers, config, seeds, Path(tmp) / f"{kind}{workers}_{round_index}")
                runs[(kind, workers)].append(run)
                print(f"round {round_index}: {kind} workers={workers}: {run['wall']:.1f} s", file=sys.stderr)
    reference = runs[CONFIGS[0]][0]["outcomes"]
    for key, done in runs.items():
        for run in done:
            if run["outcomes"] != reference:
                raise SystemExit(f"{key} gave different per-seed outcomes than {CONFIGS[0]}")

    rows, summary = [], {}
    for kind, workers in CONFIGS:
        wall = statistics.median(r["wall"] for r in runs[(kind, workers)])
        first = statistics.median(r["first_result"] for r in runs[(kind, workers)])
        single = statistics.median(r["wall"] for r in runs[(kind, 1)])
        entry = {"wall_s": wall, "episodes_per_s": args.episodes / wall, "speedup_vs_1_worker": single / wall,
                 "first_result_s": first, "walls_s": [r["wall"] for r in runs[(kind, workers)]]}
        summary[f"{kind}_{workers}"] = entry
        rows.append([kind, workers, wall, entry["episodes_per_s"], entry["speedup_vs_1_worker"], first])
    successes = sum(outcome[0] for outcome in reference.values())
    print(common.table(["executor", "workers", "wall s", "episodes/s", "speedup vs 1", "first result s"], rows))
    print(f"{args.episodes} pick_place episodes (oracle stack), {successes} succeeded in every configuration; "
          f"median of {args.rounds} rounds; load average {load_before} before, {_load()} after")
    path = common.save(args.out, {"episodes": args.episodes, "rounds": args.rounds, "successes": successes,
                                  "load_average_before": load_before, "load_average_after": _load(),
                                  "results": summary})
    print(f"saved {path}")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
