"""Facts of the LeRobotDataset v3.0 layout fmrobot writes and reads (as LeRobot 0.4 defines it).

```
<name>/
  meta/info.json                             codebase_version "v3.0", fps, features, totals, path templates
  meta/stats.json                            per feature: min, max, mean, std, count
  meta/tasks.parquet                         one row per task (the instruction), index `task`, column task_index
  meta/episodes/chunk-000/file-000.parquet   per episode: length, tasks, where its rows and video frames are
  meta/fmrobot.json                          what LeRobot has no place for: skill names, seeds, success, config
  data/chunk-000/file-000.parquet            one row per frame
  videos/observation.images.<camera>/chunk-000/file-000.mp4
```
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder
DATA_FILES_SIZE_IN_MB = 100  # LeRobot starts a new file past these sizes; fmrobot's datasets stay below
VIDEO_FILES_SIZE_IN_MB = 500
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EXTRAS_PATH = "meta/fmrobot.json"
IMAGE_KEY_PREFIX = "observation.images."

STATE_NAMES = ["ee.x", "ee.y", "ee.z", "ee.qx", "ee.qy", "ee.qz", "ee.qw", "gripper.width", "gripper.max_width"]
ACTION_NAMES = ["target.x", "target.y", "target.z", "target.qx", "target.qy", "target.qz", "target.qw",
                "gripper.closure"]
CONTEXT_NAMES = ["anchor.x", "anchor.y", "anchor.z", "extent.x", "extent.y", "extent.z", "yaw",
                 "held_extent.x", "held_extent.y", "held_extent.z"]

# LeRobot's own per-frame columns.
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def image_key(camera: str) -> str:
    return IMAGE_KEY_PREFIX + camera
