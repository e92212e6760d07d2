"""A robot plugin: the Panda under another name, with a gentler default grip."""

from sims.robots.base import RobotConfig
from sims.robots.panda import Panda


class TinyArmConfig(RobotConfig):
    gripper_force: float = 35.0


class TinyArm(Panda):
    Config = TinyArmConfig
