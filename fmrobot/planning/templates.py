"""Matching instructions against a task's templates."""

from __future__ import annotations

import re

from fmrobot.types import InstructionTemplate, normalize_label


def template_pattern(template: InstructionTemplate) -> re.Pattern[str]:
    """A regex for the template's text: literal words, `{slot}` as a named lazy group."""
    parts = re.split(r"({\w+})", normalize_label(template.text))
    regex = "".join(
        f"(?P<{part[1:-1]}>.+?)" if re.fullmatch(r"{\w+}", part) else re.escape(part) for part in parts
    )
    return re.compile(regex, re.IGNORECASE)


def normalize_instruction(text: str) -> str:
    return normalize_label(text).rstrip(".!")


def match(template: InstructionTemplate, instruction: str) -> dict[str, str] | None:
    found = template_pattern(template).fullmatch(normalize_instruction(instruction))
    return {k: v.strip() for k, v in found.groupdict().items()} if found else None
