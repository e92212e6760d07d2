"""`python -m fmrobot.collect task=pick_place episodes=N`: record demonstrations into a dataset.

Episodes run through the configured executor (in parallel with executor.workers=2 or
executor=ray); each worker writes its episodes' frames to a staging folder next to the
dataset, and the dataset (fmrobot/data/dataset.py) is assembled from them in seed order
once all are in. A run that is interrupted resumes: the staged episodes are kept and
only the missing seeds run again, so every seed appears once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from fmrobot import registry
from fmrobot.cli import hydra_command, plain
from fmrobot.errors import ConfigError, FmrobotError
from fmrobot.outputs import episode_stem, write_results
from fmrobot.paths import cache_root
from fmrobot.provenance import commit
from fmrobot.stack import RunSettings, resolve_components
from fmrobot.types import EpisodeResult


class DatasetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    overwrite: bool = False
    format: Literal["zarr", "lerobot"] = "zarr"
    cameras: tuple[str, ...] = ()  # camera streams (format=lerobot): names of env.cameras or env.video_camera
    image_size: tuple[int, int] | None = None  # (width, height) of every camera stream; None: each camera's own


def default_dataset_path(config: dict[str, Any]) -> Path:
    """Where demonstrations of this task, robot, level, seeds and count are kept unless told otherwise."""
    task = config["task"].get("name", "task")
    robot = (config.get("robot") or {}).get("name", "robot")
    level = config["task"].get("level") or "none"
    suffix = "lerobot" if (config.get("dataset") or {}).get("format") == "lerobot" else "zarr"
    name = f"{task}-{robot}-{level}-seed{config.get('seed', 0)}-n{config.get('episodes', 1)}.{suffix}"
    return cache_root() / "datasets" / name


def collect(config: dict[str, Any], *, quiet: bool = False) -> Path:
    """Record the episodes `config` asks for and write the dataset; return its path."""
    from tqdm import tqdm

    from fmrobot.data.dataset import dump_info, write_dataset
    from fmrobot.data.recording import EpisodeRecord
    from fmrobot.execution import RunJob

    settings = RunSettings.from_config(config)
    try:
        dataset = DatasetSettings.model_validate(config.get("dataset") or {})
    except ValidationError as error:
        raise ConfigError(f"invalid dataset settings: {registry.describe_errors(error)}") from None
    cameras = _cameras(config, dataset)
    parts = resolve_components(config)
    if cameras:  # the env records a video frame every control step, one for each dataset row
        config = {**config, "video": {**(config.get("video") or {}), "fps": config["env"].get("control_hz", 20)}}
    path = Path(dataset.path).expanduser() if dataset.path else default_dataset_path(config)
    if path.exists():
        if not dataset.overwrite:
            raise ConfigError(f"a dataset exists at {path}; use it, pass dataset.overwrite=true to replace it, "
                              "or choose dataset.path=<another folder>")
        shutil.rmtree(path)
    staging = path.with_name(path.name + ".staging")
    fingerprint = _fingerprint(config)
    if staging.exists() and _read_fingerprint(staging) != fingerprint:
        shutil.rmtree(staging)  # left by a different collection: nothing in it is ours
    episodes_dir = staging / "episodes"
    episodes_dir.mkdir(parents=True, exist_ok=True)
    (staging / "config.json").write_text(json.dumps({"fingerprint": fingerprint, "config": config}, default=str))

    seeds = list(range(settings.seed, settings.seed + settings.episodes))
    todo = tuple(s for s in seeds if not (episodes_dir / f"{episode_stem(s)}.npz").exists())
    results: list[EpisodeResult] = []
    started = time.perf_counter()
    if todo:
        executor = parts["executor"].build()
        job = RunJob(config=config, run_dir=str(staging), seeds=todo, record_dir=str(episodes_dir),
                     cameras=cameras or None)
        with tqdm(total=len(seeds), initial=len(seeds) - len(todo), desc=f"collect {config['task'].get('name')}",
                  unit="ep", file=sys.stderr, dynamic_ncols=True, disable=quiet) as bar:

            def record(result: EpisodeResult) -> None:
                results.append(result)
                write_results(staging, results, config)
                bar.update(1)
                bar.set_postfix(success=f"{sum(r.success for r in results)}/{len(results)}")

            executor.run(job, record)
    missing = [s for s in seeds if not (episodes_dir / f"{episode_stem(s)}.npz").exists()]
    if missing:
        reasons = {r.seed: r.failure_reason for r in results if r.seed in missing}
        detail = "; ".join(f"seed {s}: {reasons.get(s, 'no record')}" for s in missing[:5])
        raise FmrobotError(f"{len(missing)} of {len(seeds)} episodes left no recording ({detail}); "
                           f"the other episodes stay in {staging}, run the same command again to retry the rest")
    records = [EpisodeRecord.load(episodes_dir / f"{episode_stem(s)}.npz") for s in seeds]
    info = dump_info({
        "task": config["task"].get("name"), "fps": float(config["env"].get("control_hz", 20)),
        "robot": (config.get("robot") or {}).get("name"), "level": config["task"].get("level"),
        "config": config, "commit": commit(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m fmrobot.collect", *sys.argv[1:]]) if sys.argv[0].endswith("collect.py")
        else None,
        "collection_seconds": round(time.perf_counter() - started, 1),
    })
    if dataset.format == "lerobot":
        from fmrobot.data.lerobot_cameras import episode_video_path, load_episode_sums
        from fmrobot.data.lerobot_writer import CameraStream, write_lerobot

        staged = [episodes_dir / f"{episode_stem(s)}.npz" for s in seeds]
        sums = [load_episode_sums(p) for p in staged] if cameras else []
        streams = {name: CameraStream(width=c["width"], height=c["height"],
                                      videos=[episode_video_path(p, name) for p in staged],
                                      sums=[episode[name] for episode in sums]) for name, c in cameras.items()}
        write_lerobot(path, records, info, fps=int(config["env"].get("control_hz", 20)), robot_type=info["robot"],
                      cameras=streams)
    else:
        write_dataset(path, records, info)
    shutil.rmtree(staging)
    succeeded = sum(r.success for r in records)
    print(f"collect: {succeeded}/{len(records)} demonstrations succeeded; dataset in {path}", flush=True)
    return path


def _fingerprint(config: dict[str, Any]) -> str:
    """Identifies what the staged episodes were recorded with, apart from how many and where."""
    relevant = {k: v for k, v in config.items() if k not in ("episodes", "dataset", "executor", "video", "hydra")}
    dataset = config.get("dataset") or {}
    relevant["cameras"] = [dataset.get("cameras") or [], dataset.get("image_size")]  # staged images or none
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cameras(config: dict[str, Any], dataset: DatasetSettings) -> dict[str, dict]:
    """Name -> camera config of each camera stream asked for (checked against the env's cameras)."""
    if not dataset.cameras:
        return {}
    if dataset.format != "lerobot":
        raise ConfigError(f"dataset.cameras={list(dataset.cameras)} needs dataset.format=lerobot (the zarr layout "
                          "holds state only)")
    env_config = registry.resolve("env", config["env"]).config
    if env_config is None or not hasattr(env_config, "video_camera"):
        raise ConfigError(f"env={config['env'].get('name')} has no cameras fmrobot can record a dataset from")
    from fmrobot.data.lerobot_cameras import dataset_cameras

    return dataset_cameras(env_config, dataset.cameras, dataset.image_size)


def _read_fingerprint(staging: Path) -> str | None:
    try:
        return json.loads((staging / "config.json").read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


main = hydra_command("collect", lambda cfg: collect(plain(cfg)))


if __name__ == "__main__":
    main()
