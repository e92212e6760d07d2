"""Camera streams for a LeRobot dataset: which cameras exist, and each recorded row's image.

A dataset camera is one of the env's cameras (`env.cameras`, what perception sees, e.g.
`front`) or its video camera (`env.video_camera`, `video`), drawn the cheap way the video is
(sims/video.py: link poses recorded every control step, frames rendered after the episode,
coarse robot meshes). Each row gets the frame of the control step its state was observed at,
so video frames and parquet rows correspond one to one, at the control rate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fmrobot.errors import ConfigError


def dataset_cameras(env_config: Any, names: Sequence[str], size: tuple[int, int] | None) -> dict[str, dict]:
    """Camera name -> camera config (plain data) for the dataset; `size` (width, height) replaces each
    camera's own resolution."""
    known = {c.name: c for c in (*env_config.cameras, env_config.video_camera)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"dataset.cameras names {', '.join(map(repr, unknown))}, which the env does not have; "
                          f"valid cameras: {', '.join(known)} (env.cameras and env.video_camera)")
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset.cameras lists a camera twice: {list(names)}")
    chosen = {}
    for name in names:
        camera = known[name]
        if size is not None:
            camera = camera.model_copy(update={"width": size[0], "height": size[1]})
        if camera.width % 2 or camera.height % 2:
            raise ConfigError(f"camera {name!r} is {camera.width}x{camera.height}; H.264 video needs an even width "
                              "and height (set dataset.image_size=[width,height])")
        chosen[name] = camera.model_dump(mode="json")
    return chosen


def row_images(env: Any, cameras: Mapping[str, Mapping[str, Any]], steps: np.ndarray) -> dict[str, np.ndarray]:
    """Camera name -> (T, height, width, 3) uint8: for each row, the frame of the control step in `steps`.
    The episode must have been recorded with a video frame at every control step."""
    recorded = {step: k for k, step in enumerate(env.video_frame_steps())}
    missing = sorted({int(s) for s in steps} - set(recorded))
    if missing:
        raise RuntimeError(f"no video frame was recorded at control steps {missing[:5]}; camera streams need one "
                           "at every step (video fps = control rate)")
    picks = [recorded[int(s)] for s in steps]
    images = {}
    for name, camera in cameras.items():
        # The video camera as configured is the one the episode's own video used: its frames are drawn already.
        own = env.video_camera.config.model_dump(mode="json") == dict(camera)
        frames = env.video_frames() if own else env.render_recorded(camera)
        images[name] = np.stack([frames[k] for k in picks]) if picks else \
            np.zeros((0, camera["height"], camera["width"], 3), np.uint8)
    return images


def episode_video_path(record_path: Path, camera: str) -> Path:
    """Where a staged episode's stream of `camera` is kept, beside its frames (`seed_N.npz`)."""
    return record_path.with_name(f"{record_path.stem}.{camera}.mp4")


def episode_sums_path(record_path: Path) -> Path:
    return record_path.with_name(f"{record_path.stem}.cameras.json")


def save_episode_streams(record_path: Path, images: Mapping[str, np.ndarray], fps: int) -> None:
    """Encode each camera's frames of one episode as its own MP4 (the dataset joins them without re-encoding)
    and keep the pixel sums its statistics come from."""
    from fmrobot.data.lerobot_video import write_video

    sums = {}
    for camera, frames in images.items():
        path = episode_video_path(record_path, camera)
        tmp = path.with_name(path.stem + ".tmp.mp4")
        write_video(tmp, frames, fps, width=frames.shape[2], height=frames.shape[1])
        tmp.replace(path)
        sums[camera] = pixel_sums(frames)
    sums_path = episode_sums_path(record_path)
    sums_path.with_suffix(".tmp").write_text(json.dumps(sums))
    sums_path.with_suffix(".tmp").replace(sums_path)


def load_episode_sums(record_path: Path) -> dict[str, dict]:
    return json.loads(episode_sums_path(record_path).read_text())


def pixel_sums(frames: np.ndarray) -> dict[str, Any]:
    """Per channel (0..1): sum, sum of squares, min and max over all pixels of (T, H, W, 3) frames."""
    # From each channel's histogram of the 256 values: a float copy of the frames costs seconds, this milliseconds.
    levels = np.arange(256) / 255.0
    counts = [np.bincount(frames[..., c].ravel(), minlength=256) for c in range(3)]
    present = [np.flatnonzero(h) for h in counts]
    return {"sum": [float(h @ levels) for h in counts], "squares": [float(h @ levels ** 2) for h in counts],
            "min": [float(levels[i[0]]) for i in present], "max": [float(levels[i[-1]]) for i in present],
            "pixels": int(frames[..., 0].size), "frames": len(frames)}


def image_stats(parts: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """LeRobot's statistics of an image feature from episodes' `pixel_sums`: per channel, shape (3, 1, 1)."""
    count = sum(p["pixels"] for p in parts)
    mean = np.sum([p["sum"] for p in parts], axis=0) / count
    std = np.sqrt(np.maximum(np.sum([p["squares"] for p in parts], axis=0) / count - mean ** 2, 0.0))

    def per_channel(values) -> list:
        return [[[float(v)]] for v in values]

    return {"min": per_channel(np.min([p["min"] for p in parts], axis=0)),
            "max": per_channel(np.max([p["max"] for p in parts], axis=0)),
            "mean": per_channel(mean), "std": per_channel(std), "count": [sum(p["frames"] for p in parts)]}
