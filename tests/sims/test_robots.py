"""Every registered robot does what the scripted skills assume of it: it loads, homes with the
gripper down, reaches the workspace, and grasps, holds and reports what it holds."""

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from gymnasium.utils.env_checker import check_env

from fmrobot.types import TOP_DOWN, Action, yaw_quaternion
from sims.env import TabletopEnv, register_gymnasium_envs
from sims.robots import robot_class, robot_config, robot_names
from sims.world import TABLE_TOP_Z, World

CONTROL_SUBSTEPS = 12  # 240 Hz physics, 20 Hz control, as the env runs them
# Where task objects can stand: the tasks' placement area widened by the largest level margin.
OBJECT_AREA_X, OBJECT_AREA_Y = (0.31, 0.72), (-0.30, 0.30)
# The whole table area in front of the robot; its far corners are just out of the Panda's reach.
WORKSPACE_X, WORKSPACE_Y = (0.26, 0.74), (-0.34, 0.34)
HOME = (0.38, 0.0, 1.03)  # the scripted policy's home


class Rig:
    """A robot alone in a world, driven the way the env drives it."""

    def __init__(self, name: str):
        self.world = World(renderer="tiny")
        self.name = name

    def reset(self):
        self.world.reset()
        self.robot = robot_class(self.name)(self.world.client, robot_config({"name": self.name}))
        self.robot.load()
        return self.robot

    def hold(self, position, orientation=TOP_DOWN, closure=0.0, steps=1):
        for _ in range(steps):
            self.robot.command(position, orientation, closure)
            self.world.step(CONTROL_SUBSTEPS)

    def move(self, position, orientation=TOP_DOWN, closure=0.0, speed=0.4, settle=20):
        """Interpolate the target as the scripted policy does, then let the arm settle."""
        start = np.asarray(self.robot.state().ee_pose.position)
        distance = float(np.linalg.norm(np.subtract(position, start)))
        steps = max(1, int(distance / (speed / 20)))
        for t in np.linspace(0, 1, steps + 1)[1:]:
            self.hold(tuple(start + t * (np.asarray(position) - start)), orientation, closure)
        self.hold(position, orientation, closure, settle)
        return np.asarray(self.robot.state().ee_pose.position)


@pytest.fixture(scope="module", params=robot_names())
def rig(request):
    rig = Rig(request.param)
    yield rig
    rig.world.close()


def _axes(orientation) -> np.ndarray:
    return np.array(pb.getMatrixFromQuaternion(orientation)).reshape(3, 3)


def test_robot_homes_above_the_workspace_with_the_gripper_pointing_down_and_open(rig):
    robot = rig.reset()
    rig.world.step(240)  # the home posture holds itself under gravity
    state = robot.state()
    assert np.allclose(state.ee_pose.position, HOME, atol=0.01)
    assert np.allclose(_axes(state.ee_pose.orientation)[:, 2], [0, 0, -1], atol=0.01)  # approach axis down
    assert abs(abs(float(np.dot(state.ee_pose.orientation, TOP_DOWN))) - 1) < 1e-3
    assert state.gripper_max_width == robot.max_gripper_width
    assert state.gripper_width == pytest.approx(robot.max_gripper_width, abs=0.002)
    assert len(state.joint_positions) == len(robot.home_joints)


def _reach_corners(rig, xs, ys, height):
    """Reach each corner from above the middle of the table, at an extreme grasp yaw."""
    rig.reset()
    corners = [(x, y) for x in xs for y in ys]
    for (x, y), yaw in zip(corners, [np.pi / 4, -np.pi / 4, -np.pi / 4, np.pi / 4]):
        orientation = yaw_quaternion(yaw)
        rig.move((0.5, 0.0, TABLE_TOP_Z + 0.25), orientation)
        reached = rig.move((x, y, height), orientation)
        assert np.linalg.norm(reached - (x, y, height)) < 0.01, (rig.name, x, y, height, yaw)
        # A top-down pose with the asked-for yaw, not just the right position.
        actual = rig.robot.state().ee_pose.orientation
        assert abs(float(np.dot(actual, orientation))) > 0.999, (rig.name, x, y, yaw)


# Fast tier: just above the table, where reaching is hardest; the higher plane runs in the full suite.
@pytest.mark.parametrize("height", [TABLE_TOP_Z + 0.02, pytest.param(TABLE_TOP_Z + 0.2, marks=pytest.mark.slow)])
def test_robot_reaches_the_object_area_corners_top_down_at_any_grasp_yaw(rig, height):
    _reach_corners(rig, OBJECT_AREA_X, OBJECT_AREA_Y, height)


@pytest.mark.parametrize("height", [TABLE_TOP_Z + 0.02, pytest.param(TABLE_TOP_Z + 0.3, marks=pytest.mark.slow)])
def test_ur5e_reaches_the_whole_workspace_corners(height):
    rig = Rig("ur5e_robotiq")
    try:
        _reach_corners(rig, WORKSPACE_X, WORKSPACE_Y, height)
    finally:
        rig.world.close()


def _slab(client: int, position, size) -> int:
    half = [s / 2 for s in size]
    body = pb.createMultiBody(
        0.05, pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client), -1,
        basePosition=position, physicsClientId=client,
    )
    pb.changeDynamics(body, -1, lateralFriction=1.0, physicsClientId=client)
    return body


@pytest.mark.parametrize("kind", ["block", pytest.param("cylinder", marks=pytest.mark.slow),
                                  pytest.param("slab", marks=pytest.mark.slow)])  # fast tier: the block
def test_gripper_closes_on_an_object_reports_its_width_and_holds_it_while_lifting(rig, kind):
    robot = rig.reset()
    x, y, size = 0.55, 0.15, 0.04
    if kind == "block":
        rig.world.add_block("thing", "red", (x, y), yaw=0.3)
        yaw = 0.3  # fingers square to the faces, as the scripted policy turns them
    elif kind == "cylinder":
        rig.world.add_cylinder("thing", "red", (x, y))
        yaw = 0.0
    else:
        # 3 cm across world y, 12 cm along x: graspable only if yaw 0 closes the fingers along y,
        # the convention every robot shares so that one top-down orientation means one grasp.
        size = 0.03
        body = _slab(rig.world.client, (x, y, TABLE_TOP_Z + 0.02), (0.12, size, 0.04))
        yaw = 0.0
    rig.world.step(60)
    orientation = yaw_quaternion(yaw)
    top = TABLE_TOP_Z + 0.04

    def position():
        if kind == "slab":
            return np.asarray(pb.getBasePositionAndOrientation(body, physicsClientId=rig.world.client)[0])
        return rig.world.position("thing")

    rig.move((x, y, top + 0.1), orientation)
    assert robot.gripper_width() == pytest.approx(robot.max_gripper_width, abs=0.002)
    rig.move((x, y, top - 0.02), orientation, speed=0.15)
    rig.hold((x, y, top - 0.02), orientation, closure=1.0, steps=12)
    assert robot.gripper_width() == pytest.approx(size, abs=0.004)
    before = position()
    rig.move((x, y, top + 0.1), orientation, closure=1.0, speed=0.15)
    rig.move((x - 0.15, y - 0.2, top + 0.15), orientation, closure=1.0)  # carry at policy speed
    assert robot.gripper_width() == pytest.approx(size, abs=0.004)
    after = position()
    ee = robot.state().ee_pose.position
    assert after[2] - before[2] > 0.15  # lifted with the hand ...
    assert np.linalg.norm(after - np.asarray(ee) - (before - (x, y, top - 0.02))) < 0.01  # ... without slipping
    rig.hold(ee, orientation, closure=0.0, steps=10)
    assert robot.gripper_width() == pytest.approx(robot.max_gripper_width, abs=0.002)


def test_gripper_closure_is_a_fraction_of_the_stroke_and_closes_fully_on_nothing(rig):
    robot = rig.reset()
    rig.move((0.5, 0.0, TABLE_TOP_Z + 0.1), closure=0.5)
    assert robot.gripper_width() == pytest.approx(robot.max_gripper_width / 2, abs=0.002)
    rig.hold((0.5, 0.0, TABLE_TOP_Z + 0.1), closure=1.0, steps=20)
    assert robot.gripper_width() < 0.004  # below the scripted policy's "closed on nothing" threshold


def test_ur5e_same_seed_same_episode():
    env = TabletopEnv(task="pick_place", robot={"name": "ur5e_robotiq"}, config={"renderer": "tiny"})
    try:
        def rollout(seed):
            env.reset_episode(seed)
            rng = np.random.default_rng(0)
            out = []
            for _ in range(15):
                target = (0.45 + rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 0.8)
                obs = env.apply(Action(ee_position=target, gripper=float(rng.uniform())))
                out.append(np.concatenate([obs.robot.joint_positions, [obs.robot.gripper_width]]))
            out.append(np.concatenate([env.world.position(label) for label in sorted(env.world.bodies)]))
            return out

        first, second = rollout(7), rollout(7)
        assert all(np.array_equal(a, b) for a, b in zip(first, second))
    finally:
        env.close()


def test_gymnasium_env_checker_passes_with_the_ur5e():
    register_gymnasium_envs()
    env = gym.make("fmrobot/PickPlace-v0", robot={"name": "ur5e_robotiq"}, config={"renderer": "tiny"})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*symmetric and normalized space.*")
            check_env(env.unwrapped)
    finally:
        env.close()


def test_combined_urdf_is_cached_by_package_version_with_resolved_meshes(tmp_path, monkeypatch):
    from importlib.metadata import version

    from sims.robots import ur5e_robotiq

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ur5e_robotiq.combined_urdf_path.cache_clear()
    try:
        path = Path(ur5e_robotiq.combined_urdf_path())
        assert path.parent == tmp_path / "fmrobot" / "robots"
        assert f"airo_models{version('airo-models')}" in path.name
        text = path.read_text()
        assert 'name="grasp_frame"' in text and "<mimic" not in text
        meshes = [part.split('"')[0] for part in text.split('filename="')[1:]]
        assert meshes and all(Path(m).is_absolute() and Path(m).exists() for m in meshes)
        assert list(path.parent.iterdir()) == [path]  # written once, no temporary files left
    finally:
        ur5e_robotiq.combined_urdf_path.cache_clear()
