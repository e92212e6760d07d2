"""Write demonstrations as a LeRobotDataset v3.0 folder (layout: fmrobot/data/lerobot_layout.py).

Rows are the frames fmrobot records (fmrobot/data/recording.py), one per applied action plus a
closing frame per finished skill; LeRobot's `timestamp` is `frame_index / fps`, so a closing
frame takes one frame period there (in the zarr layout it shares the time of the action before
it). fps is the control rate, and a camera has one video frame per row: the image of the
world when that row's state was observed. Besides LeRobot's columns each row carries what
fmrobot's skill policies train on: `skill.index`, `skill.call_index`, `skill.context`,
`frame.done` (a skill's closing frame); `next.done` marks an episode's last row, as in LeRobot.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fmrobot.data import lerobot_layout as layout
from fmrobot.data.recording import EpisodeRecord


@dataclass(frozen=True)
class CameraStream:
    """One camera's frames of every episode, as fmrobot/data/lerobot_cameras.py stages them."""

    width: int
    height: int
    videos: Sequence[Path]  # per episode, an MP4 of one frame per row (lerobot_video.write_video)
    sums: Sequence[Mapping[str, Any]]  # per episode, lerobot_cameras.pixel_sums of its frames


def write_lerobot(path: Path, episodes: Sequence[EpisodeRecord], info: Mapping[str, Any], *, fps: int,
                  robot_type: str | None, cameras: Mapping[str, CameraStream] | None = None) -> Path:
    """Write `episodes` as a new v3.0 dataset at `path` (which must not exist), with the camera streams
    `cameras` names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        raise FileExistsError(f"{path} exists already; choose another path or delete it")
    if not episodes:
        raise ValueError("no episodes to write")
    cameras = dict(cameras or {})
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    skills = sorted({s for e in episodes for s in e.skills})
    tasks = list(dict.fromkeys(e.instruction for e in episodes))
    lengths = np.asarray([len(e) for e in episodes], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    columns = _frame_columns(episodes, skills, tasks, fps)
    features = _features(columns, cameras, fps)
    table = pa.table({name: _arrow_column(pa, values) for name, values in columns.items()})
    data_file = tmp / layout.DATA_PATH.format(chunk_index=0, file_index=0)
    data_file.parent.mkdir(parents=True)
    pq.write_table(table, data_file)

    stats = {name: _stats(values) for name, values in columns.items()}
    episode_rows: dict[str, list] = {
        "episode_index": list(range(len(episodes))), "tasks": [[e.instruction] for e in episodes],
        "length": lengths.tolist(), "data/chunk_index": [0] * len(episodes), "data/file_index": [0] * len(episodes),
        "dataset_from_index": starts.tolist(), "dataset_to_index": (starts + lengths).tolist(),
    }
    for camera, stream in cameras.items():
        stats[layout.image_key(camera)] = _write_camera(tmp, camera, stream, episodes, fps, starts, episode_rows)
    episode_rows["meta/episodes/chunk_index"] = [0] * len(episodes)
    episode_rows["meta/episodes/file_index"] = [0] * len(episodes)
    episodes_file = tmp / layout.EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_file.parent.mkdir(parents=True)
    pq.write_table(pa.table(episode_rows), episodes_file)
    _write_tasks(pa, pq, tmp / layout.TASKS_PATH, tasks)

    meta = tmp / "meta"
    (meta / "info.json").write_text(json.dumps({
        "codebase_version": layout.CODEBASE_VERSION, "robot_type": robot_type,
        "total_episodes": len(episodes), "total_frames": int(lengths.sum()), "total_tasks": len(tasks),
        "chunks_size": layout.CHUNKS_SIZE, "data_files_size_in_mb": layout.DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": layout.VIDEO_FILES_SIZE_IN_MB, "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"}, "data_path": layout.DATA_PATH,
        "video_path": layout.VIDEO_PATH if cameras else None, "features": features,
    }, indent=2))
    (meta / "stats.json").write_text(json.dumps(stats, indent=2))
    (meta / "fmrobot.json").write_text(json.dumps({
        "skills": skills, **info,
        "episodes": [{"seed": e.seed, "success": bool(e.success), "instruction": e.instruction,
                      "predicates": e.predicates, "calls": e.calls,
                      "final_state": [float(v) for v in e.final_state]} for e in episodes],
    }, default=str))
    tmp.rename(path)  # a dataset appears complete or not at all
    return path


def _frame_columns(episodes: Sequence[EpisodeRecord], skills: list[str], tasks: list[str],
                   fps: int) -> dict[str, np.ndarray]:
    def cat(get) -> np.ndarray:
        return np.concatenate([get(i, e) for i, e in enumerate(episodes)])

    frame_index = cat(lambda i, e: np.arange(len(e), dtype=np.int64))
    return {
        "observation.state": cat(lambda i, e: e.state).astype(np.float32),
        "action": cat(lambda i, e: e.action).astype(np.float32),
        "skill.index": cat(lambda i, e: np.asarray([skills.index(e.skills[k]) for k in e.skill_index],
                                                   dtype=np.int64).reshape(-1)),
        "skill.call_index": cat(lambda i, e: e.call_index.astype(np.int64)),
        "skill.context": cat(lambda i, e: e.context).astype(np.float32),
        "frame.done": cat(lambda i, e: e.done.astype(bool)),
        "next.done": cat(lambda i, e: np.arange(len(e)) == len(e) - 1),
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": cat(lambda i, e: np.full(len(e), i, dtype=np.int64)),
        "index": np.arange(len(frame_index), dtype=np.int64),
        "task_index": cat(lambda i, e: np.full(len(e), tasks.index(e.instruction), dtype=np.int64)),
    }


def _features(columns: Mapping[str, np.ndarray], cameras: Mapping[str, CameraStream], fps: int) -> dict[str, Any]:
    names = {"observation.state": layout.STATE_NAMES, "action": layout.ACTION_NAMES,
             "skill.context": layout.CONTEXT_NAMES}
    features: dict[str, Any] = {}
    for name, values in columns.items():
        features[name] = {"dtype": str(values.dtype), "shape": list(values.shape[1:]) or [1],
                          "names": names.get(name)}
    for camera, stream in cameras.items():
        from fmrobot.data.lerobot_video import CODEC, PIX_FMT

        width, height = stream.width, stream.height
        features[layout.image_key(camera)] = {
            "dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": CODEC, "video.pix_fmt": PIX_FMT,
                     "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False},
        }
    return features


def _arrow_column(pa, values: np.ndarray):
    if values.ndim == 1:
        return pa.array(values)
    # A vector per row: a fixed-size list, as LeRobot (Hugging Face datasets' Sequence) stores it.
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _stats(values: np.ndarray) -> dict[str, list]:
    x = values.astype(np.float64).reshape(len(values), -1)
    x = np.nan_to_num(x, nan=0.0)  # an unknown target yaw (nan) counts as 0 here
    return {"min": x.min(axis=0).tolist(), "max": x.max(axis=0).tolist(), "mean": x.mean(axis=0).tolist(),
            "std": x.std(axis=0).tolist(), "count": [len(x)]}


def _write_camera(root: Path, camera: str, stream: CameraStream, episodes: Sequence[EpisodeRecord], fps: int,
                  starts: np.ndarray, episode_rows: dict[str, list]) -> dict[str, list]:
    """The episodes' videos joined into one MP4 in row order; returns the camera's statistics."""
    from fmrobot.data.lerobot_cameras import image_stats
    from fmrobot.data.lerobot_video import concat_videos

    for position, (episode, sums) in enumerate(zip(episodes, stream.sums, strict=True)):
        if sums["frames"] != len(episode):
            raise ValueError(f"camera {camera!r} has {sums['frames']} frames for episode {position} "
                             f"(seed {episode.seed}), which has {len(episode)} rows")
    key = layout.image_key(camera)
    out = root / layout.VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
    written, rows = concat_videos(stream.videos, out, fps), sum(len(e) for e in episodes)
    if written != rows:
        raise ValueError(f"the videos of camera {camera!r} hold {written} frames for {rows} rows")
    ends = starts + np.asarray([len(e) for e in episodes])
    episode_rows[f"videos/{key}/chunk_index"] = [0] * len(episodes)
    episode_rows[f"videos/{key}/file_index"] = [0] * len(episodes)
    episode_rows[f"videos/{key}/from_timestamp"] = (starts / fps).tolist()
    episode_rows[f"videos/{key}/to_timestamp"] = (ends / fps).tolist()
    return image_stats(stream.sums)


def _write_tasks(pa, pq, path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes a frame indexed by task: LeRobot reads it with pandas and takes a
    task's text from the index, so the pandas metadata saying so is part of the format."""
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "fmrobot"}, "pandas_version": "2.2.0",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)
