"""What every simulated arm offers the environment: load, home, command, state."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pybullet as pb
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import Pose, RobotState
from sims.world import ShapePart, collision_parts


class RobotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The robot's name is not an option: it is the entry point (fmrobot.robots) the config node names.
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.625)
    base_yaw: float = 0.0
    # A few warm-started iterations per control step track a moving target; the solver
    # restarts from the current joints every step.
    ik_iterations: int = Field(default=10, ge=1, le=200)
    ik_residual: float = Field(default=1e-4, gt=0.0)
    gripper_force: float = Field(default=40.0, gt=0.0)


class Robot(ABC):
    """An arm with a parallel gripper, driven by absolute end-effector targets."""

    Config = RobotConfig
    urdf: str
    ee_link_name: str
    home_joints: tuple[float, ...]

    def __init__(self, client: int, config: RobotConfig):
        self.client = client
        self.config = config
        self.body_id = -1
        self.arm_joints: list[int] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.ranges: list[float] = []
        self.forces: list[float] = []
        self.ee_link = -1
        self.joint_targets: list[float] = []  # the last IK solution sent to the arm
        self.gripper_parts: list[ShapePart] = []  # see _measure_gripper

    def load(self) -> None:
        """Load into the (freshly reset) world and move to the home posture."""
        c = self.client
        self.body_id = pb.loadURDF(
            self.urdf,
            self.config.base_position,
            pb.getQuaternionFromEuler([0, 0, self.config.base_yaw]),
            useFixedBase=True,
            flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
            physicsClientId=c,
        )
        self.arm_joints, self.lower, self.upper, self.forces = [], [], [], []
        links = {}
        for j in range(pb.getNumJoints(self.body_id, physicsClientId=c)):
            info = pb.getJointInfo(self.body_id, j, physicsClientId=c)
            links[info[12].decode()] = j
            if info[2] == pb.JOINT_REVOLUTE and len(self.arm_joints) < len(self.home_joints):
                self.arm_joints.append(j)
                self.lower.append(info[8])
                self.upper.append(info[9])
                self.forces.append(info[10])
        self.ranges = [u - l for l, u in zip(self.lower, self.upper)]
        self._rest = list(self.home_joints)
        self.ee_link = links[self.ee_link_name]
        self.movable_joints = [
            j for j in range(pb.getNumJoints(self.body_id, physicsClientId=c))
            if pb.getJointInfo(self.body_id, j, physicsClientId=c)[2] != pb.JOINT_FIXED
        ]
        self._arm_slots = [self.movable_joints.index(j) for j in self.arm_joints]
        self.setup_gripper(links)
        self.reset_home()
        self.gripper_parts = self._measure_gripper()

    def _measure_gripper(self) -> list[ShapePart]:
        """The collision shapes of the links past the wrist (hand and fingers, as they are at
        home: open), posed in the end-effector frame, for collision queries on a pose the robot
        has not reached yet. Read from the URDF's own shapes: no robot-specific numbers."""
        c = self.client
        ee = pb.getLinkState(self.body_id, self.ee_link, computeForwardKinematics=True, physicsClientId=c)
        links = range(max(self.arm_joints) + 1, pb.getNumJoints(self.body_id, physicsClientId=c))
        return collision_parts(c, self.body_id, links, (ee[4], ee[5]))

    def reset_home(self) -> None:
        for joint, q in zip(self.arm_joints, self.home_joints):
            pb.resetJointState(self.body_id, joint, q, physicsClientId=self.client)
        self.reset_gripper()
        self._hold(list(self.home_joints))

    def _hold(self, joints: list[float]) -> None:
        pb.setJointMotorControlArray(
            self.body_id, self.arm_joints, pb.POSITION_CONTROL, targetPositions=joints, forces=self.forces,
            physicsClientId=self.client,
        )

    def command(self, position, orientation, closure: float) -> None:
        """Solve IK for an end-effector target and send joint and gripper commands.

        Takes plain sequences, not an `Action`: the gymnasium step calls this every
        control step and skips building value objects it would throw away.
        """
        solution = pb.calculateInverseKinematics(
            self.body_id, self.ee_link, position, orientation,
            lowerLimits=self.lower, upperLimits=self.upper, jointRanges=self.ranges,
            restPoses=self._rest, maxNumIterations=self.config.ik_iterations,
            residualThreshold=self.config.ik_residual, physicsClientId=self.client,
        )
        self.joint_targets = [solution[i] for i in self._arm_slots]
        self._hold(self.joint_targets)
        self.command_gripper(closure)

    def raw_state(self) -> tuple[list, list, tuple, tuple, float]:
        """Joint positions, joint velocities, ee position, ee orientation, gripper width."""
        c = self.client
        joints = pb.getJointStates(self.body_id, self.arm_joints, physicsClientId=c)
        link = pb.getLinkState(self.body_id, self.ee_link, computeForwardKinematics=True, physicsClientId=c)
        return [j[0] for j in joints], [j[1] for j in joints], link[4], link[5], self.gripper_width()

    def state(self) -> RobotState:
        q, dq, position, orientation, width = self.raw_state()
        return RobotState(
            joint_positions=np.array(q),
            joint_velocities=np.array(dq),
            ee_pose=Pose(position=position, orientation=orientation),
            gripper_width=width,
            gripper_max_width=self.max_gripper_width,
        )

    # ------------------------------------------------------------------ gripper

    max_gripper_width: float

    @abstractmethod
    def setup_gripper(self, links: dict[str, int]) -> None: ...

    @abstractmethod
    def reset_gripper(self) -> None: ...

    @abstractmethod
    def command_gripper(self, closure: float) -> None:
        """0 opens fully, 1 closes with the configured force limit."""

    @abstractmethod
    def gripper_width(self) -> float: ...
