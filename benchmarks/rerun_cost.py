"""What a Rerun recording costs an episode: pick_place episodes with record.rerun off and on, side by side.

The same seeds run twice in one process through the executors' `run_one` (which writes the
trace, the video and, when on, the .rrd), once without and once with the recording,
alternating which goes first, so that a load change on this shared machine hits both sides
alike. The time per episode is run_one's whole time: the episode, then writing its files.
With --video all every episode also records a video, whose frames then go into the .rrd too.

    python -m benchmarks.rerun_cost --episodes 10 perception=oracle planner=oracle
    python -m benchmarks.rerun_cost --episodes 10 --video all perception=oracle planner=oracle
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10, help="seeds; each runs with and without the recording")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", choices=("none", "all"), default="none", help="which episodes record a video")
    parser.add_argument("--out", default="benchmarks/results/rerun_cost.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. perception=oracle planner=oracle")
    args = parser.parse_args()

    from fmrobot.compose import compose_plain
    from fmrobot.execution import RunJob, run_one
    from fmrobot.stack import build_runner

    config = compose_plain("run", ["task=pick_place", *args.overrides])
    runner = build_runner(config)
    seeds = tuple(range(args.seed, args.seed + args.episodes))
    videos = frozenset(seeds) | {args.seed} if args.video == "all" else frozenset()
    load_before = os.getloadavg()
    rows: dict[bool, list[dict]] = {False: [], True: []}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            jobs = {rerun: RunJob(config=config, run_dir=str(Path(scratch) / f"rerun_{rerun}"), seeds=seeds,
                                  video_seeds=videos, rerun=rerun) for rerun in (False, True)}
            for rerun in (False, True):  # warm-up: first renders, caches, and importing rerun-sdk
                run_one(runner, jobs[rerun], args.seed)
            for k, seed in enumerate(seeds):
                for rerun in ((False, True) if k % 2 == 0 else (True, False)):
                    started = time.perf_counter()
                    result = run_one(runner, jobs[rerun], seed)
                    took = time.perf_counter() - started
                    size = (Path(jobs[rerun].run_dir) / result.rerun_file).stat().st_size if result.rerun_file else 0
                    rows[rerun].append({"seed": seed, "success": result.success, "total": took,
                                        "episode": result.wall_time, "writing": took - result.wall_time,
                                        "rrd_bytes": size, "env_steps": result.env_steps})
    finally:
        runner.env.close()
    load_after = os.getloadavg()

    def median(rerun: bool, key: str) -> float:
        return statistics.median(r[key] for r in rows[rerun])

    table = [[key, median(False, key), median(True, key), median(True, key) - median(False, key)]
             for key in ("total", "episode", "writing")]
    print(f"pick_place {' '.join(args.overrides) or '(default stack)'}, video {args.video}: {args.episodes} seeds "
          f"from {args.seed}, each with record.rerun off and on; medians in seconds")
    print(common.table(["per episode", "rerun off", "rerun on", "difference"], table))
    print(f"median .rrd size: {median(True, 'rrd_bytes') / 1e6:.2f} MB")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    saved = common.save(args.out, {
        "overrides": args.overrides, "episodes": args.episodes, "seed": args.seed, "video": args.video,
        "median_total": {"off": median(False, "total"), "on": median(True, "total")},
        "median_rrd_bytes": median(True, "rrd_bytes"),
        "load_before": load_before, "load_after": load_after, "rows": {str(k): v for k, v in rows.items()},
        "environment": common.environment(),
    })
    print(f"saved {saved}")


if __name__ == "__main__":
    main()
