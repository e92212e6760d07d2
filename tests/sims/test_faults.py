"""The environment's physics check (always on) and the world's injected faults (sims/faults.py)."""

from __future__ import annotations

import math

import pybullet as pb
import pytest

from fmrobot.errors import SimulationError
from fmrobot.types import Action
from sims.env import TabletopEnv
from sims.faults import GraspSlip, KnockedOver, KnockedOverConfig, PhysicsNan, PhysicsRunaway, check_physics


@pytest.fixture
def env():
    env = TabletopEnv(task="pick_place")
    yield env
    env.close()


def _hold_still(env) -> Action:
    robot = env.observe().robot
    return Action(ee_position=robot.ee_pose.position, ee_orientation=robot.ee_pose.orientation, gripper=0.0)


def _block(env) -> str:
    return next(label for label, body in env.world.bodies.items() if body.kind == "block")


@pytest.mark.parametrize("velocity,words", [((math.nan, 0.0, 0.0), "non-finite"), ((0.0, 0.0, 30.0), "moves at")])
def test_the_physics_check_is_on_without_any_fault(env, velocity, words):
    env.reset_episode(0)
    env.apply(_hold_still(env))  # a normal step passes
    label = _block(env)
    pb.resetBaseVelocity(env.world.body(label).body_id, velocity, (0, 0, 0), physicsClientId=env.world.client)
    with pytest.raises(SimulationError) as caught:
        env.apply(_hold_still(env))
    message = str(caught.value)
    assert words in message and "at control step 2" in message
    if words == "moves at":  # a runaway is pinned on the body it happened to
        assert message.startswith(f"the {label} moves at")
    env.reset_episode(1)  # the next episode starts from a sound world
    check_physics(env.world, env.robot.body_id, env.config.max_object_speed, 0)


def test_an_object_falling_past_the_table_is_not_a_blow_up(env):
    # No floor under the table: whatever falls off it keeps speeding up.
    env.reset_episode(0)
    body = env.world.body(_block(env)).body_id
    pb.resetBasePositionAndOrientation(body, (1.5, 0.0, 0.2), (0, 0, 0, 1), physicsClientId=env.world.client)
    pb.resetBaseVelocity(body, (0.0, 0.0, -12.0), (0, 0, 0), physicsClientId=env.world.client)
    env.apply(_hold_still(env))  # no SimulationError
    pb.resetBasePositionAndOrientation(body, (0.5, 0.3, 1.2), (0, 0, 0, 1), physicsClientId=env.world.client)
    pb.resetBaseVelocity(body, (0.0, -12.0, 0.0), (0, 0, 0), physicsClientId=env.world.client)  # flung above it
    with pytest.raises(SimulationError, match="moves at"):
        env.apply(_hold_still(env))


def test_infinite_spin_and_a_non_finite_robot_joint_are_caught_and_a_bad_pose_before_judging(env):
    env.reset_episode(0)
    body = env.world.body(_block(env)).body_id
    client = env.world.client
    pb.resetBaseVelocity(body, (0, 0, 0), (0.0, math.inf, 0.0), physicsClientId=client)
    with pytest.raises(SimulationError, match=r"^the \w+ block has a non-finite"):
        env.apply(_hold_still(env))
    env.reset_episode(0)
    joint = env.robot.arm_joints[2]
    pb.resetJointState(env.robot.body_id, joint, math.nan, physicsClientId=client)
    with pytest.raises(SimulationError, match=r"robot joint \d+ has a non-finite state"):
        for _ in range(env._physics_check.ROBOT_EVERY):  # watched every few steps
            env.apply(_hold_still(env))
    env.reset_episode(0)
    pb.resetBasePositionAndOrientation(body, (math.nan, 0.0, 0.8), (0, 0, 0, 1), physicsClientId=client)
    with pytest.raises(SimulationError, match="non-finite position"):
        env.settle(0.0)  # no step at all: the check before judging still looks at every pose


def test_the_speed_limit_is_an_env_option():
    env = TabletopEnv({"max_object_speed": 0.001}, task="pick_place")
    try:
        env.reset_episode(0)
        label = _block(env)
        pb.resetBaseVelocity(env.world.body(label).body_id, (0.2, 0, 0), (0, 0, 0), physicsClientId=env.world.client)
        with pytest.raises(SimulationError, match="faster than the 0.001 m/s"):
            env.apply(_hold_still(env))
    finally:
        env.close()


@pytest.mark.parametrize("fault,words", [(PhysicsNan(), "non-finite"), (PhysicsRunaway(), "m/s")])
def test_injected_instability_is_caught_at_its_step(env, fault, words):
    env.inject_fault(fault)
    env.reset_episode(0)
    with pytest.raises(SimulationError, match=words) as caught:
        for _ in range(100):
            env.apply(_hold_still(env))
    [event] = env.fault_events()
    assert event["fault"] == fault.name and 5 <= event["step"] <= 60
    assert f"at control step {env.observe().step}" in str(caught.value)  # caught at once, not steps later
    assert env.observe().step - event["step"] <= 1
    assert env.fault_events() == []


def test_knocked_over_moves_an_object_at_its_seeded_step(env):
    env.inject_fault(KnockedOver(KnockedOverConfig(steps=(3, 3))))
    env.reset_episode(0)
    before = {label: env.world.position(label).copy() for label in env.world.bodies}
    for _ in range(20):
        env.apply(_hold_still(env))
    [event] = env.fault_events()
    assert event["step"] == 3 and event["effect"].endswith("was knocked over")
    label = event["effect"].removeprefix("the ").removesuffix(" was knocked over")
    assert math.dist(env.world.position(label), before[label]) > 0.03
    others = [math.dist(env.world.position(o), before[o]) for o in before if o != label]
    assert max(others) < 0.01


def test_grasp_slip_waits_for_a_lifted_object(env):
    env.inject_fault(GraspSlip())
    env.reset_episode(0)
    for _ in range(30):
        env.apply(_hold_still(env))
    assert env.fault_events() == []  # nothing in the hand: nothing slips
