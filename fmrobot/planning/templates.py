"""Matching instructions against a task's templates."""

from __future__ import annotations

import re

from fmrobot.types import InstructionTemplate, normalize_label


def template_pattern(template: InstructionTemplate) -> re.Pattern[str]:
    """A regex for the template's text: literal words, `{slot}` as a named lazy group; a slot used
    again ("the {a} blocks to the {a} zone") must repeat the same words (a backreference)."""
    parts = re.split(r"({\w+})", normalize_label(template.text))
    seen: set[str] = set()
    pieces = []
    for part in parts:
        if re.fullmatch(r"{\w+}", part):
            name = part[1:-1]
            pieces.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
        else:
            pieces.append(re.escape(part))
    return re.compile("".join(pieces), re.IGNORECASE)


def normalize_instruction(text: str) -> str:
    return normalize_label(text).rstrip(".!")


def match(template: InstructionTemplate, instruction: str) -> dict[str, str] | None:
    found = template_pattern(template).fullmatch(normalize_instruction(instruction))
    return {k: v.strip() for k, v in found.groupdict().items()} if found else None
