"""What every planner accepts as an instruction, checked before any planning.

An instruction is a user's sentence: text that is not empty, not longer than a planner
reads, and made of characters a tokenizer can encode (a lone surrogate, which
Python strings can hold but UTF-8 cannot, makes tokenizers raise). Anything else is a
PlanningError that quotes the instruction on one short line; the episode fails with
that reason instead of crashing.
"""

from __future__ import annotations

import re

from fmrobot.errors import PlanningError, shown

#: Characters: far more than a tabletop instruction needs, far less than a model's context.
MAX_INSTRUCTION_CHARS = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")


def checked_instruction(instruction: object) -> str:
    """`instruction` if a planner can read it; a one-line PlanningError saying why not."""
    if not isinstance(instruction, str):
        raise PlanningError(f"an instruction is text, got {type(instruction).__name__} {shown(instruction, 80)}")
    if not instruction.strip():
        raise PlanningError(f"the instruction is empty ({shown(instruction, 40)}); say what to do, "
                            "for example 'put the red block in the green bowl'")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise PlanningError(f"the instruction has {len(instruction)} characters, more than the "
                            f"{MAX_INSTRUCTION_CHARS} a planner reads: {shown(instruction, 80)}")
    if _SURROGATE.search(instruction):
        raise PlanningError(f"the instruction {shown(instruction, 80)} holds a lone surrogate (U+D800 to U+DFFF), "
                            "which is not a character and cannot be encoded for a model")
    return instruction
