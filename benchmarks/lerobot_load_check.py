"""Load an fmrobot-written LeRobot v3.0 folder with lerobot's own `LeRobotDataset` and iterate every frame.

lerobot 0.4.x needs torch<2.11, so this runs in an environment of its own, outside the project's:

    python3.11 -m venv /work/lerobot-venv && /work/lerobot-venv/bin/pip install "lerobot>=0.4,<0.5"
    HF_HUB_OFFLINE=1 /work/lerobot-venv/bin/python benchmarks/lerobot_load_check.py <dataset folder>

It prints what lerobot read (version, episodes, frames, fps, cameras, tasks), checks every row's
state and action against the parquet file, each row's task text against its task_index, and each
row's camera frame, as lerobot finds it by timestamp, against frame `index` of the MP4 decoded in
order (PyAV backend: torchcodec needs the system's FFmpeg libraries).
"""

import sys
import time

import av
import numpy as np
import pyarrow.parquet as pq
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main() -> int:
    root = sys.argv[1]
    started = time.time()
    ds = LeRobotDataset("local/fmrobot", root=root, video_backend="pyav")
    print(f"lerobot read {ds.meta.info['codebase_version']}: {ds.num_episodes} episodes, {ds.num_frames} frames, "
          f"{ds.fps} fps, cameras {ds.meta.camera_keys}, {len(ds.meta.tasks)} tasks")
    table = pq.read_table(f"{root}/data/chunk-000/file-000.parquet").to_pydict()
    state = np.asarray(table["observation.state"], dtype=np.float32)
    action = np.asarray(table["action"], dtype=np.float32)
    videos = {}
    for key in ds.meta.camera_keys:
        with av.open(f"{root}/videos/{key}/chunk-000/file-000.mp4") as container:
            videos[key] = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    mismatches, shapes, worst = 0, set(), 0
    for i in range(len(ds)):
        item = ds[i]
        mismatches += not np.array_equal(item["observation.state"].numpy(), state[i])
        mismatches += not np.array_equal(item["action"].numpy(), action[i])
        mismatches += item["task"] != ds.meta.tasks.index[int(item["task_index"])]
        for key in ds.meta.camera_keys:
            shapes.add((key, tuple(item[key].shape)))
            image = np.round(item[key].numpy().transpose(1, 2, 0) * 255).astype(int)
            worst = max(worst, int(np.abs(image - videos[key][int(item["index"])]).max()))
    print(f"{len(ds)} frames iterated in {time.time() - started:.1f} s; mismatches {mismatches}; "
          f"camera frame shapes {sorted(shapes)}; largest pixel difference to the in-order decode {worst}")
    return 1 if mismatches or worst > 1 else 0


if __name__ == "__main__":
    sys.exit(main())
