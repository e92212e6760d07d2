"""What every task asks of the objects it judges besides its goal: they lie still, the gripper
has let go of them, and (for some tasks) they rest on the table, not on something else.

A task's predicates are its own details, then the overall checks, then `success`: all of the
overall checks. Results record them in that order.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from sims.tasks.blocks_and_bowls import at_rest
from sims.tasks.regions import on_table
from sims.world import World


def settled(world: World, labels: Sequence[str], noun: str, *, on_the_table: bool = False) -> dict[str, bool]:
    """`<noun>_on_table` (when asked), `<noun>_at_rest` and `released` for the objects `labels`."""
    found = {}
    if on_the_table:
        found[f"{noun}_on_table"] = all(on_table(world, label) for label in labels)
    found[f"{noun}_at_rest"] = all(at_rest(world, label) for label in labels)
    found["released"] = not any(world.touching_robot(label) for label in labels)
    return found


def judged(overall: Mapping[str, bool], details: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """The predicates a result records: the details, the overall checks, and success (every overall check)."""
    return {**(details or {}), **overall, "success": all(overall.values())}
