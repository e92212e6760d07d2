"""The statistics of a suite report, as small pure functions: intervals, failure stages, attribution."""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any, Mapping

#: Two-sided 95% standard-normal quantile.
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial success rate.

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse to
    zero width at 0/n or n/n, which is where small benchmark suites usually land.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0  # no episodes: nothing is known
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- failure stages

# The runner wraps the reason that ended an episode; the wrapped reason names the stage.
_WRAPPERS = (
    re.compile(r"^gave up after \d+ replans; last failure: (?P<inner>.*)$", re.DOTALL),
    re.compile(r"^step budget of \d+ control steps used up \((?P<inner>.*)\)$", re.DOTALL),
)
# Skill failures start with the skill's name: "pick: grasp: ..." (a motion segment) or
# "pick(object='red block'): step budget ..." (the runner's budget check).
_SKILL = re.compile(r"^(?P<skill>[a-z][a-z0-9_]*)(?:\(.*?\))?: ", re.DOTALL)


def classify_failure(reason: str | None) -> str:
    """The stage a failure reason points at, e.g. 'planning', 'safety', 'skill: pick', 'task not achieved'.
    For records without a typed failure only (see failure_stage)."""
    text = (reason or "").strip()
    if not text:
        return "unknown"
    for wrapper in _WRAPPERS:
        match = wrapper.match(text)
        if match:
            return classify_failure(match.group("inner"))
    if text.startswith("crashed:"):
        return "crashed"
    if text.startswith("planning:") or text.startswith("no final plan") or "empty plan" in text:
        return "planning"
    if text.startswith("safety shield") or "safety shield refused" in text:
        return "safety"
    if text.startswith("the planner asked for help") or text.startswith("the responder answered"):
        return "help"
    if text.startswith("no object labelled"):
        return "grounding"  # the plan names an object that perception did not report
    if text.startswith("task not achieved"):
        return "task not achieved"
    skill = _SKILL.match(text)
    if skill:
        return f"skill: {skill.group('skill')}"
    return "other"


# classify_failure's labels that name a stage differently.
_FROM_PROSE = {"crashed": "crash", "grounding": "perception", "task not achieved": "task"}


def failure_stage(result: Mapping[str, Any]) -> str:
    """The stage a failed result (an EpisodeResult as JSON) is counted under: its failure's stage, with
    the skill for a failed skill call ("control: pick"), e.g. 'planning', 'safety', 'task', 'crash'."""
    failure = result.get("failure")
    if failure is None:
        # Records written before results carried a typed failure: classify their reason's words.
        return _FROM_PROSE.get(label := classify_failure(result.get("failure_reason")),
                               label.replace("skill: ", "control: "))
    stage, skill = failure["stage"], failure.get("skill")
    return f"{stage}: {skill}" if stage == "control" and skill else stage


# --------------------------------------------------------------------------- attribution

class Blame(str, Enum):
    """What a failed episode is attributed to, from re-running its seed with oracle components."""

    PERCEPTION = "perception"  # oracle perception fixes it, the oracle plan alone does not
    PLANNING = "planning"  # the oracle plan fixes it, oracle perception alone does not
    EITHER = "either"  # each oracle alone fixes it
    BOTH = "both"  # only oracle perception and plan together fix it
    CONTROL = "control"  # fails even with oracle perception and plan: control / execution
    UNKNOWN = "unknown"  # a counterfactual episode is missing (run not finished)


def attribute(oracle_perception: bool | None, oracle_planner: bool | None, oracle_both: bool | None) -> Blame:
    """Blame one failed seed, given whether it succeeded with each oracle swapped in.

    None means that counterfactual was not run. A configuration whose perception (or
    planner) already is the oracle passes the base outcome (False) for that swap.
    """
    if oracle_perception is None or oracle_planner is None:
        return Blame.UNKNOWN
    if oracle_perception and oracle_planner:
        return Blame.EITHER
    if oracle_perception:
        return Blame.PERCEPTION
    if oracle_planner:
        return Blame.PLANNING
    if oracle_both is None:
        return Blame.UNKNOWN
    return Blame.BOTH if oracle_both else Blame.CONTROL


def attribution_counts(blames: Mapping[int, Blame]) -> dict[str, int]:
    """Failed seeds per blame, every category present (zeros included) so tables line up."""
    counts = {blame.value: 0 for blame in Blame}
    for blame in blames.values():
        counts[blame.value] += 1
    return counts
