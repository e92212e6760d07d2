from fmrobot.planning.oracle import OraclePlanner
from fmrobot.testing import synthetic_context, synthetic_scene
from fmrobot.types import SkillCall, SkillStatus, StepFeedback

PICK_RED = SkillCall(skill="pick", args={"object": "red block"})


def test_replanning_resumes_at_the_pick_before_the_failed_step():
    planner, scene, context = OraclePlanner(), synthetic_scene(), synthetic_context()
    first = planner.plan("anything", scene, context)
    assert first.plan.steps[0] == PICK_RED and len(first.plan.steps) == 2
    failed_place = StepFeedback(step_index=1, call=first.plan.steps[1], status=SkillStatus.FAILURE, reason="dropped")
    again = planner.replan(first, failed_place, scene, context)
    assert again.plan.steps == first.plan.steps and "resumed at step 1" in again.rationale
    doubled = first.model_copy(update={"plan": first.plan.model_copy(update={"steps": first.plan.steps * 2})})
    failed_second_pick = StepFeedback(step_index=2, call=PICK_RED, status=SkillStatus.FAILURE, reason="slipped")
    resumed = planner.replan(doubled, failed_second_pick, scene, context)
    assert resumed.plan.steps == first.plan.steps  # the first pick and place are not repeated
