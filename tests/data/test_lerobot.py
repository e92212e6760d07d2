"""LeRobotDataset v3.0: the layout fmrobot writes (checked with pyarrow and PyAV), reading it back, export,
collection with camera streams, and training from it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fmrobot.errors import ConfigError

FPS = 20
SIZE = (32, 24)  # width, height of the synthetic camera


def _episode(seed: int, length: int, instruction: str):
    from fmrobot.data.recording import EpisodeRecord

    rng = np.random.default_rng(seed)
    context = rng.normal(size=(length, 10)).astype(np.float32)
    context[: length // 2, 6] = math.nan  # a target whose yaw is unknown
    done = np.zeros(length, bool)
    done[[length // 2 - 1, length - 1]] = True
    return EpisodeRecord(
        seed=seed, task="pick_place", instruction=instruction, success=seed % 2 == 0, predicates={"success": True},
        skills=["pick", "place"] if seed % 2 == 0 else ["place", "pick"],
        state=rng.normal(size=(length, 9)).astype(np.float32), action=rng.normal(size=(length, 8)).astype(np.float32),
        skill_index=np.repeat([0, 1], [length // 2, length - length // 2]).astype(np.int16),
        call_index=np.repeat([0, 1], [length // 2, length - length // 2]).astype(np.int16),
        context=context, done=done, final_state=rng.normal(size=9).astype(np.float32),
        calls=["pick(object='red block')", "place(object='red block', target='blue bowl')"],
    )


def _images(position: int, length: int) -> np.ndarray:
    """One flat colour per row, distinct across rows and episodes: a decoded frame tells which row it is."""
    values = (np.arange(length) * 7 + position * 100) % 256
    return np.broadcast_to(values[:, None, None, None], (length, SIZE[1], SIZE[0], 3)).astype(np.uint8).copy()


def test_layout_is_lerobot_v3_and_reads_back_frame_for_frame(tmp_path):
    import av
    import pyarrow.parquet as pq

    from fmrobot.data.dataset import open_dataset
    from fmrobot.data.lerobot_cameras import episode_video_path, load_episode_sums, save_episode_streams
    from fmrobot.data.lerobot_writer import CameraStream, write_lerobot

    episodes = [_episode(4, 12, "put the red block in the bowl"), _episode(5, 9, "stack the blocks"),
                _episode(6, 7, "put the red block in the bowl")]
    staged = [tmp_path / f"seed_{e.seed}.npz" for e in episodes]
    for position, (episode, record_path) in enumerate(zip(episodes, staged)):  # as a collection's workers do
        save_episode_streams(record_path, {"front": _images(position, len(episode))}, FPS)
    stream = CameraStream(width=SIZE[0], height=SIZE[1], videos=[episode_video_path(p, "front") for p in staged],
                          sums=[load_episode_sums(p)["front"] for p in staged])
    path = write_lerobot(tmp_path / "ds", episodes, {"task": "pick_place", "fps": float(FPS)}, fps=FPS,
                         robot_type="panda", cameras={"front": stream})
    info = json.loads((path / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS and info["robot_type"] == "panda"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 28, 2)
    assert info["splits"] == {"train": "0:3"}
    assert info["features"]["observation.state"] == {"dtype": "float32", "shape": [9], "names": [
        "ee.x", "ee.y", "ee.z", "ee.qx", "ee.qy", "ee.qz", "ee.qw", "gripper.width", "gripper.max_width"]}
    assert info["features"]["observation.images.front"]["dtype"] == "video"
    assert info["features"]["observation.images.front"]["shape"] == [SIZE[1], SIZE[0], 3]
    assert info["features"]["observation.images.front"]["info"]["video.fps"] == FPS

    data = pq.read_table(path / info["data_path"].format(chunk_index=0, file_index=0))
    for name, feature in info["features"].items():
        if feature["dtype"] != "video":  # every declared column exists with its dtype and width
            column = data.column(name)
            width = column.type.list_size if hasattr(column.type, "list_size") else 1
            assert [width] == feature["shape"], name
    rows = data.to_pydict()
    assert rows["index"] == list(range(28))
    assert rows["episode_index"] == [0] * 12 + [1] * 9 + [2] * 7
    assert np.allclose(rows["timestamp"], np.asarray(rows["frame_index"]) / FPS)
    assert rows["task_index"] == [0] * 12 + [1] * 9 + [0] * 7
    assert sum(rows["next.done"]) == 3 and rows["next.done"][11] and rows["next.done"][20]

    meta = pq.read_table(path / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert meta["length"] == [12, 9, 7] and meta["tasks"][1] == ["stack the blocks"]
    assert meta["dataset_from_index"] == [0, 12, 21] and meta["dataset_to_index"] == [12, 21, 28]
    assert meta["videos/observation.images.front/from_timestamp"] == pytest.approx([0.0, 12 / FPS, 21 / FPS])
    tasks = pq.read_table(path / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # how LeRobot finds the text
    assert tasks.to_pydict() == {"task_index": [0, 1], "task": ["put the red block in the bowl", "stack the blocks"]}
    stats = json.loads((path / "meta/stats.json").read_text())
    assert stats["action"]["count"] == [28] and len(stats["action"]["mean"]) == 8
    assert stats["observation.state"]["max"] == pytest.approx(np.concatenate([e.state for e in episodes]).max(0))
    expected = np.concatenate([_images(p, len(e)) for p, e in enumerate(episodes)])
    assert np.asarray(stats["observation.images.front"]["mean"]).reshape(3) == pytest.approx(expected.mean() / 255)
    assert stats["observation.images.front"]["count"] == [28]

    video = path / info["video_path"].format(video_key="observation.images.front", chunk_index=0, file_index=0)
    with av.open(str(video)) as container:
        decoded = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    assert len(decoded) == 28 and decoded[0][1].shape == (SIZE[1], SIZE[0], 3)
    assert [t for t, _ in decoded] == pytest.approx([k / FPS for k in range(28)])  # frame k at k / fps
    assert np.abs(np.stack([f for _, f in decoded]).astype(int) - expected).max() <= 4  # lossy, row for row

    dataset = open_dataset(path)
    assert dataset.num_episodes == 3 and dataset.cameras == ["front"] and dataset.skills == ["pick", "place"]
    for index, original in enumerate(episodes):
        back = dataset.episode(index)
        assert np.array_equal(back.state, original.state) and np.array_equal(back.action, original.action)
        assert np.array_equal(back.context, original.context, equal_nan=True)
        assert np.array_equal(back.done, original.done) and np.array_equal(back.call_index, original.call_index)
        assert [back.skills[k] for k in back.skill_index] == [original.skills[k] for k in original.skill_index]
        assert (back.seed, back.success, back.instruction) == (original.seed, original.success, original.instruction)
        assert dataset.frames("front", index).shape == (len(original), SIZE[1], SIZE[0], 3)
    with pytest.raises(ConfigError, match="has no camera 'wrist'; it has front"):
        dataset.frames("wrist", 0)


def test_export_and_camera_settings_give_one_clear_error(tmp_path, capsys):
    from fmrobot.collect import collect
    from fmrobot.data.lerobot_export import main
    from tests.fakes import compose_config

    assert main([str(tmp_path / "missing.zarr"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no demonstration dataset at" in err and "missing.zarr" in err
    with pytest.raises(ConfigError, match=r"'wrist', which the env does not have; valid cameras: front, video"):
        collect(compose_config(["dataset.format=lerobot", "dataset.cameras=[wrist]",
                                f"dataset.path={tmp_path / 'd'}"], name="collect"), quiet=True)
    with pytest.raises(ConfigError, match="needs dataset.format=lerobot"):
        collect(compose_config(["dataset.cameras=[video]", f"dataset.path={tmp_path / 'd'}"], name="collect"),
                quiet=True)
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_collected_with_a_camera_matches_zarr_and_exports_the_same(tmp_path, demo_dataset):
    """The demo_dataset seeds (5-7) collected again as LeRobot with the video camera and the perception
    camera: the same frames as the zarr collection, one video frame per row and camera; the zarr export of
    them holds the same arrays."""
    from fmrobot.collect import collect
    from fmrobot.data.dataset import DemoDataset, open_dataset
    from fmrobot.data.lerobot_export import export
    from tests.fakes import compose_config

    path = collect(compose_config(["task=pick_place", "episodes=3", "seed=5", "dataset.format=lerobot",
                                   "dataset.cameras=[video,front]", "dataset.image_size=[320,240]",
                                   f"dataset.path={tmp_path / 'cams'}"], name="collect"), quiet=True)
    zarr, lerobot = DemoDataset(demo_dataset), open_dataset(path)
    exported = open_dataset(export(demo_dataset, tmp_path / "exported"))
    assert not exported.cameras and lerobot.cameras == ["video", "front"]
    first = {camera: lerobot.frames(camera, 0)[0].astype(int) for camera in ("video", "front")}
    assert np.abs(first["video"] - first["front"]).mean() > 10  # two viewpoints, not one stream twice
    for other in (lerobot, exported):
        assert other.num_frames == zarr.num_frames and list(other.seeds) == list(zarr.seeds)
        for name in ("observation.state", "action", "skill.context", "frame.done", "timestamp"):
            assert np.array_equal(other.data[name], zarr.data[name], equal_nan=True), name
    for index in range(lerobot.num_episodes):
        for camera in ("video", "front"):  # video: the run video's own frames; front: drawn at 320x240, not 640x480
            frames = lerobot.frames(camera, index)
            assert frames.shape == (len(zarr.episode(index)), 240, 320, 3)
            assert frames[0].std() > 10  # a rendered scene, not a blank frame
            assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 0.5  # the arm moved between first and last


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["bc", "diffusion"])
def test_train_reads_lerobot_and_logs_to_tensorboard(tmp_path, demo_dataset, policy):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from fmrobot.data.lerobot_export import export
    from fmrobot.train import train
    from tests.fakes import compose_config

    exported = export(demo_dataset, tmp_path / "lerobot")
    weights = {}
    for name, data in (("zarr", demo_dataset), ("lerobot", exported)):
        config = compose_config([f"policy={policy}", "task=pick_place", f"dataset.path={data}", "train.threads=1",
                                 f"train.out_dir={tmp_path / name}", "train.logger=tensorboard", "policy.hidden=16",
                                 "policy.training.steps=20", "policy.training.batch_size=8",
                                 *(["policy.blocks=1", "policy.train_diffusion_steps=20"] if policy == "diffusion"
                                   else [])], name="train")
        weights[name] = __import__("torch").load(train(config, progress=False), weights_only=True)["model"]
    # the same demonstrations and seed give the same weights, whichever layout they were read from
    assert all(__import__("torch").equal(weights["zarr"][k], weights["lerobot"][k]) for k in weights["zarr"])
    events = EventAccumulator(str(tmp_path / "lerobot" / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [10, 20]
    assert "train/loss_curve" in events.Tags()["images"]
