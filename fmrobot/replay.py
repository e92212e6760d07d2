"""`python -m fmrobot.replay <dataset> [--episodes 0 3 7]`: replay recorded episodes and check their endings.

Prints one line per episode and exits with status 1 when any of them ends differently.
"""

from __future__ import annotations

import argparse
import sys

from fmrobot.errors import FmrobotError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmrobot.replay", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a dataset folder written by python -m fmrobot.collect (zarr or LeRobot v3.0)")
    parser.add_argument("--episodes", type=int, nargs="*", help="episode indices (default: all)")
    args = parser.parse_args(argv)
    try:
        from fmrobot.data.dataset import open_dataset
        from fmrobot.data.open_loop_replay import replay
        from fmrobot.stack import RunSettings, build_env

        dataset = open_dataset(args.dataset)  # zarr or LeRobot v3.0
        indices = args.episodes if args.episodes else range(dataset.num_episodes)
        records = [dataset.episode(i) for i in indices]
        settle = RunSettings.from_config(dataset.config).runner.settle_seconds
        env = build_env(dataset.config)
    except (FmrobotError, IndexError) as error:
        print(f"fmrobot: error: {error}", file=sys.stderr)
        return 2
    different = 0
    try:
        for index, record in zip(indices, records):
            outcome = replay(env, record, settle)
            different += not outcome.matches
            print(f"episode {index}: {outcome.describe()}", flush=True)
    finally:
        env.close()
    print(f"replay: {len(records) - different}/{len(records)} episodes ended as recorded", flush=True)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
