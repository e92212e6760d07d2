"""A task's goals as a planner may choose among them (fmrobot.interfaces.GoalDomain).

Tasks list the goals they can pursue among the objects a planner perceived, each with
the words it reads as and the plan that reaches it (the task's own solver). The
listing reads only the perceived scene, never the episode's goal or the world, so it
is not privileged: what it knows is the task, as a PDDL domain and planner do in LLM+P.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

from fmrobot.errors import PlanningError
from fmrobot.types import DetectedObject, GoalOption, SceneDescription

if TYPE_CHECKING:
    from sims.tasks.base import Task
    from sims.world import World


class TaskGoalDomain:
    """The goal domain of one task instance."""

    def __init__(self, task: Task):
        self.task = task

    def options(self, scene: SceneDescription) -> list[GoalOption]:
        options = self.task.goal_options(scene)
        if not options:
            raise PlanningError(f"task {self.task.name} lists no goal it can pursue among the perceived objects "
                                f"({', '.join(scene.labels) or 'nothing'})")
        return options


def labels_of(scene: SceneDescription, *nouns: str) -> list[str]:
    """Perceived labels whose noun is one of `nouns` ("red block", "red block 2"), in scene order."""
    found = []
    for label in dict.fromkeys(scene.labels):
        words = [w for w in label.split() if not w.isdigit()]
        if words and words[-1] in nouns:
            found.append(label)
    return found


def color_of(label: str) -> str:
    return label.split()[0]


def plural(noun: str) -> str:
    return noun + ("es" if re.search(r"(s|x|ch|sh)$", noun) else "s")


def listed(labels: Sequence[str]) -> str:
    """'the red block, the blue block and the green block'."""
    items = [f"the {label}" for label in labels]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def world_scene(world: World) -> SceneDescription:
    """The world's objects as a perfect perceptor would report them, without rendering: for
    symbolic planning and for building examples from training seeds (privileged)."""
    objects = []
    for label, body in world.bodies.items():
        position = tuple(float(v) for v in world.position(label))
        objects.append(DetectedObject(label=label, score=1.0, position=position,
                                      extent=(float(body.size), float(body.size), float(body.height))))
    return SceneDescription(objects=tuple(objects), source="world")
