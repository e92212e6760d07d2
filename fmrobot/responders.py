"""Who answers when a planner asks for help (`responder=<name>`).

- `none`: nobody; the episode ends and its result says the planner asked.
- `oracle`: a script that knows the task's intended plan (privileged, for tests and
  benchmarks): it picks the option that continues the oracle plan, or none.
- `console`: a person at the terminal picks an option by number.
"""

from __future__ import annotations

import sys
from typing import Sequence, TextIO

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import HelpRequest, Plan, PlanningContext, SkillCall, SkillStatus, StepFeedback


class NoResponder:
    def respond(self, request: HelpRequest, context: PlanningContext, history: Sequence[StepFeedback]) -> int | None:
        return None


class OracleResponder:
    """Answers as the person who gave the instruction would: with the task's intended next step."""

    def respond(self, request: HelpRequest, context: PlanningContext, history: Sequence[StepFeedback]) -> int | None:
        if context.oracle_plan is None:
            return None
        done = sum(1 for f in history if f.status is SkillStatus.SUCCESS)
        remaining = context.oracle_plan.steps[done:]
        for index, choice in enumerate(request.choices):
            if continues(choice, remaining):
                return index
        return None


def continues(choice: Plan, remaining: Sequence[SkillCall]) -> bool:
    """Whether executing `choice` follows the remaining oracle steps (all of them, if it is final)."""
    if choice.final:
        return tuple(choice.steps) == tuple(remaining)
    return bool(choice.steps) and tuple(remaining[: len(choice.steps)]) == tuple(choice.steps)


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=3, ge=1)  # unreadable answers before giving up on this question


class ConsoleResponder:
    """Prints the question and its numbered options, reads a number (0: none of them)."""

    Config = ConsoleConfig

    def __init__(self, config: ConsoleConfig | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None):
        self.config = config or ConsoleConfig()
        self.stdin, self.stdout = stdin or sys.stdin, stdout or sys.stdout

    def respond(self, request: HelpRequest, context: PlanningContext, history: Sequence[StepFeedback]) -> int | None:
        print(request.question, file=self.stdout)
        for number, option in enumerate(request.options, start=1):
            print(f"  {number}. {option}", file=self.stdout)
        print("  0. none of these", file=self.stdout)
        for _ in range(self.config.attempts):
            print(f"your choice (0-{len(request.options)}): ", end="", file=self.stdout, flush=True)
            line = self.stdin.readline()
            if not line:
                return None  # end of input: nobody is there
            answer = line.strip()
            if answer.isdigit() and 0 <= int(answer) <= len(request.options):
                return int(answer) - 1 if int(answer) else None
            print(f"expected a number from 0 to {len(request.options)}, got {answer!r}", file=self.stdout)
        return None
