"""What camera streams cost a collection: the same pick_place demonstrations collected three ways.

`python -m fmrobot.collect` runs in this process for the same seeds as a zarr dataset, a LeRobot
dataset of state only, and a LeRobot dataset with the video camera as MP4 (one frame per row at
the control rate). Each time is the whole collection (episodes, staging, writing the dataset,
encoding the video) divided by the episodes. A warm-up collection of one episode comes first,
so start-up (imports, first scene) counts for none of them. The datasets are kept in --out-dir.

    python -m benchmarks.lerobot_collection_cost --episodes 10 --seed 1000 --out-dir /tmp/lerobot-cost
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="executor.workers of every collection")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/lerobot-collection-cost"))
    parser.add_argument("--out", default="benchmarks/results/lerobot_collection_cost.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the collect config")
    args = parser.parse_args()

    from fmrobot.collect import collect
    from fmrobot.compose import compose_plain

    variants = {
        "zarr": ["dataset.format=zarr"],
        "lerobot_state": ["dataset.format=lerobot"],
        "lerobot_video": ["dataset.format=lerobot", "dataset.cameras=[video]"],
    }
    shutil.rmtree(args.out_dir, ignore_errors=True)
    base = ["task=pick_place", f"executor.workers={args.workers}", *args.overrides]
    warm = compose_plain("collect", [*base, "episodes=1", f"seed={args.seed}", "dataset.cameras=[video]",
                                     "dataset.format=lerobot", f"dataset.path={args.out_dir / 'warmup'}"])
    collect(warm, quiet=True)
    load_before = os.getloadavg()
    rows = {}
    for name, extra in variants.items():
        path = args.out_dir / f"{name}{'.zarr' if name == 'zarr' else ''}"
        config = compose_plain("collect", [*base, f"episodes={args.episodes}", f"seed={args.seed}",
                                           f"dataset.path={path}", *extra])
        started = time.perf_counter()
        collect(config, quiet=True)
        seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        rows[name] = {"seconds_per_episode": round(seconds / args.episodes, 3), "total_seconds": round(seconds, 2),
                      "megabytes": round(size / 1e6, 2), "path": str(path)}
    load_after = os.getloadavg()
    ratio = rows["lerobot_video"]["seconds_per_episode"] / rows["lerobot_state"]["seconds_per_episode"]
    report = {"episodes": args.episodes, "seed": args.seed, "workers": args.workers, "variants": rows,
              "video_over_state_ratio": round(ratio, 2), "loadavg_before": load_before, "loadavg_after": load_after}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for name, row in rows.items():
        print(f"{name:14s} {row['seconds_per_episode']:6.2f} s/episode  {row['megabytes']:7.2f} MB")
    print(f"cameras / state only: {ratio:.2f}x; load average {load_before[0]:.2f} -> {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
