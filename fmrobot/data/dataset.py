"""Demonstration datasets on disk: a zarr group in the layout of Diffusion Policy's replay buffer.

```
<name>.zarr/
  zarr.json                    attributes: format, version, task, fps, skills, the run config, per-episode extras
  data/observation.state       (N, 9)  ee position, ee quaternion (x, y, z, w), gripper width, gripper max width
  data/action                  (N, 8)  commanded ee position, ee quaternion, gripper closure 0..1
  data/skill.index             (N,)    index into the `skills` attribute
  data/skill.call_index        (N,)    which skill call of the episode the frame belongs to
  data/skill.context           (N, 10) anchor xyz, target extent xyz, target yaw (nan: unknown), held extent xyz
  data/frame.done              (N,)    the closing frame of a finished skill (not an applied action)
  data/episode_index           (N,)
  data/frame_index             (N,)
  data/timestamp               (N,)    seconds since the episode started
  meta/episode_ends            (E,)    exclusive end of each episode in the frame arrays
  meta/episode_seed, meta/episode_success, meta/episode_instruction, meta/episode_final_state
```

Frames of all episodes are concatenated along the first axis; `meta/episode_ends` cuts
them apart. Any zarr reader opens it (`zarr.open_group(path)`); `DemoDataset` is the
typed view fmrobot uses. The README says why this and not the LeRobotDataset layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from fmrobot.data.recording import EpisodeRecord
from fmrobot.errors import ConfigError

FORMAT = "fmrobot-demos"
VERSION = 1


def write_dataset(path: Path, episodes: Sequence[EpisodeRecord], info: dict[str, Any]) -> Path:
    """Write `episodes` (in the given order) as a new dataset at `path`, replacing nothing: the
    folder must not exist yet."""
    import zarr

    if path.exists():
        raise FileExistsError(f"{path} exists already; choose another path or delete it")
    if not episodes:
        raise ValueError("no episodes to write")
    skills = sorted({s for e in episodes for s in e.skills})
    ends = np.cumsum([len(e) for e in episodes]).astype(np.int64)
    fps = float(info.get("fps", 20.0))

    def cat(get) -> np.ndarray:
        return np.concatenate([get(i, e) for i, e in enumerate(episodes)])

    columns = {
        "data/observation.state": cat(lambda i, e: e.state),
        "data/action": cat(lambda i, e: e.action),
        "data/skill.index": cat(lambda i, e: np.asarray([skills.index(e.skills[i]) for i in e.skill_index],
                                                     dtype=np.int16).reshape(-1)),
        "data/skill.call_index": cat(lambda i, e: e.call_index),
        "data/skill.context": cat(lambda i, e: e.context),
        "data/frame.done": cat(lambda i, e: e.done),
        "data/episode_index": cat(lambda i, e: np.full(len(e), i, dtype=np.int32)),
        "data/frame_index": cat(lambda i, e: np.arange(len(e), dtype=np.int32)),
        "data/timestamp": cat(lambda i, e: frame_timestamps(e, fps)),
        "meta/episode_ends": ends,
        "meta/episode_seed": np.asarray([e.seed for e in episodes], dtype=np.int64),
        "meta/episode_success": np.asarray([e.success for e in episodes], dtype=bool),
        "meta/episode_final_state": np.stack([e.final_state for e in episodes]).astype(np.float32),
    }
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    root = zarr.open_group(str(tmp), mode="w")
    for name, values in columns.items():
        chunks = (min(len(values), 16384),) + values.shape[1:]
        root.create_array(name, data=values, chunks=chunks)
    instructions = root.create_array("meta/episode_instruction", shape=(len(episodes),), dtype=str)
    instructions[:] = np.asarray([e.instruction for e in episodes])
    root.attrs.update({
        "format": FORMAT, "version": VERSION, "skills": skills, "fps": fps, **info,
        "episodes": [{"predicates": e.predicates, "calls": e.calls} for e in episodes],
    })
    tmp.rename(path)  # a dataset appears complete or not at all
    return path


def frame_timestamps(episode: EpisodeRecord, fps: float) -> np.ndarray:
    # closing frames share the time of the action before them: no time passes between
    applied = np.cumsum(~episode.done) - (~episode.done)
    return (applied / fps).astype(np.float32)


class DemoDataset:
    """A dataset written by `write_dataset`, read into memory (a few MB for hundreds of episodes)."""

    def __init__(self, path: str | Path):
        import zarr

        self.path = Path(path)
        if not (self.path / "zarr.json").exists():
            raise ConfigError(f"no demonstration dataset at {self.path} (expected a zarr group written by "
                              "`python -m fmrobot.collect`)")
        root = zarr.open_group(str(self.path), mode="r")
        attrs = dict(root.attrs)
        if attrs.get("format") != FORMAT:
            raise ConfigError(f"{self.path} is a zarr group but not an fmrobot demonstration dataset "
                              f"(format {attrs.get('format')!r}, expected {FORMAT!r})")
        if attrs.get("version") != VERSION:
            raise ConfigError(f"{self.path} has dataset version {attrs.get('version')}; this fmrobot reads {VERSION}")
        self.attrs = attrs
        self.skills: list[str] = list(attrs["skills"])
        self.data = {name: root[f"data/{name}"][:] for name in root["data"].array_keys()}
        self.episode_ends = root["meta/episode_ends"][:]
        self.seeds = root["meta/episode_seed"][:]
        self.success = root["meta/episode_success"][:]
        self.instructions = [str(s) for s in root["meta/episode_instruction"][:]]
        self.final_states = root["meta/episode_final_state"][:]

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def num_frames(self) -> int:
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def config(self) -> dict[str, Any]:
        """The composed run config the episodes were recorded with."""
        return self.attrs["config"]

    def bounds(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.num_episodes:
            raise IndexError(f"episode {index} out of range: the dataset has {self.num_episodes} (0..{self.num_episodes - 1})")
        start = int(self.episode_ends[index - 1]) if index else 0
        return start, int(self.episode_ends[index])

    def episode(self, index: int) -> EpisodeRecord:
        start, end = self.bounds(index)
        cut = {k: v[start:end] for k, v in self.data.items()}
        extra = self.attrs["episodes"][index]
        return EpisodeRecord(
            seed=int(self.seeds[index]), task=str(self.attrs.get("task", "")), instruction=self.instructions[index],
            success=bool(self.success[index]), predicates=dict(extra["predicates"]), skills=list(self.skills),
            state=cut["observation.state"], action=cut["action"], skill_index=cut["skill.index"],
            call_index=cut["skill.call_index"], context=cut["skill.context"], done=cut["frame.done"],
            final_state=self.final_states[index], calls=list(extra["calls"]),
        )

    def episodes(self) -> Iterator[EpisodeRecord]:
        for index in range(self.num_episodes):
            yield self.episode(index)

    def describe(self) -> str:
        return (f"{self.path}: {self.num_episodes} episodes ({int(self.success.sum())} successful), "
                f"{self.num_frames} frames, skills {', '.join(self.skills)}, task {self.attrs.get('task')}")


def dump_info(info: dict[str, Any]) -> dict[str, Any]:
    """`info` made JSON-safe (configs carry tuples and paths)."""
    return json.loads(json.dumps(info, default=str))


def open_dataset(path: str | Path) -> DemoDataset:
    """The demonstrations at `path`: a LeRobot v3.0 folder (it has meta/info.json) or a zarr dataset."""
    from fmrobot.data.lerobot_reader import LeRobotDemoDataset, is_lerobot_dataset

    return LeRobotDemoDataset(path) if is_lerobot_dataset(Path(path)) else DemoDataset(path)
