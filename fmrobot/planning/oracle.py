"""Oracle planning: execute the task's own solution (privileged; for attribution and tests)."""

from __future__ import annotations

from fmrobot.errors import PlanningError
from fmrobot.types import PlanDecision, PlanningContext, SceneDescription, StepFeedback


class OraclePlanner:
    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision:
        if context.oracle_plan is None:
            raise PlanningError("the oracle planner needs the task's oracle plan; this environment gives none")
        return PlanDecision(instruction=instruction, plan=context.oracle_plan, rationale="task oracle")

    def replan(
        self, previous: PlanDecision, feedback: StepFeedback, scene: SceneDescription, context: PlanningContext
    ) -> PlanDecision:
        return self.plan(previous.instruction, scene, context)
