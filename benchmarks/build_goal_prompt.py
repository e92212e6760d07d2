"""Write fmrobot/planning/prompts/tabletop_goals.txt: few-shot examples for planner=llm_goal.

Each example is one task's own generated instruction (its base templates) on a training
seed and the words of the goal the task's solver pursues for it, so the examples come
from oracle plans of training seeds only: seeds 5000 and up, apart from the planning
benchmark's dev (0-99) and held-out (1000-1099) seeds. No benchmark item is read.

    python -m benchmarks.build_goal_prompt            # print
    python -m benchmarks.build_goal_prompt --write    # update the shipped prompt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sims.env import TabletopEnv
from sims.tasks.domain import world_scene

TRAINING_SEEDS = range(5000, 5100)
#: Tasks whose instruction says what to do (hazards' unsafe requests and ambiguous_pick_place's
#: underspecified ones are what the planner must *not* simply follow).
TASKS = ("pick_place", "sort_by_color", "stack_blocks", "spatial_placement", "align_line", "push_to_zone",
         "separate_piles", "pack_all", "towers_of_hanoi", "swap_blocks")
HEADER = ("A robot arm at a table restates each instruction as the goal it asks for, naming the objects on the "
          "table.")
PROMPT = Path(__file__).resolve().parents[1] / "fmrobot" / "planning" / "prompts" / "tabletop_goals.txt"


def examples(per_task: int = 1) -> list[tuple[str, str]]:
    found = []
    for task in TASKS:
        env = TabletopEnv(task=task)
        taken = 0
        for seed in TRAINING_SEEDS:
            episode, _ = env.reset_episode(seed)
            match = [o for o in episode.domain.options(world_scene(env.world)) if o.plan == episode.oracle_plan]
            if match:
                found.append((episode.instruction, match[0].description))
                taken += 1
            if taken == per_task:
                break
        env.close()
    return found


def prompt_text() -> str:
    blocks = [HEADER] + [f"Instruction: {text}\nGoal: {goal}." for text, goal in examples()]
    return "\n\n".join(blocks) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {PROMPT}")
    text = prompt_text()
    if parser.parse_args().write:
        PROMPT.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
