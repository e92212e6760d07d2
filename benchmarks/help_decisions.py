"""Planner decisions with a known intended step, ambiguous or not, from pick_place episodes in sims.

Calibration and evaluation data for asking for help (fmrobot/planning/conformal.py).
Each pick_place episode gives a scene (seen through oracle perception) and the block
and bowl the task chose. With the task's `ambiguous` option, some instructions leave
out which block or which bowl ("put the block in the blue bowl"): the person still
means the task's block, but the words no longer say which, and a planner that knows
it is unsure should ask. Every episode yields three decisions:
the pick, the place (after the pick), and "done" (after both).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from fmrobot.responders import continues
from fmrobot.types import Plan, SceneDescription, SkillCall, SkillStatus, StepFeedback

Ambiguity = Literal["none", "block", "bowl"]


@dataclass(frozen=True)
class HelpDecision:
    seed: int
    instruction: str
    ambiguity: Ambiguity
    scene: SceneDescription
    history: tuple[StepFeedback, ...]  # executed steps before this decision, all successful
    remaining: tuple[SkillCall, ...]  # the oracle steps still to do: what the person means next


def decisions(seeds: range, ambiguous_share: float = 0.5) -> Iterator[HelpDecision]:
    """Three decisions per pick_place episode; `ambiguous_share` of instructions leave out a colour."""
    from fmrobot.perception.oracle import OraclePerceptor
    from sims.env import TabletopEnv
    from sims.tasks.pick_place import PickPlace, PickPlaceConfig

    env = TabletopEnv(task=PickPlace(PickPlaceConfig(ambiguous=ambiguous_share)))
    perceptor = OraclePerceptor()
    try:
        for seed in seeds:
            episode, _ = env.reset_episode(seed)
            pick, place = episode.oracle_plan.steps
            block, bowl = pick.args["object"], place.args["target"]
            ambiguity: Ambiguity = ("block" if block not in episode.instruction
                                    else "bowl" if bowl not in episode.instruction else "none")
            scene = perceptor.perceive(env.observe(images=True), episode.task.vocabulary)
            done = (StepFeedback(step_index=0, call=pick, status=SkillStatus.SUCCESS),
                    StepFeedback(step_index=0, call=place, status=SkillStatus.SUCCESS))
            for k in range(3):
                yield HelpDecision(seed=seed, instruction=episode.instruction, ambiguity=ambiguity, scene=scene,
                                   history=done[:k], remaining=episode.oracle_plan.steps[k:])
    finally:
        env.close()


def intended_index(plans: list[Plan], remaining: tuple[SkillCall, ...]) -> int:
    """The option the oracle responder would choose: the one that continues the remaining steps."""
    for i, plan in enumerate(plans):
        if continues(plan, remaining):
            return i
    raise ValueError(f"no option continues the intended steps {[str(s) for s in remaining]}")
