import io

from fmrobot.responders import ConsoleResponder, OracleResponder
from fmrobot.testing import synthetic_context
from fmrobot.types import HelpRequest, Plan, SkillCall, SkillStatus, StepFeedback

PICK_RED = SkillCall(skill="pick", args={"object": "red block"})
PICK_BLUE = SkillCall(skill="pick", args={"object": "blue block"})
PLACE_GREEN = SkillCall(skill="place", args={"target": "green bowl"})


def request(*plans: Plan) -> HelpRequest:
    return HelpRequest(question="which?", options=tuple(str(p) for p in plans), choices=plans)


def test_oracle_responder_picks_the_option_that_continues_the_intended_plan():
    context = synthetic_context()  # oracle: pick red block, place green bowl
    asked = request(Plan(steps=(PICK_BLUE,), final=False), Plan(steps=(PICK_RED,), final=False))
    assert OracleResponder().respond(asked, context, ()) == 1
    picked = (StepFeedback(step_index=0, call=PICK_RED, status=SkillStatus.SUCCESS),)
    later = request(Plan(steps=(), final=True), Plan(steps=(PLACE_GREEN,), final=False))
    assert OracleResponder().respond(later, context, picked) == 1
    both = picked + (StepFeedback(step_index=0, call=PLACE_GREEN, status=SkillStatus.SUCCESS),)
    assert OracleResponder().respond(later, context, both) == 0  # everything done: "done" is meant
    assert OracleResponder().respond(request(Plan(steps=(PICK_BLUE,), final=False)), context, ()) is None


def test_console_responder_reads_a_number_and_asks_again_after_nonsense():
    out = io.StringIO()
    asked = request(Plan(steps=(PICK_BLUE,), final=False), Plan(steps=(PICK_RED,), final=False))
    answer = ConsoleResponder(stdin=io.StringIO("red\n7\n2\n"), stdout=out).respond(asked, synthetic_context(), ())
    assert answer == 1
    assert "which?" in out.getvalue() and "1. pick(object='blue block')" in out.getvalue()
    assert out.getvalue().count("expected a number from 0 to 2") == 2


def test_console_responder_none_of_these_and_end_of_input():
    asked = request(Plan(steps=(PICK_BLUE,), final=False))
    context = synthetic_context()
    assert ConsoleResponder(stdin=io.StringIO("0\n"), stdout=io.StringIO()).respond(asked, context, ()) is None
    assert ConsoleResponder(stdin=io.StringIO(""), stdout=io.StringIO()).respond(asked, context, ()) is None
