"""Scenes, goal options and mismatch counts for the tests of llm_goal's reading of instructions."""

from fmrobot.planning.grounding import mentioned_labels
from fmrobot.planning.llm_goal import LlmGoalPlanner, about
from fmrobot.types import DetectedObject, GoalOption, Plan, SceneDescription, SkillCall


def scene(*placed):
    """Objects at (x, y): x away from the robot, y to its left."""
    return SceneDescription(objects=tuple(
        DetectedObject(label=label, score=1.0, position=(x, y, 0.7), extent=(0.04,) * 3) for label, x, y in placed))


def option(description, objects, relations=(), excluded=()):
    plan = Plan(steps=tuple(SkillCall(skill="pick", args={"object": o}) for o in objects))
    return GoalOption(description=description, objects=tuple(objects), relations=relations, excluded=excluded,
                      plan=plan)


def misses(instruction, options, scene):
    """Each option's count of mismatches with what the instruction says explicitly."""
    named = [about(o, scene) for o in options]
    return LlmGoalPlanner.mismatch_counts(instruction, options, named, mentioned_labels(instruction, scene), scene)
