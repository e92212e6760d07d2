"""Oracle planning: execute the task's own solution (privileged; for attribution and tests)."""

from __future__ import annotations

from fmrobot.errors import PlanningError
from fmrobot.planning.instructions import checked_instruction
from fmrobot.types import Plan, PlanDecision, PlanningContext, SceneDescription, StepFeedback


class OraclePlanner:
    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision:
        checked_instruction(instruction)
        if context.oracle_plan is None:
            raise PlanningError("the oracle planner needs the task's oracle plan; this environment gives none")
        return PlanDecision(instruction=instruction, plan=context.oracle_plan, rationale="task oracle")

    def replan(
        self, previous: PlanDecision, feedback: StepFeedback, scene: SceneDescription, context: PlanningContext
    ) -> PlanDecision:
        """Resume the oracle plan at the failed step, not from the start: steps before it are done
        (re-picking a sorted block would undo it). A failed step that is not a pick resumes at the
        pick before it, since whatever was held may have been dropped."""
        resumed = resume_after(previous, feedback)
        if resumed is None:
            return self.plan(previous.instruction, scene, context)
        return resumed.model_copy(update={"rationale": f"task oracle, {resumed.rationale} after: {feedback.reason}"})


def resume_after(previous: PlanDecision, feedback: StepFeedback) -> PlanDecision | None:
    """The rest of a whole-task plan from its failed step, or from the pick before it (whatever was
    held may have been dropped); None when the feedback is not about a step of that plan."""
    if previous.plan is None or not 0 <= feedback.step_index < len(previous.plan.steps):
        return None
    steps = previous.plan.steps
    start = feedback.step_index
    while start > 0 and steps[start].skill != "pick":
        start -= 1
    return PlanDecision(instruction=previous.instruction, plan=Plan(steps=steps[start:], final=True),
                        rationale=f"resumed at step {start + 1}")
