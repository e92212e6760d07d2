"""`python -m fmrobot.data.lerobot_export <zarr dataset> <out folder>`: convert a zarr dataset to LeRobot v3.0.

The zarr layout holds state only, so the export has no camera streams; collect with
`dataset.format=lerobot dataset.cameras=[video]` for those.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from fmrobot.errors import FmrobotError


def export(source: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the zarr dataset at `source` as a LeRobot v3.0 dataset at `out`; return `out`."""
    from fmrobot.data.dataset import DemoDataset
    from fmrobot.data.lerobot_reader import is_lerobot_dataset
    from fmrobot.data.lerobot_writer import write_lerobot
    from fmrobot.errors import ConfigError

    if is_lerobot_dataset(source):
        raise ConfigError(f"{source} is a LeRobot dataset already; export converts a zarr dataset "
                          "(written by python -m fmrobot.collect)")
    dataset = DemoDataset(source)
    if out.exists():
        if not overwrite:
            raise ConfigError(f"{out} exists; pass --overwrite to replace it, or choose another folder")
        shutil.rmtree(out)
    info = {k: v for k, v in dataset.attrs.items() if k not in ("format", "version", "skills", "episodes")}
    info["exported_from"] = str(source)
    fps = float(dataset.attrs.get("fps", 20.0))
    if fps != round(fps):
        raise ConfigError(f"{source} was recorded at {fps} frames per second; LeRobot datasets need a whole number")
    return write_lerobot(out, list(dataset.episodes()), info, fps=int(fps), robot_type=dataset.attrs.get("robot"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmrobot.data.lerobot_export", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a zarr dataset written by python -m fmrobot.collect")
    parser.add_argument("out", type=Path, help="the LeRobot v3.0 folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace `out` if it exists")
    args = parser.parse_args(argv)
    try:
        path = export(args.source, args.out, args.overwrite)
    except FmrobotError as error:
        print(f"fmrobot: error: {error}", file=sys.stderr)
        return 2
    print(f"lerobot_export: {args.source} -> {path} (LeRobot v3.0)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
