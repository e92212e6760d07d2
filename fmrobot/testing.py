"""Conformance checks for component authors: one call each, real calls, clear failures.

    from fmrobot.testing import check_planner
    check_planner(MyPlanner())

The checks build a small synthetic scene (no simulator needed): a top-down RGB-D camera
over a table holding a red block and a green bowl. Each check raises
`ConformanceError` naming what the component did wrong.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from fmrobot.control.skills import PICK, PLACE
from fmrobot.errors import FmrobotError
from fmrobot.interfaces import ActionContext, MotionShield, NeedsImages, WatchesCamera
from fmrobot.types import (
    Action,
    ActionVerdict,
    CameraFrame,
    CameraIntrinsics,
    DetectedObject,
    GoalOption,
    InstructionTemplate,
    Observation,
    Plan,
    PlanDecision,
    PlanningContext,
    Pose,
    RobotState,
    SafetyVerdict,
    SceneDescription,
    SkillCall,
    SkillStatus,
    StepFeedback,
    TaskSpec,
    quaternion_from_matrix,
)

TABLE_Z = 0.625
#: label -> (centre x, centre y, footprint half size, height), for the synthetic scene
SYNTHETIC_OBJECTS: dict[str, tuple[float, float, float, float]] = {
    "red block": (0.45, 0.10, 0.02, 0.04),
    "green bowl": (0.55, -0.12, 0.07, 0.05),
}
_COLORS = {"red block": (220, 30, 30), "green bowl": (40, 170, 50)}


class ConformanceError(AssertionError):
    """A component broke the contract of its interface."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


# --------------------------------------------------------------------------- fixtures


def synthetic_observation(width: int = 160, height: int = 120) -> Observation:
    """A top-down RGB-D frame of SYNTHETIC_OBJECTS on a table, with segmentation labels."""
    eye = np.array([0.5, 0.0, TABLE_Z + 0.9])
    fov = math.radians(45.0)
    focal = height / (2 * math.tan(fov / 2))
    k = CameraIntrinsics(width=width, height=height, fx=focal, fy=focal, cx=(width - 1) / 2, cy=(height - 1) / 2)
    # Looking straight down: camera x = world -y, camera y = world -x, camera z = world -z.
    rotation = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    from_camera = Pose(position=tuple(eye), orientation=quaternion_from_matrix(rotation))
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(cols - k.cx) / k.fx, (rows - k.cy) / k.fy, np.ones_like(cols, dtype=float)], axis=-1)
    depth = np.full((height, width), eye[2] - TABLE_Z, dtype=np.float32)
    rgb = np.full((height, width, 3), (200, 180, 150), dtype=np.uint8)
    seg = np.full((height, width), -1, dtype=np.int32)
    labels = {}
    for body_id, (label, (x, y, half, h)) in enumerate(SYNTHETIC_OBJECTS.items(), start=2):
        top_depth = eye[2] - (TABLE_Z + h)
        world = rays * top_depth @ rotation.T + eye  # where each pixel's ray meets the top plane
        inside = (np.abs(world[..., 0] - x) <= half) & (np.abs(world[..., 1] - y) <= half)
        depth[inside] = top_depth
        rgb[inside] = _COLORS[label]
        seg[inside] = body_id
        labels[body_id] = label
    frame = CameraFrame(name="top", rgb=rgb, depth=depth, segmentation=seg, intrinsics=k, extrinsics=from_camera)
    return Observation(step=0, time=0.0, dt=0.05, robot=synthetic_robot_state(), frames=(frame,),
                       segmentation_labels=labels)


def synthetic_robot_state() -> RobotState:
    return RobotState(
        joint_positions=np.zeros(7), joint_velocities=np.zeros(7),
        ee_pose=Pose(position=(0.4, 0.0, 1.0), orientation=(1.0, 0.0, 0.0, 0.0)),
        gripper_width=0.08, gripper_max_width=0.08,
    )


def synthetic_scene() -> SceneDescription:
    objects = tuple(
        DetectedObject(label=label, score=1.0, position=(x, y, TABLE_Z + h / 2), extent=(2 * half, 2 * half, h),
                       yaw=0.0)
        for label, (x, y, half, h) in SYNTHETIC_OBJECTS.items()
    )
    return SceneDescription(objects=objects, source="synthetic")


def synthetic_context() -> PlanningContext:
    plan = (SkillCall(skill="pick", args={"object": "{block}"}), SkillCall(skill="place", args={"target": "{bowl}"}))
    task = TaskSpec(
        name="synthetic_pick_place",
        description="Put one named block into one named bowl.",
        skills=("pick", "place"),
        templates=(InstructionTemplate(text="put the {block} in the {bowl}", plan=plan),),
        vocabulary=tuple(SYNTHETIC_OBJECTS),
    )
    oracle = task.templates[0].plan_for(block="red block", bowl="green bowl")
    return PlanningContext(skills=(PICK, PLACE), task=task, oracle_plan=oracle, domain=SyntheticGoalDomain())


class SyntheticGoalDomain:
    """The synthetic task's goals: any perceived block into any perceived bowl."""

    def options(self, scene: SceneDescription) -> list[GoalOption]:
        blocks = [o.label for o in scene.objects if o.label.endswith("block")]
        bowls = [o.label for o in scene.objects if o.label.endswith("bowl")]
        return [GoalOption(description=f"put the {block} in the {bowl}", objects=(block, bowl),
                           plan=Plan(steps=(SkillCall(skill="pick", args={"object": block}),
                                            SkillCall(skill="place", args={"target": bowl}))),
                           goal={"block": block, "bowl": bowl})
                for block in blocks for bowl in bowls]


# --------------------------------------------------------------------------- checks


def check_perceptor(perceptor: Any, obs: Observation | None = None, queries: Sequence[str] | None = None,
                    expect_labels: bool = False) -> SceneDescription:
    """Perceive the synthetic frame; with `expect_labels`, both objects must be found
    within 2 cm of where they are."""
    obs = obs or synthetic_observation()
    queries = list(queries if queries is not None else SYNTHETIC_OBJECTS)
    _require(isinstance(perceptor, NeedsImages) and isinstance(perceptor.needs_images, bool),
             "a perceptor has a bool `needs_images`")
    scene = perceptor.perceive(obs, queries)
    _require(isinstance(scene, SceneDescription), f"perceive() returned {type(scene).__name__}, not SceneDescription")
    for obj in scene.objects:
        _require(all(math.isfinite(v) for v in (*obj.position, *obj.extent)), f"non-finite geometry in {obj}")
        _require(all(v >= 0 for v in obj.extent), f"negative extent in {obj}")
    again = perceptor.perceive(obs, queries)
    _require(again == scene, "perceive() gave different scenes for the same observation")
    if expect_labels:
        for label, (x, y, _, _) in SYNTHETIC_OBJECTS.items():
            _require(scene.has(label), f"{label!r} not perceived; perceived: {scene.labels}")
            found = scene.find(label)
            error = math.hypot(found.position[0] - x, found.position[1] - y)
            _require(error < 0.02, f"{label!r} perceived {error * 100:.1f} cm from where it is")
    return scene


def check_planner(planner: Any, instruction: str = "put the red block in the green bowl",
                  scene: SceneDescription | None = None, context: PlanningContext | None = None) -> PlanDecision:
    """Plan on the synthetic scene; replan after a failure; refuse an absent object cleanly."""
    scene = scene or synthetic_scene()
    context = context or synthetic_context()
    if isinstance(planner, WatchesCamera):  # as the runner does: it sees the scene before it plans
        planner.see(synthetic_observation())
    decision = planner.plan(instruction, scene, context)
    _check_decision(decision, instruction, scene, context)
    if decision.plan is not None and decision.plan.steps:
        feedback = StepFeedback(step_index=0, call=decision.plan.steps[0], status=SkillStatus.FAILURE,
                                reason="synthetic failure")
        again = planner.replan(decision, feedback, scene, context)
        _check_decision(again, instruction, scene, context)
    absent = "put the purple block in the green bowl"
    try:
        refused = planner.plan(absent, scene, context)
    except FmrobotError:
        pass  # a clear, deliberate error is the contract
    except Exception as error:
        raise ConformanceError(
            f"planning {absent!r} (no purple block in the scene) raised {type(error).__name__}: {error}; "
            "raise fmrobot.errors.PlanningError or return a help request"
        ) from error
    else:
        _check_decision(refused, absent, scene, context)
        if refused.plan is not None:
            named = {str(v) for step in refused.plan.steps for v in step.args.values()}
            _require("purple block" not in named, "the planner planned with an object that is not in the scene")
    return decision


def _check_decision(decision: Any, instruction: str, scene: SceneDescription, context: PlanningContext) -> None:
    _require(isinstance(decision, PlanDecision), f"planner returned {type(decision).__name__}, not PlanDecision")
    if decision.plan is None:
        return
    for step in decision.plan.steps:
        spec = context.skill(step.skill)
        spec.validate_call(step)
        for label in step.objects(spec):
            _require(scene.has(label), f"plan step {step} names {label!r}, which is not in the scene")


def check_policy(policy: Any, obs: Observation | None = None, scene: SceneDescription | None = None,
                 steps: int = 5) -> list[Action]:
    """Reset on each skill it offers, act a few steps; refuse an unknown skill cleanly."""
    obs = obs or synthetic_observation()
    scene = scene or synthetic_scene()
    skills = list(getattr(policy, "skills", ()))
    _require(bool(skills), "a policy lists the skills it executes in `skills`")
    actions = []
    calls = {"pick": SkillCall(skill="pick", args={"object": "red block"}),
             "place": SkillCall(skill="place", args={"target": "green bowl"})}
    for spec in skills:
        if spec.name not in calls:
            continue
        policy.reset(calls[spec.name], scene, obs)
        for _ in range(steps):
            status = policy.status(obs)
            _require(isinstance(status, SkillStatus), f"status() returned {status!r}, not SkillStatus")
            if status is not SkillStatus.RUNNING:
                _require(status is SkillStatus.SUCCESS or bool(policy.failure_reason()),
                         "a failed skill must give a failure_reason()")
                break
            action = policy.act(obs)
            _require(isinstance(action, Action), f"act() returned {type(action).__name__}, not Action")
            _require(all(math.isfinite(v) for v in action.ee_position), f"non-finite action {action}")
            actions.append(action)
    try:
        policy.reset(SkillCall(skill="juggle", args={}), scene, obs)
    except FmrobotError:
        pass
    except Exception as error:
        raise ConformanceError(
            f"reset() with an unknown skill raised {type(error).__name__}: {error}; "
            "raise fmrobot.errors.SkillArgumentError"
        ) from error
    else:
        raise ConformanceError("reset() accepted the unknown skill 'juggle'")
    return actions


def check_shield(shield: Any, scene: SceneDescription | None = None) -> SafetyVerdict:
    """A plan on the synthetic scene gets a verdict; a refusal always says why."""
    scene = scene or synthetic_scene()
    plan = synthetic_context().oracle_plan
    assert plan is not None
    verdict = shield.check(plan, scene)
    _require(isinstance(verdict, SafetyVerdict), f"check() returned {type(verdict).__name__}, not SafetyVerdict")
    _require(verdict.allowed or bool(verdict.violations), "a refused plan must list its violations")
    _require(not verdict.allowed or isinstance(verdict.plan, Plan), "an allowed verdict carries the plan to run")
    if isinstance(shield, MotionShield):
        _check_motion_shield(shield, scene, plan.steps[0])
    return verdict


def _check_motion_shield(shield: Any, scene: SceneDescription, call: SkillCall) -> None:
    """Every verdict carries an action or its reasons; standing still is never repaired into a move."""
    obs = synthetic_observation()
    here = Action(ee_position=obs.robot.ee_pose.position, ee_orientation=obs.robot.ee_pose.orientation)
    context = ActionContext(call=call, involved=frozenset(call.args.values()), scene=scene, obs=obs, previous=None,
                            probe=None)
    for action in (here, here.model_copy(update={"ee_position": (5.0, 5.0, 5.0)})):
        verdict = shield.check_action(action, context)
        _require(isinstance(verdict, ActionVerdict),
                 f"check_action() returned {type(verdict).__name__}, not ActionVerdict")
        _require(verdict.allowed == (verdict.action is not None), "an allowed action verdict carries the action")
        _require(verdict.allowed or any(not v.repaired for v in verdict.violations),
                 "a refused action must list the violation that refused it")
    still = shield.check_action(here, context)
    _require(not still.allowed or still.action == here, "standing still was changed: a repair must not move a still arm")
