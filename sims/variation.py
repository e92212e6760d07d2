"""Named generalization levels: what an episode may hold that the stack has not seen.

Levels are cumulative; each adds one axis of novelty to the one before:

- L1 seen: the colours perception was trained on, blocks, the task's own workspace and
  instruction templates.
- L2 unseen colours and placements: colours no component was trained or tuned on, and
  objects anywhere in a workspace widened by a margin on every side.
- L3 unseen objects and phrases: movable objects are cylinders instead of blocks, the
  clutter comes from a held-out half of pybullet_data's random objects, and
  instructions use held-out phrasings.
- L4 unseen task compositions: the instruction adds a second clause from another task
  family (a spatial placement) that no task asks for at L1-L3.

A task reads its level (`task.level=L2`, usually set by the `level=` config group) through
the helpers on `sims.tasks.base.Task`; the environment's domain randomization (lighting,
camera jitter, table tint, clutter) is configured separately in `EnvConfig.randomization`
and the level config files set both.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sims.objects import COLORS, UNSEEN_COLORS

LevelName = Literal["L1", "L2", "L3", "L4"]
Split = Literal["seen", "unseen"]


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: LevelName
    description: str
    colors: tuple[str, ...]  # colour pool for the task's objects
    workspace_margin: float = Field(ge=0.0)  # metres added to each side of the task's workspace
    shape: Literal["block", "cylinder"]  # what the movable objects are
    phrasing: Split  # seen or held-out instruction templates
    compose: bool  # add a second clause from another task family


SEEN_COLORS = tuple(COLORS)

LEVELS: dict[str, Level] = {
    "L1": Level(name="L1", description="seen colours, objects, placements and phrases",
                colors=SEEN_COLORS, workspace_margin=0.0, shape="block", phrasing="seen", compose=False),
    "L2": Level(name="L2", description="unseen colours and placements",
                colors=tuple(UNSEEN_COLORS), workspace_margin=0.04, shape="block", phrasing="seen", compose=False),
    "L3": Level(name="L3", description="unseen objects and phrases (and L2)",
                colors=tuple(UNSEEN_COLORS), workspace_margin=0.04, shape="cylinder", phrasing="unseen",
                compose=False),
    "L4": Level(name="L4", description="unseen task compositions (and L3)",
                colors=tuple(UNSEEN_COLORS), workspace_margin=0.04, shape="cylinder", phrasing="unseen",
                compose=True),
}


def level(name: str | None) -> Level | None:
    if name is None:
        return None
    try:
        return LEVELS[name]
    except KeyError:
        raise ValueError(f"unknown level {name!r}; levels: {', '.join(LEVELS)}") from None


def widen(bounds: tuple[float, float], margin: float) -> tuple[float, float]:
    return (bounds[0] - margin, bounds[1] + margin)
