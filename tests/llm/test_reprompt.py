"""ask_until_valid: a rejected answer goes back to the model with its error, within the bound."""

from __future__ import annotations

from fmrobot.interfaces import Message
from fmrobot.llm.reprompt import ask_until_valid


class Answers:
    def __init__(self, *answers: str):
        self.answers, self.seen = list(answers), []

    def generate(self, messages, schema=None):
        self.seen.append([m.text for m in messages])
        return self.answers.pop(0)

    def score(self, prompt, continuations):
        raise AssertionError("not used")


def number(answer: str) -> int:
    if not answer.isdigit():
        raise ValueError(f"{answer!r} is not a number")
    return int(answer)


def test_a_rejected_answer_is_shown_back_with_its_error_and_the_next_is_taken():
    llm = Answers("seven", "7")
    reply = ask_until_valid(llm, [Message(role="user", content="a number?")], None, number, 3, (ValueError,),
                            what="number")
    assert (reply.value, reply.attempt, reply.errors) == (7, 2, ["'seven' is not a number"])
    assert llm.seen[1][-2:] == ["seven", "That is not a valid number: 'seven' is not a number. "
                                         "Reply with the corrected JSON only."]


def test_no_valid_answer_within_the_bound_gives_none_and_every_error_and_other_errors_propagate():
    reply = ask_until_valid(Answers("a", "b"), [Message(role="user", content="?")], None, number, 2, (ValueError,))
    assert reply.value is None and len(reply.errors) == 2
    try:
        ask_until_valid(Answers("a"), [Message(role="user", content="?")], None, number, 2, (KeyError,))
    except ValueError as error:
        assert "'a' is not a number" in str(error)
    else:
        raise AssertionError("an error parse raises that is not a rejection must propagate")
