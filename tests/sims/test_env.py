import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from fmrobot import registry
from fmrobot.errors import UnknownComponentError
from fmrobot.types import Action
from sims.env import TabletopEnv, register_gymnasium_envs


# The observation space is the robot's, the same for every task; what the checker does per task (seeded reset
# and step determinism) tests/sims/test_every_task.py checks for every task in the fast tier. So one task here
# in the fast tier, every task in the full suite.
@pytest.mark.parametrize("task", [task if task == "pick_place" else pytest.param(task, marks=pytest.mark.slow)
                                  for task in registry.available("task")])
def test_every_task_passes_the_gymnasium_env_checker(task):
    register_gymnasium_envs()
    env = gym.make(f"fmrobot/{''.join(p.capitalize() for p in task.split('_'))}-v0", render_mode="rgb_array")
    try:
        with warnings.catch_warnings():
            # Absolute end-effector targets are not a normalized box; that advice is for RL agents.
            warnings.filterwarnings("ignore", message=".*symmetric and normalized space.*")
            check_env(env.unwrapped)
    finally:
        env.close()


def test_every_task_has_a_gymnasium_id_for_its_env():
    ids = register_gymnasium_envs()
    tasks = registry.available("task")
    assert len(ids) == len(tasks)
    for task in tasks:
        spec = gym.spec(f"fmrobot/{''.join(p.capitalize() for p in task.split('_'))}-v0")
        assert spec.entry_point == "sims.env:TabletopEnv" and spec.kwargs == {"task": task}


def test_rgbd_observation_mode_passes_the_checker_too():
    env = TabletopEnv({"obs_mode": "rgbd", "cameras": [{"name": "front", "width": 64, "height": 48}]})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*symmetric and normalized space.*")
            warnings.filterwarnings("ignore", message=".*not having a spec.*")  # made directly, on purpose
            check_env(env)
        obs, _ = env.reset(seed=1)
        assert obs["rgb"].shape == (48, 64, 3) and obs["depth"].shape == (48, 64)
    finally:
        env.close()


def _rollout(env: TabletopEnv, seed: int, steps: int = 15) -> list[np.ndarray]:
    episode, obs = env.reset_episode(seed)
    out = [np.asarray(obs.robot.joint_positions)]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        target = (0.45 + rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 0.8)
        obs = env.apply(Action(ee_position=target, gripper=float(rng.uniform())))
        out.append(np.asarray(obs.robot.joint_positions))
    out.append(np.concatenate([env.world.position(label) for label in sorted(env.world.bodies)]))
    return out


def test_same_seed_same_episode_and_different_seed_different_scene(pick_place_env):
    env = pick_place_env
    first = _rollout(env, 7)
    instruction = env.episode.instruction
    second = _rollout(env, 7)
    assert env.episode.instruction == instruction
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    env.reset_episode(8)
    other = {label: env.world.position(label) for label in env.world.bodies}
    env.reset_episode(7)
    same = {label: env.world.position(label) for label in env.world.bodies}
    assert other.keys() != same.keys() or any(not np.allclose(other[k], same[k]) for k in same)


def test_cameras_render_only_when_asked(pick_place_env):
    _, obs = pick_place_env.reset_episode(3)
    assert obs.frames == ()
    obs = pick_place_env.observe(images=True)
    assert [f.name for f in obs.frames] == ["front"]
    frame = obs.frames[0]
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.std() > 10  # a real image, not a blank one


def test_depth_is_metric_and_the_camera_model_maps_objects_to_their_pixels(pick_place_env):
    env = pick_place_env
    env.reset_episode(5)
    frame = env.observe(images=True).frames[0]
    to_camera = np.linalg.inv(frame.extrinsics.matrix())
    for label, body in env.world.bodies.items():
        centre = env.world.position(label) + [0, 0, body.height / 2 if body.kind == "block" else 0.0]
        x, y, z = (to_camera @ np.append(centre, 1.0))[:3]
        u = int(round(frame.intrinsics.fx * x / z + frame.intrinsics.cx))
        v = int(round(frame.intrinsics.fy * y / z + frame.intrinsics.cy))
        if body.kind == "block":  # a block's top centre is visible from the front camera
            assert frame.segmentation[v, u] == body.body_id, label
            assert abs(frame.depth[v, u] - z) < 0.03, label


def test_bad_env_config_is_rejected_with_the_reason():
    with pytest.raises(ValueError, match="multiple of control_hz"):
        TabletopEnv({"physics_hz": 240, "control_hz": 7})
    with pytest.raises(UnknownComponentError, match="unknown robot 'r2d2'; installed: panda"):
        TabletopEnv(robot={"name": "r2d2"})


def test_only_one_world_per_process_renders_with_egl(pick_place_env):
    from sims.world import World

    second = World(renderer="auto")
    try:
        assert second.renderer_name == "tiny"  # the session env owns EGL, or EGL is unavailable
        if pick_place_env.world.renderer_name == "egl":
            with pytest.raises(RuntimeError, match="already renders with EGL"):
                World(renderer="egl")
    finally:
        second.close()


@pytest.mark.slow
def test_torch_vision_libraries_load_after_the_egl_renderer():
    """Mesa's LLVM (EGL plugin) loaded before triton's used to crash the process on import."""
    import subprocess
    import sys

    code = ("from sims.env import TabletopEnv\n"
            "env = TabletopEnv(); env.reset_episode(0); env.observe(images=True)\n"
            "import open_clip, torchvision.ops\n"
            "env.close(); print('survived')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-1500:]
