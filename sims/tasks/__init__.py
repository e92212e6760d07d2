"""Tabletop tasks: scene setup, instruction templates, named success predicates, oracle."""

from sims.tasks.base import Task, TaskConfig

__all__ = ["Task", "TaskConfig"]
