"""A tiny planner plugin: pick the first object the instruction names, place it in the second."""

from pydantic import BaseModel

from fmrobot.errors import PlanningError
from fmrobot.types import Plan, PlanDecision, SkillCall


class TinyPlanner:
    class Config(BaseModel):
        confidence: float = 0.9

    def __init__(self, config=None):
        self.config = config or self.Config()

    def plan(self, instruction, scene, context):
        text = instruction.lower()
        named = sorted((text.find(label), label) for label in scene.labels if label in text)
        if len(named) < 2:
            raise PlanningError(f"need two objects from the scene in {instruction!r}; scene: {scene.labels}")
        (_, first), (_, second) = named[:2]
        plan = Plan(steps=(SkillCall(skill="pick", args={"object": first}),
                           SkillCall(skill="place", args={"target": second})))
        return PlanDecision(instruction=instruction, plan=plan, confidence=self.config.confidence,
                            rationale="tiny planner: first named object into the second")

    def replan(self, previous, feedback, scene, context):
        return self.plan(previous.instruction, scene, context)
