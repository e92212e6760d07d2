import pytest

from fmrobot.control.motion import Move
from fmrobot.control.scripted import ScriptedPolicy, _gripper_yaw
from fmrobot.errors import SkillArgumentError
from fmrobot.testing import check_policy, synthetic_observation, synthetic_scene
from fmrobot.types import Action, SkillCall, SkillStatus


def test_scripted_policy_conforms():
    actions = check_policy(ScriptedPolicy())
    assert actions


def test_first_move_heads_for_the_object_at_bounded_speed():
    obs = synthetic_observation()
    policy = ScriptedPolicy()
    policy.reset(SkillCall(skill="pick", args={"object": "red block"}), synthetic_scene(), obs)
    assert policy.status(obs) is SkillStatus.RUNNING
    action = policy.act(obs)
    start = obs.robot.ee_pose.position
    step = sum((a - b) ** 2 for a, b in zip(action.ee_position, start)) ** 0.5
    assert step == pytest.approx(policy.config.speed * obs.dt, rel=1e-6)
    assert action.ee_position[0] > start[0]  # toward the block at x = 0.45


def test_a_waypoint_never_reached_fails_with_a_reason():
    obs = synthetic_observation()  # the robot never moves in this observation
    move = Move(name="pick: approach", position=(0.9, 0.0, 1.0), orientation=(1, 0, 0, 0), gripper=0.0, speed=0.5)
    command = Action(ee_position=obs.robot.ee_pose.position)
    move.start(obs, command)
    status = SkillStatus.RUNNING
    while status is SkillStatus.RUNNING:
        command = move.act(obs, command)
        status, reason = move.status(obs, command)
    assert status is SkillStatus.FAILURE and "did not reach" in reason and "unreachable" in reason


def test_place_without_holding_anything_fails_at_once():
    start = synthetic_observation()
    obs = start.model_copy(update={"robot": start.robot.model_copy(update={"gripper_width": 0.0})})
    policy = ScriptedPolicy()
    policy.reset(SkillCall(skill="place", args={"target": "green bowl"}), synthetic_scene(), obs)
    assert policy.status(obs) is SkillStatus.FAILURE
    assert "holds nothing" in policy.failure_reason()


def test_unknown_skill_is_refused():
    with pytest.raises(SkillArgumentError, match="cannot execute 'push'"):
        ScriptedPolicy().reset(SkillCall(skill="push", args={}), synthetic_scene(), synthetic_observation())


@pytest.mark.parametrize("yaw,expected", [(0.0, 0.0), (0.5, 0.5), (1.2, 1.2 - 1.5707963), (-0.9, -0.9 + 1.5707963)])
def test_gripper_turns_at_most_45_degrees_for_a_square(yaw, expected):
    assert _gripper_yaw(yaw) == pytest.approx(expected, abs=1e-6)
