"""Franka Emika Panda with its parallel gripper (pybullet_data's URDF)."""

from __future__ import annotations

import pybullet as pb

from sims.robots.base import Robot


class Panda(Robot):
    urdf = "franka_panda/panda.urdf"
    ee_link_name = "panda_grasptarget"  # between the fingertips
    # Elbow up, gripper pointing down above the near edge of the workspace.
    home_joints = (0.0, -0.55, 0.0, -2.4, 0.0, 1.85, 0.785)
    max_gripper_width = 0.08

    def setup_gripper(self, links: dict[str, int]) -> None:
        c = self.client
        self.fingers = [links["panda_leftfinger"], links["panda_rightfinger"]]
        # A gear constraint keeps the two fingers symmetric, as the real gripper is.
        gear = pb.createConstraint(
            self.body_id, self.fingers[0], self.body_id, self.fingers[1], jointType=pb.JOINT_GEAR,
            jointAxis=[1, 0, 0], parentFramePosition=[0, 0, 0], childFramePosition=[0, 0, 0], physicsClientId=c,
        )
        pb.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=c)
        for finger in self.fingers:
            pb.changeDynamics(self.body_id, finger, lateralFriction=1.0, spinningFriction=0.01, physicsClientId=c)

    def reset_gripper(self) -> None:
        for finger in self.fingers:
            pb.resetJointState(self.body_id, finger, self.max_gripper_width / 2, physicsClientId=self.client)
        self.command_gripper(0.0)

    def command_gripper(self, closure: float) -> None:
        target = (1.0 - closure) * self.max_gripper_width / 2
        force = self.config.gripper_force
        pb.setJointMotorControlArray(
            self.body_id, self.fingers, pb.POSITION_CONTROL, targetPositions=[target, target],
            forces=[force, force], physicsClientId=self.client,
        )

    def gripper_width(self) -> float:
        a, b = pb.getJointStates(self.body_id, self.fingers, physicsClientId=self.client)
        return float(a[0] + b[0])
