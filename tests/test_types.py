import numpy as np
import pytest
from pydantic import ValidationError

from fmrobot.control.skills import PICK
from fmrobot.errors import ObjectNotFoundError, SkillArgumentError
from fmrobot.testing import synthetic_scene
from fmrobot.types import (
    Action,
    CameraFrame,
    CameraIntrinsics,
    HelpRequest,
    Plan,
    PlanDecision,
    Pose,
    SkillCall,
    quaternion_from_matrix,
    yaw_quaternion,
)


def test_plan_decision_holds_a_plan_or_a_help_request_never_both():
    plan = Plan(steps=(SkillCall(skill="pick", args={"object": "red block"}),))
    PlanDecision(instruction="x", plan=plan)
    PlanDecision(instruction="x", help=HelpRequest(question="which block?"))
    with pytest.raises(ValidationError, match="exactly one"):
        PlanDecision(instruction="x", plan=plan, help=HelpRequest(question="?"))
    with pytest.raises(ValidationError, match="exactly one"):
        PlanDecision(instruction="x")


def test_values_are_frozen_and_arrays_read_only():
    action = Action(ee_position=(0.1, 0.2, 0.3))
    with pytest.raises(ValidationError):
        action.gripper = 1.0
    k = CameraIntrinsics(width=4, height=3, fx=2, fy=2, cx=1.5, cy=1)
    frame = CameraFrame(name="c", rgb=np.zeros((3, 4, 3), np.uint8), depth=np.ones((3, 4), np.float32),
                        intrinsics=k, extrinsics=Pose(position=(0, 0, 0)))
    with pytest.raises(ValueError):
        frame.depth[0, 0] = 5.0


def test_camera_frame_rejects_images_that_disagree_with_its_intrinsics():
    k = CameraIntrinsics(width=4, height=3, fx=2, fy=2, cx=1.5, cy=1)
    with pytest.raises(ValidationError, match="depth has shape"):
        CameraFrame(name="c", rgb=np.zeros((3, 4, 3), np.uint8), depth=np.ones((4, 3), np.float32),
                    intrinsics=k, extrinsics=Pose(position=(0, 0, 0)))


def test_action_array_round_trip_normalizes_quaternion_and_clips_gripper():
    a = Action.from_array(np.array([0.5, 0.0, 0.8, 0.0, 0.0, 0.0, 2.0, 3.0]))
    assert a.ee_orientation == (0.0, 0.0, 0.0, 1.0)
    assert a.gripper == 1.0
    assert np.allclose(Action.from_array(a.to_array()).to_array(), a.to_array())
    # A zero quaternion (random sampling can draw one) falls back to pointing down.
    assert Action.from_array(np.zeros(8)).ee_orientation == (1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="8 entries"):
        Action.from_array(np.zeros(7))


def test_scene_find_names_what_was_perceived_when_the_label_is_missing():
    scene = synthetic_scene()
    assert scene.find("  Red   Block ").label == "red block"
    with pytest.raises(ObjectNotFoundError, match="perceived: green bowl, red block"):
        scene.find("purple block")


def test_skill_spec_validates_calls_against_its_parameter_model():
    PICK.validate_call(SkillCall(skill="pick", args={"object": "red block"}))
    with pytest.raises(SkillArgumentError, match="pick takes: object"):
        PICK.validate_call(SkillCall(skill="pick", args={"thing": "red block"}))
    with pytest.raises(SkillArgumentError, match="object"):
        PICK.validate_call(SkillCall(skill="pick", args={"object": 3}))


@pytest.mark.parametrize("angle", [0.0, 0.3, np.pi / 2, np.pi - 1e-9, -2.5])
def test_quaternion_from_matrix_matches_pose_rotation_for_all_angles(angle):
    axis = np.array([1.0, -1.0, 0.5]) / np.linalg.norm([1.0, -1.0, 0.5])
    q = (*(axis * np.sin(angle / 2)), np.cos(angle / 2))
    matrix = Pose(position=(0, 0, 0), orientation=q).rotation_matrix()
    back = Pose(position=(0, 0, 0), orientation=quaternion_from_matrix(matrix)).rotation_matrix()
    assert np.allclose(matrix, back, atol=1e-9)


def test_yaw_quaternion_turns_the_top_down_grasp_about_world_z():
    matrix = Pose(position=(0, 0, 0), orientation=yaw_quaternion(np.pi / 2)).rotation_matrix()
    assert np.allclose(matrix[:, 2], [0, 0, -1], atol=1e-9)  # still pointing down
    assert np.allclose(matrix[:, 0], [0, 1, 0], atol=1e-9)  # x axis turned onto world y
