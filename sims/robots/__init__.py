"""Robot models, chosen by name (`robot=panda`)."""

from __future__ import annotations

from typing import Any, Mapping

from sims.robots.base import Robot, RobotConfig
from sims.robots.panda import Panda
from sims.robots.ur5e_robotiq import UR5eRobotiq

ROBOTS: dict[str, type[Robot]] = {"panda": Panda, "ur5e_robotiq": UR5eRobotiq}


def robot_class(name: str) -> type[Robot]:
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; robots: {', '.join(sorted(ROBOTS))}") from None


def robot_config(node: Mapping[str, Any] | RobotConfig | None) -> RobotConfig:
    if isinstance(node, RobotConfig):
        return node
    options = dict(node or {"name": "panda"})
    cls = robot_class(str(options.get("name", "panda")))
    return cls.Config.model_validate(options)


__all__ = ["ROBOTS", "Robot", "RobotConfig", "robot_class", "robot_config"]
