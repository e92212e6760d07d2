"""Wall time of pick_place episodes with the default stack, broken down by stage.

Runs the same runner `python -m fmrobot.run` uses (default configs plus overrides),
without video, and reports medians over the episodes.
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/episode_breakdown.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. perception=oracle")
    args = parser.parse_args()

    from fmrobot.compose import compose_plain
    from fmrobot.stack import build_runner

    config = compose_plain("run", ["task=pick_place", *args.overrides])
    runner = build_runner(config)
    results = []
    try:
        runner.run_episode(args.seed)  # warm-up: first renders and mesh caches
        for seed in range(args.seed, args.seed + args.episodes):
            results.append(runner.run_episode(seed).result)
    finally:
        runner.env.close()

    stages = list(type(results[0].latency).model_fields)
    medians = {stage: statistics.median(getattr(r.latency, stage) for r in results) for stage in stages}
    wall = statistics.median(r.wall_time for r in results)
    rows = [[stage, medians[stage], 100 * medians[stage] / wall] for stage in stages]
    rows.append(["episode (wall)", wall, 100.0])
    successes = sum(r.success for r in results)
    print(f"pick_place, {args.episodes} episodes (seeds {args.seed}..{args.seed + args.episodes - 1}), "
          f"{successes} succeeded; medians in seconds")
    print(common.table(["stage", "median s", "% of episode"], rows))
    print(f"median control steps per episode: {statistics.median(r.env_steps for r in results)}")
    saved = common.save(args.out, {
        "episodes": args.episodes, "seed": args.seed, "overrides": args.overrides, "successes": successes,
        "median_stage_seconds": medians, "median_wall_seconds": wall,
        "wall_seconds": [r.wall_time for r in results],
        "per_episode": [r.latency.model_dump() for r in results],
    })
    print(f"saved {saved}")


if __name__ == "__main__":
    main()
