"""Episode videos: the `video` config group, frames drawn after the episode from recorded poses
(booked as render, never touching the simulated world), and perception drawn into them."""

from __future__ import annotations

import numpy as np
import pytest

from fmrobot.errors import ConfigError
from fmrobot.outputs import write_video
from fmrobot.perception.annotate import draw_video, project_box
from fmrobot.stack import RunSettings, build_runner
from fmrobot.types import Action, DetectedObject, SceneDescription
from sims.video import VideoScene
from tests.fakes import compose_config

ORACLE = ["task=pick_place", "perception=oracle", "planner=oracle", "policy=scripted"]


# --------------------------------------------------------------------------- the config group

@pytest.mark.parametrize("overrides, episodes, annotate, seeds", [
    ([], "first", False, {3}),
    (["video=none"], "none", False, set()),
    (["video=all"], "all", False, {3, 4}),
    (["video=first", "video.annotate=true"], "first", True, {3}),
    (["video=all", "video.annotate=true", "video.fps=10"], "all", True, {3, 4}),
])
def test_video_options_compose(overrides, episodes, annotate, seeds):
    settings = RunSettings.from_config(compose_config(["seed=3", "episodes=2", *overrides]))
    assert (settings.video.episodes, settings.video.annotate) == (episodes, annotate)
    assert settings.video_seeds() == frozenset(seeds)


def test_collect_and_train_record_no_video():
    for name in ("collect", "train"):
        assert RunSettings.from_config(compose_config([], name=name)).video_seeds() == frozenset()


@pytest.mark.parametrize("override, expected", [
    ("video.episodes=sometimes", "video.episodes: Input should be 'none', 'first' or 'all' (got 'sometimes')"),
    ("video.annotate=maybe", "video.annotate: Input should be a valid boolean"),
    ("video.fps=0", "video.fps: Input should be greater than 0"),
    ("+video.nope=1", "video.nope: not an option"),
])
def test_a_bad_video_setting_is_refused_in_one_line(override, expected):
    with pytest.raises(ConfigError) as error:
        RunSettings.from_config(compose_config([override]))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_video_option_names_the_options():
    from fmrobot.cli import config_error_line

    with pytest.raises(Exception) as error:
        compose_config(["video=sometimes"])
    assert config_error_line(error.value) == ("Could not find 'video/sometimes'; available options in 'video': "
                                              "all, first, none")


def test_a_code_built_config_may_still_say_video_first():
    assert RunSettings.model_validate({"video": "all", "episodes": 2}).video_seeds() == frozenset({0, 1})


# --------------------------------------------------------------------------- drawing perception into frames

class _Camera:  # what draw_video needs of a camera
    def __init__(self):
        from sims.cameras import Camera, CameraConfig

        camera = Camera(CameraConfig(width=64, height=48, eye=(1.0, 0.0, 1.0), target=(0.0, 0.0, 0.5)))
        self.intrinsics, self.extrinsics = camera.intrinsics, camera.extrinsics


def _block(label: str, position) -> DetectedObject:
    return DetectedObject(label=label, score=0.9, position=position, extent=(0.05, 0.05, 0.05))


def test_a_box_at_the_camera_target_is_drawn_around_the_image_centre():
    camera = _Camera()
    x0, y0, x1, y1 = project_box(_block("red block", (0.0, 0.0, 0.5)), camera.intrinsics, camera.extrinsics)
    assert x0 < 31.5 < x1 and y0 < 23.5 < y1 and x1 - x0 < 20
    assert project_box(_block("behind", (2.0, 0.0, 1.5)), camera.intrinsics, camera.extrinsics) is None


def test_each_frame_shows_the_last_perception_at_or_before_it():
    camera = _Camera()
    left, right = (SceneDescription(objects=(_block(label, (0.0, y, 0.5)),)) for label, y in (("a", 0.2), ("b", -0.2)))
    frames = [np.zeros((48, 64, 3), np.uint8)] * 4
    drawn = draw_video(frames, [0, 2, 4, 6], [(1, left), (4, right)], camera)
    assert not drawn[0].any()  # before the first perception
    left_edges = [np.flatnonzero(image.any(axis=(0, 2))).min() for image in drawn[1:]]
    assert left_edges[0] > 32 > left_edges[1]  # "a" sits at +y, on the right of this view; "b" on the left
    assert np.array_equal(drawn[2], drawn[3])  # both after the second perception
    with pytest.raises(ValueError, match="2 video frames but 1 frame steps"):
        draw_video(frames[:2], [0], [], camera)


# --------------------------------------------------------------------------- episodes

@pytest.fixture(scope="module")
def runner():
    runner = build_runner(compose_config([*ORACLE, "video.annotate=true"]))
    yield runner
    runner.env.close()


def test_video_is_drawn_in_the_render_stage_not_while_the_world_steps(runner, monkeypatch):
    env = runner.env
    drawn_in_apply = []
    apply, draw = env.apply, VideoScene._draw
    in_apply = [False]

    def watched_apply(action):
        in_apply[0] = True
        try:
            return apply(action)
        finally:
            in_apply[0] = False

    def watched_draw(self, *args, **kwargs):
        drawn_in_apply.append(in_apply[0])
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(env, "apply", watched_apply)
    monkeypatch.setattr(VideoScene, "_draw", watched_draw)
    plain = runner.run_episode(1, record_video=False).result
    assert not drawn_in_apply
    outcome = runner.run_episode(1, record_video=True)
    assert drawn_in_apply and not any(drawn_in_apply)
    steps = outcome.result.env_steps
    assert len(outcome.video) == len(env.video_frame_steps()) == steps // env.video_every + 1
    assert env.video_fps == 5.0 and env.video_every == 4  # video.fps=5 (the group's default) at 20 Hz control
    assert outcome.result.latency.render > plain.latency.render
    assert outcome.result.env_steps == plain.env_steps and outcome.result.success == plain.success


def test_an_annotated_video_is_written_and_differs_from_a_plain_one(runner, tmp_path):
    annotated = runner.run_episode(2, record_video=True).video
    runner.video_annotate = False
    try:
        plain = runner.run_episode(2, record_video=True).video
    finally:
        runner.video_annotate = True
    assert len(annotated) == len(plain) > 5
    assert all(np.array_equal(a.shape, p.shape) for a, p in zip(annotated, plain))
    assert all(not np.array_equal(a, p) for a, p in zip(annotated, plain))  # a perception precedes every frame
    written = [write_video(tmp_path / name, 2, video, fps=5.0) for name, video in (("a", annotated), ("p", plain))]
    import imageio.v2 as imageio

    first = [imageio.get_reader(path).get_data(0) for path in written]
    assert np.abs(first[0].astype(int) - first[1].astype(int)).max() > 100  # white boxes on the scene


def test_perception_images_do_not_depend_on_the_video(runner):
    env = runner.env
    action = Action(ee_position=(0.45, 0.1, 0.85), ee_orientation=(1.0, 0.0, 0.0, 0.0), gripper=0.5)
    looks = []
    for record in (False, True, False):
        env.reset_episode(3, record_video=record)
        for _ in range(9):
            env.apply(action)
        if record:
            env.video_frames()
        looks.append(env.observe(images=True))
    for look in looks[1:]:
        for frame, first in zip(look.frames, looks[0].frames):
            assert np.array_equal(frame.rgb, first.rgb) and np.array_equal(frame.depth, first.depth)
            assert np.array_equal(frame.segmentation, first.segmentation)
        assert np.array_equal(look.robot.joint_positions, looks[0].robot.joint_positions)


def test_frames_drawn_together_match_frames_drawn_one_by_one(runner):
    """Still parts drawn once into a background, moving parts only in their rectangle: the same picture."""
    env = runner.env
    env.reset_episode(4, record_video=True)
    for z in np.linspace(0.95, 0.75, 12):
        env.apply(Action(ee_position=(0.5, 0.0, float(z)), ee_orientation=(1.0, 0.0, 0.0, 0.0), gripper=0.0))
    together = env.video_frames()
    scene = env._video_scene()
    one_by_one = [scene.render(poses) for _, poses in env._video_poses]
    assert len(together) == len(one_by_one) == 4
    for a, b in zip(together, one_by_one):
        assert (np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 8).mean() < 0.002
    assert not np.array_equal(together[0], together[-1])  # the arm moved


def test_with_the_full_meshes_the_video_scene_draws_exactly_what_the_world_draws(monkeypatch):
    """Every body and link in its place: clutter whose centre of mass is off its link frame, the
    robot's base, trays; only the heavy meshes are swapped in a real video."""
    import pybullet as pb

    import sims.video
    from fmrobot.stack import build_env

    monkeypatch.setattr(sims.video, "HEAVY_MESH_BYTES", 10**12)
    env = build_env(compose_config(["task=pack_all", "level=L3", "env.renderer=tiny", "perception=oracle"]))
    try:
        env.reset_episode(2, record_video=True)
        world = env.video_camera.render_rgb(env.world.client, pb.ER_TINY_RENDERER)
        scene = env._video_scene()
        drawn = scene.render(scene.capture())
        seen = world.astype(int).sum(axis=-1) < 3 * 255  # the world's tiny renderer clears to white, the video to sky
        assert np.array_equal(drawn[seen], world[seen]) and seen.mean() > 0.5
    finally:
        env.close()


def test_a_video_rate_the_env_cannot_record_is_a_config_error():
    with pytest.raises(ConfigError, match="invalid video.fps: video fps must be above 0 and at most control_hz"):
        build_runner(compose_config([*ORACLE, "video.fps=100", "env.renderer=tiny"]))


def test_the_benchmark_harness_reads_the_video_group():
    from benchmarks.harness.suite_run import video_seeds

    for option, expected in (("first", {5}), ("all", {5, 6, 7}), ("none", set())):
        config = compose_config([f"video={option}"])
        assert video_seeds(config, [5, 6, 7], first=5) == frozenset(expected)
    assert video_seeds({"video": "all"}, [1, 2], first=1) == frozenset({1, 2})  # a config written in code
