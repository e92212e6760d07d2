"""Read a LeRobotDataset v3.0 folder written by fmrobot as the same typed view as a zarr dataset.

`LeRobotDemoDataset` offers what `DemoDataset` does (episodes as `EpisodeRecord`s, skills,
seeds, success), so training takes either. Camera frames are read on request (`frames`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fmrobot.data import lerobot_layout as layout
from fmrobot.data.dataset import FORMAT, VERSION, DemoDataset, frame_timestamps
from fmrobot.errors import ConfigError


def is_lerobot_dataset(path: Path) -> bool:
    return (path / layout.INFO_PATH).is_file()


class LeRobotDemoDataset(DemoDataset):
    """A v3.0 dataset with fmrobot's skill columns, read into memory (video frames excepted)."""

    def __init__(self, path: str | Path):  # not super().__init__: that reads zarr; the same fields come from parquet
        import pyarrow.parquet as pq

        self.path = Path(path)
        if not is_lerobot_dataset(self.path):
            raise ConfigError(f"no LeRobot dataset at {self.path} (expected {layout.INFO_PATH} in it)")
        self.info = json.loads((self.path / layout.INFO_PATH).read_text())
        version = self.info.get("codebase_version")
        if version != layout.CODEBASE_VERSION:
            raise ConfigError(f"{self.path} is a LeRobot dataset of version {version}; fmrobot reads "
                              f"{layout.CODEBASE_VERSION}")
        extras_path = self.path / layout.EXTRAS_PATH
        missing = [k for k in ("skill.index", "skill.call_index", "skill.context", "frame.done")
                   if k not in self.info["features"]]
        if not extras_path.is_file():
            missing.append(layout.EXTRAS_PATH)
        if missing:
            raise ConfigError(f"{self.path} is a LeRobot v3.0 dataset without fmrobot's skill segmentation "
                              f"(missing: {', '.join(missing)}); fmrobot's skill policies train on datasets "
                              "`python -m fmrobot.collect` writes")
        extras = json.loads(extras_path.read_text())
        episodes = pq.read_table(self.path / "meta" / "episodes").to_pydict()
        order = np.argsort(episodes["episode_index"])
        self.episodes_meta = {k: [v[i] for i in order] for k, v in episodes.items()}
        files = sorted(self.path.glob("data/chunk-*/file-*.parquet"))
        if not files:
            expected = layout.DATA_PATH.format(chunk_index=0, file_index=0)
            raise ConfigError(f"{self.path} has no data files (expected {expected})")
        table = pq.read_table(files[0]) if len(files) == 1 else _concat(pq, files)
        table = table.sort_by("index")
        data = {name: _numpy(table.column(name)) for name in table.column_names}

        self.attrs = {"format": FORMAT, "version": VERSION, **{k: v for k, v in extras.items() if k != "episodes"},
                      "fps": float(self.info["fps"]), "episodes": extras["episodes"]}
        self.skills = list(extras["skills"])
        self.data = {
            "observation.state": data["observation.state"].astype(np.float32),
            "action": data["action"].astype(np.float32),
            "skill.index": data["skill.index"].astype(np.int16),
            "skill.call_index": data["skill.call_index"].astype(np.int16),
            "skill.context": data["skill.context"].astype(np.float32),
            "frame.done": data["frame.done"].astype(bool),
            "episode_index": data["episode_index"].astype(np.int32),
            "frame_index": data["frame_index"].astype(np.int32),
        }
        self.episode_ends = np.asarray(self.episodes_meta["dataset_to_index"], dtype=np.int64)
        per_episode = extras["episodes"]
        self.seeds = np.asarray([e["seed"] for e in per_episode], dtype=np.int64)
        self.success = np.asarray([e["success"] for e in per_episode], dtype=bool)
        self.instructions = [str(e["instruction"]) for e in per_episode]
        self.final_states = np.asarray([e["final_state"] for e in per_episode], dtype=np.float32)
        # The zarr layout's timestamps (closing frames share the time of the action before them).
        self.data["timestamp"] = np.concatenate([
            frame_timestamps(self.episode(i), self.attrs["fps"]) for i in range(self.num_episodes)]) \
            if self.num_episodes else np.zeros(0, np.float32)

    @property
    def cameras(self) -> list[str]:
        return [k[len(layout.IMAGE_KEY_PREFIX):] for k, f in self.info["features"].items()
                if f.get("dtype") == "video" and k.startswith(layout.IMAGE_KEY_PREFIX)]

    def frames(self, camera: str, index: int) -> np.ndarray:
        """(T, height, width, 3) uint8: episode `index` as `camera` saw it, one frame per row."""
        from fmrobot.data.lerobot_video import read_video

        if camera not in self.cameras:
            raise ConfigError(f"{self.path} has no camera {camera!r}; it has {', '.join(self.cameras) or 'none'}")
        key = layout.image_key(camera)
        start, end = self.bounds(index)
        meta = self.episodes_meta
        file = self.path / self.info["video_path"].format(
            video_key=key, chunk_index=meta[f"videos/{key}/chunk_index"][index],
            file_index=meta[f"videos/{key}/file_index"][index])
        first = round(meta[f"videos/{key}/from_timestamp"][index] * self.info["fps"])
        images = [image for _, image in read_video(file, first, first + end - start)]
        return np.stack(images) if images else np.zeros((0, *self.info["features"][key]["shape"]), np.uint8)

    def describe(self) -> str:
        cameras = f", cameras {', '.join(self.cameras)}" if self.cameras else ""
        return f"{super().describe()} (LeRobot v3.0{cameras})"


def _concat(pq, files: list[Path]):
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f) for f in files])


def _numpy(column) -> np.ndarray:
    import pyarrow as pa

    column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        values = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), -1)
    return column.to_numpy(zero_copy_only=False)
