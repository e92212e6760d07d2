"""Ask a language model for JSON until an answer parses: each rejected answer goes back to the model
with what was wrong, a bounded number of times. The structured and VLM planners and the VLM success
detector share it; what an answer must be, and what to do when none is, stays theirs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from fmrobot.interfaces import LanguageModel, Message

T = TypeVar("T")


@dataclass
class Reply(Generic[T]):
    """The parsed answer and the attempt that gave it; `value` None when every attempt was rejected."""

    value: T | None
    attempt: int
    errors: list[str] = field(default_factory=list)  # why each rejected answer was rejected, in order


def ask_until_valid(llm: LanguageModel, messages: Sequence[Message], schema: type[BaseModel] | None,
                    parse: Callable[[str], T], attempts: int, rejected: tuple[type[Exception], ...],
                    what: str = "answer") -> Reply[T]:
    """`parse(answer)` of the first answer it accepts, within `attempts` answers; `parse` rejects one by
    raising one of `rejected`, whose message is shown to the model with the answer."""
    messages = list(messages)
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        answer = llm.generate(messages, schema=schema)
        try:
            return Reply(parse(answer), attempt, errors)
        except rejected as error:
            errors.append(str(error))
            messages += [Message(role="assistant", content=answer),
                         Message(role="user", content=f"That is not a valid {what}: {error}. "
                                                      "Reply with the corrected JSON only.")]
    return Reply(None, attempts, errors)
