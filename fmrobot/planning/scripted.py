"""Scripted planning: parse the instruction through the task's own templates.

No learning and no guessing: an instruction that fits no template, or that names an
object the scene does not hold, is a planning error that says what exists.
"""

from __future__ import annotations

from fmrobot.errors import ObjectNotFoundError, PlanningError, shown
from fmrobot.planning.instructions import checked_instruction
from fmrobot.planning.templates import match
from fmrobot.types import PlanDecision, PlanningContext, SceneDescription, StepFeedback


class ScriptedPlanner:
    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision:
        checked_instruction(instruction)
        for template in context.task.templates:
            slots = match(template, instruction)
            if slots is None:
                continue
            for slot, label in slots.items():
                if not scene.has(label):
                    seen = ", ".join(sorted(scene.labels)) or "nothing"
                    raise ObjectNotFoundError(
                        f"the instruction names {shown(label, 80)} ({slot}), which is not in the scene; "
                        f"perceived: {seen}"
                    )
            plan = template.plan_for(**slots)
            if not plan.steps:
                raise PlanningError(
                    f"instruction {shown(instruction, 120)} matches {template.text!r}, whose steps depend on the "
                    f"scene, not on the words; {context.task.name} needs a planner that reads the scene "
                    "(planner=llm_goal, llm_scoring, llm_structured or oracle)")
            for step in plan.steps:
                context.skill(step.skill).validate_call(step)
            return PlanDecision(instruction=instruction, plan=plan, rationale=f"matched {template.text!r}")
        known = "; ".join(repr(t.text) for t in context.task.templates)
        raise PlanningError(
            f"instruction {shown(instruction, 120)} fits none of the {context.task.name} templates: {known}")

    def replan(
        self, previous: PlanDecision, feedback: StepFeedback, scene: SceneDescription, context: PlanningContext
    ) -> PlanDecision:
        # Every template plan starts from the objects where they are now, so planning
        # again on the fresh scene recovers from a dropped or missed object.
        return self.plan(previous.instruction, scene, context)
