import math

import numpy as np
import pytest

from fmrobot.control.segments import Check, Move
from fmrobot.control.scripted import ScriptedPolicy, _gripper_yaw
from fmrobot.control.skills import SIDE_DIRECTIONS, STANDARD_SKILLS
from fmrobot.errors import SkillArgumentError
from fmrobot.testing import TABLE_Z, check_policy, synthetic_observation, synthetic_scene
from fmrobot.types import Action, DetectedObject, SceneDescription, SkillCall, SkillStatus


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
    with pytest.raises(SkillArgumentError, match="cannot execute 'juggle'"):
        ScriptedPolicy().reset(SkillCall(skill="juggle", args={}), synthetic_scene(), synthetic_observation())


@pytest.mark.parametrize("yaw,expected", [(0.0, 0.0), (0.5, 0.5), (1.2, 1.2 - 1.5707963), (-0.9, -0.9 + 1.5707963)])
def test_gripper_turns_at_most_45_degrees_for_a_square(yaw, expected):
    assert _gripper_yaw(yaw) == pytest.approx(expected, abs=1e-6)



# --------------------------------------------------------------------------- placing beside, between, into, pushing


def _holding(policy: ScriptedPolicy, scene: SceneDescription, label: str = "red block"):
    """An observation with the fingers 4 cm apart, after the policy picked `label`."""
    start = synthetic_observation()
    obs = start.model_copy(update={"robot": start.robot.model_copy(update={"gripper_width": 0.04})})
    policy.reset(SkillCall(skill="pick", args={"object": label}), scene, start)
    _finish_bookkeeping(policy, obs)
    return obs


def _finish_bookkeeping(policy: ScriptedPolicy, obs) -> None:
    """Run the skill's bookkeeping checks as if every move had been made."""
    for segment in policy._runner.segments:
        if isinstance(segment, Check):
            segment.condition(obs)


def _moves(policy: ScriptedPolicy) -> dict[str, Move]:
    return {s.name: s for s in policy._runner.segments if isinstance(s, Move)}


def _scene(*extra: DetectedObject) -> SceneDescription:
    return SceneDescription(objects=synthetic_scene().objects + extra)


def _thing(label: str, x: float, y: float, size: float, height: float) -> DetectedObject:
    return DetectedObject(label=label, score=1.0, position=(x, y, TABLE_Z + height / 2), extent=(size, size, height))


def test_every_standard_skill_reads_as_words():
    args = {"object": "red block", "target": "green bowl", "side": "front", "first": "red block",
            "second": "green bowl"}
    said = {s.name: s.say(SkillCall(skill=s.name, args={k: args[k] for k in s.parameters.model_fields}))
            for s in STANDARD_SKILLS}
    assert said["place_next_to"] == "put it in front of the green bowl"
    assert said["place_between"] == "put it between the red block and the green bowl"
    assert said["push"] == "push the red block into the green bowl"
    assert "+x" in STANDARD_SKILLS[3].description and "behind" in STANDARD_SKILLS[3].description


@pytest.mark.parametrize("side", ["left", "right", "front", "behind"])
def test_place_next_to_releases_beside_the_target_on_the_table(side):
    policy, scene = ScriptedPolicy(), synthetic_scene()
    obs = _holding(policy, scene)
    policy.reset(SkillCall(skill="place_next_to", args={"target": "green bowl", "side": side}), scene, obs)
    release = np.asarray(_moves(policy)["place_next_to: lower"].position)
    bowl = scene.find("green bowl")
    offset = release[:2] - np.asarray(bowl.position[:2])
    direction = np.asarray(SIDE_DIRECTIONS[side])
    # Beyond the bowl's footprint (0.14 across) by the gap and the block's half size, not off to a side.
    assert offset @ direction == pytest.approx(0.07 + policy.config.beside_gap + 0.02, abs=1e-6)
    assert abs(offset @ np.array([-direction[1], direction[0]])) < 1e-9
    # The block's bottom (it hangs 2 cm below the fingers) just above the table, not above the bowl.
    assert release[2] == pytest.approx(TABLE_Z + policy.config.release_clearance + 0.02, abs=1e-6)


def test_place_between_releases_at_the_midpoint_or_says_there_is_no_room():
    far = _thing("blue block", 0.45, -0.30, 0.04, 0.04)
    policy, scene = ScriptedPolicy(), _scene(far)
    obs = _holding(policy, scene)
    policy.reset(SkillCall(skill="place_between", args={"first": "green bowl", "second": "blue block"}), scene, obs)
    release = _moves(policy)["place_between: lower"].position
    assert release[:2] == pytest.approx((0.5, -0.21))

    near = _thing("blue block", 0.55, -0.23, 0.04, 0.04)  # 2 cm from the bowl's edge: no room for a 4 cm block
    scene = _scene(near)
    policy.reset(SkillCall(skill="place_between", args={"first": "green bowl", "second": "blue block"}), scene, obs)
    assert policy.status(obs) is SkillStatus.FAILURE
    assert "no room between the green bowl and the blue block" in policy.failure_reason()


def test_place_into_a_bowl_aims_at_its_centre_but_a_tray_or_zone_gets_a_free_spot():
    tray = _thing("tray", 0.5, 0.2, 0.24, 0.05)
    zone = _thing("blue zone", 0.5, -0.3, 0.15, 0.002)
    inside = _thing("blue block", 0.5, 0.2, 0.04, 0.04)  # already at the tray's centre
    policy, scene = ScriptedPolicy(), _scene(tray, zone, inside)
    obs = _holding(policy, scene)
    policy.reset(SkillCall(skill="place", args={"target": "green bowl"}), scene, obs)
    assert _moves(policy)["place: lower"].position[:2] == pytest.approx((0.55, -0.12))
    policy.reset(SkillCall(skill="place", args={"target": "blue zone"}), scene, obs)
    assert _moves(policy)["place: lower"].position[:2] == pytest.approx((0.5, -0.3))  # empty: its centre
    policy.reset(SkillCall(skill="place", args={"target": "tray"}), scene, obs)
    spot = np.asarray(_moves(policy)["place: lower"].position[:2])
    assert np.linalg.norm(spot - (0.5, 0.2)) >= 0.04 + policy.config.spread_gap - 1e-6  # clear of the blue block
    assert np.all(np.abs(spot - (0.5, 0.2)) <= 0.12 - policy.config.wall_inset - 0.02 + 1e-9)  # inside the walls


def test_a_plan_of_several_places_into_one_tray_keeps_track_of_what_it_put_there():
    tray = _thing("tray", 0.5, 0.2, 0.24, 0.05)
    blocks = [_thing(f"{c} block", 0.35, y, 0.04, 0.04) for c, y in (("blue", -0.3), ("yellow", -0.2))]
    policy, scene = ScriptedPolicy(), _scene(tray, *blocks)
    spots = []
    for label in ("red block", "blue block", "yellow block"):
        obs = _holding(policy, scene, label)
        policy.reset(SkillCall(skill="place", args={"target": "tray"}), scene, obs)  # the same, stale scene
        spots.append(np.asarray(_moves(policy)["place: lower"].position[:2]))
        _finish_bookkeeping(policy, obs)
    for i in range(3):
        for j in range(i):
            assert np.linalg.norm(spots[i] - spots[j]) >= 0.04 + policy.config.spread_gap - 1e-6
    # A freshly perceived scene replaces what the policy remembered.
    fresh = _scene(tray, *blocks)
    obs = _holding(policy, fresh, "blue block")
    policy.reset(SkillCall(skill="place", args={"target": "tray"}), fresh, obs)
    assert _moves(policy)["place: lower"].position[:2] == pytest.approx((0.5, 0.2))


def test_push_strokes_along_the_line_to_the_target_with_closed_fingers_low_over_the_table():
    zone = _thing("blue zone", 0.45, -0.15, 0.12, 0.002)
    policy, scene = ScriptedPolicy(), _scene(zone)
    obs = synthetic_observation()
    policy.reset(SkillCall(skill="push", args={"object": "red block", "target": "blue zone"}), scene, obs)
    moves = _moves(policy)
    begin, end = np.asarray(moves["push: descend"].position), np.asarray(moves["push: stroke"].position)
    block, goal = np.array([0.45, 0.10]), np.array([0.45, -0.15])
    direction = (goal - block) / np.linalg.norm(goal - block)
    # Starts behind the block (on the far side from the zone) and ends with the block's centre on the zone's.
    behind = begin[:2] - block
    assert behind @ direction < -0.02 and abs(behind[0] * direction[1] - behind[1] * direction[0]) < 1e-9
    assert end[:2] == pytest.approx(goal - direction * (0.02 + policy.config.pusher_radius))
    assert begin[2] == end[2] == pytest.approx(TABLE_Z + 0.02)  # at the block's mid-height
    assert all(m.gripper == 1.0 for name, m in moves.items() if name != "push: raise")
    assert moves["push: stroke"].speed == policy.config.push_speed
    # The fingers lie side by side across the push: the gripper's yaw is the push heading (within half a turn).
    x, y, z, w = moves["push: stroke"].orientation
    assert math.isclose(abs(math.cos(math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))), abs(direction[0]),
                        abs_tol=1e-6)


def test_push_with_something_in_the_gripper_fails_and_an_object_already_inside_needs_nothing():
    zone = _thing("blue zone", 0.45, -0.15, 0.12, 0.002)
    policy, scene = ScriptedPolicy(), _scene(zone)
    obs = _holding(policy, scene)
    policy.reset(SkillCall(skill="push", args={"object": "red block", "target": "blue zone"}), scene, obs)
    assert policy.status(obs) is SkillStatus.FAILURE and "pushing needs an empty gripper" in policy.failure_reason()

    there = _scene(_thing("blue zone", 0.45, 0.11, 0.12, 0.002))
    policy = ScriptedPolicy()
    policy.reset(SkillCall(skill="push", args={"object": "red block", "target": "blue zone"}), there,
                 synthetic_observation())
    assert policy.status(synthetic_observation()) is SkillStatus.SUCCESS
