"""ambiguous_pick_place: pick_place whose every instruction leaves out a block or a bowl.

"Put the block in the red bowl" with three blocks on the table: the goal is still one
particular block, so a planner can only guess, or ask (KnowNo-style ask-for-help).
Everything else is pick_place's: the scene, the goal, the predicates and the oracle
plan, which solves the intended goal and is what `responder=oracle` answers from.

The spec publishes pick_place's templates, whose slots want object labels: the
template-matching scripted planner reads "block" as a label, finds no such object and
says so instead of guessing.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from fmrobot.types import TaskSpec
from sims.tasks.pick_place import PickPlace, PickPlaceConfig


class AmbiguousPickPlaceConfig(PickPlaceConfig):
    ambiguous: float = Field(default=1.0, ge=0.0, le=1.0)  # always 1: see the validator

    @model_validator(mode="after")
    def _always_ambiguous(self) -> "AmbiguousPickPlaceConfig":
        if self.ambiguous != 1.0:
            raise ValueError(f"ambiguous_pick_place leaves something out of every instruction (ambiguous=1.0), "
                             f"got ambiguous={self.ambiguous}; for a mix use task=pick_place "
                             "task.ambiguous=<share>")
        if self.num_blocks < 2 and self.num_bowls < 2:
            raise ValueError("an instruction can leave out only a block or a bowl that has a look-alike: "
                             f"num_blocks or num_bowls must be at least 2, got {self.num_blocks} and {self.num_bowls}")
        return self


class AmbiguousPickPlace(PickPlace):
    name = "ambiguous_pick_place"
    Config = AmbiguousPickPlaceConfig
    config: AmbiguousPickPlaceConfig

    def spec(self) -> TaskSpec:
        return super().spec().model_copy(update={
            "name": self.name,
            "description": "Put one block into one bowl; the instruction leaves out which block or which bowl, "
                           "so the robot must guess or ask.",
        })
