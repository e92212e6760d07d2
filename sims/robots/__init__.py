"""Robot models, chosen by name (`robot=panda`).

Robots are components of the entry-point group `fmrobot.robots`, resolved by fmrobot's
registry like every other group, so a package installed next to fmrobot adds a robot
without touching sims.
"""

from __future__ import annotations

from typing import Any, Mapping

from fmrobot import registry
from sims.robots.base import Robot, RobotConfig

DEFAULT_ROBOT = "panda"


def robot_names() -> list[str]:
    """Robots registered by every installed package."""
    return registry.available("robot")


def robot_class(name: str) -> type[Robot]:
    return registry.load("robot", name)


def resolve_robot(node: Mapping[str, Any] | None) -> registry.Resolved:
    """The robot a config node names (the Panda when it names none), with its options validated."""
    return registry.resolve("robot", {"name": DEFAULT_ROBOT, **dict(node or {})})


def robot_config(node: Mapping[str, Any] | None) -> RobotConfig:
    config = resolve_robot(node).config
    assert isinstance(config, RobotConfig)
    return config


__all__ = ["DEFAULT_ROBOT", "Robot", "RobotConfig", "resolve_robot", "robot_class", "robot_config", "robot_names"]
