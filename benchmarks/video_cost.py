"""What a video costs an episode: pick_place episodes with and without video, side by side.

The same seeds run twice in one process, once recording a video and once not, alternating
which goes first, so that a load change on this shared machine hits both sides alike.
An episode's time is what the runner measures (`result.wall_time`, which includes drawing
the video's frames, booked as "render"); encoding the MP4 (outputs.write_video) is
timed apart and added for the total.

    python -m benchmarks.video_cost --episodes 10 perception=oracle planner=oracle
    python -m benchmarks.video_cost --episodes 6            # the default stack
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
    parser.add_argument("--episodes", type=int, default=10, help="seeds; each runs with and without video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/video_cost.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. perception=oracle planner=oracle")
    args = parser.parse_args()

    from fmrobot.compose import compose_plain
    from fmrobot.outputs import write_video
    from fmrobot.stack import build_runner

    config = compose_plain("run", ["task=pick_place", *args.overrides])
    runner = build_runner(config)
    load_before = os.getloadavg()
    rows: dict[bool, list[dict]] = {False: [], True: []}
    try:
        runner.run_episode(args.seed, record_video=True)  # warm-up: first renders, mesh caches, both scenes
        with tempfile.TemporaryDirectory() as scratch:
            for k, seed in enumerate(range(args.seed, args.seed + args.episodes)):
                for video in ((False, True) if k % 2 == 0 else (True, False)):
                    outcome = runner.run_episode(seed, record_video=video)
                    started = time.perf_counter()
                    write_video(Path(scratch), seed, outcome.video, fps=getattr(runner.env, "video_fps", 10.0))
                    encode = time.perf_counter() - started
                    result = outcome.result
                    rows[video].append({"seed": seed, "success": result.success, "wall": result.wall_time,
                                        "encode": encode, "frames": len(outcome.video),
                                        "render": result.latency.render, "simulation": result.latency.simulation})
    finally:
        runner.env.close()
    load_after = os.getloadavg()

    def median(video: bool, key: str) -> float:
        return statistics.median(r[key] for r in rows[video])

    table = []
    for key in ("wall", "render", "simulation", "encode"):
        table.append([key, median(False, key), median(True, key), median(True, key) / max(median(False, key), 1e-9)])
    totals = {video: sum(r["wall"] + r["encode"] for r in rows[video]) for video in (False, True)}
    ratio = median(True, "wall") / median(False, "wall")
    print(f"pick_place {' '.join(args.overrides) or '(default stack)'}: {args.episodes} seeds from {args.seed}, "
          f"each with and without video; medians in seconds")
    print(common.table(["per episode", "no video", "video", "ratio"], table))
    print(f"median episode wall time: {median(False, 'wall'):.3f} s without video, {median(True, 'wall'):.3f} s with "
          f"({median(True, 'frames'):.0f} frames): ratio {ratio:.2f}")
    print(f"total incl. encoding: {totals[False]:.2f} s without video, {totals[True]:.2f} s with "
          f"(ratio {totals[True] / totals[False]:.2f})")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    saved = common.save(args.out, {
        "overrides": args.overrides, "episodes": args.episodes, "seed": args.seed, "ratio": ratio,
        "median_wall": {"no_video": median(False, "wall"), "video": median(True, "wall")},
        "totals": {"no_video": totals[False], "video": totals[True]},
        "load_before": load_before, "load_after": load_after, "rows": {str(k): v for k, v in rows.items()},
        "environment": common.environment(),
    })
    print(f"saved {saved}")


if __name__ == "__main__":
    main()
