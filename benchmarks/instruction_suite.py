"""Instructions with oracle plans, for scoring planners without a simulator.

Scenes are drawn like pick_place's (3 blocks and 2 bowls of distinct colours) and given
as scene descriptions; each instruction names one block and one bowl, and its oracle
plan is pick(block), place(bowl). Two splits of phrasings:

- `seen`: the phrasings of pick_place's own templates and of the few-shot prompt;
- `heldout`: paraphrases that appear in no prompt and no template, some with colour and
  noun synonyms ("drop the navy cube into the golden dish"). No prompt may be tuned on
  these; tests/planning/test_instruction_suite.py checks that no prompt contains them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmrobot.types import DetectedObject, Plan, SceneDescription, SkillCall

COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan", "brown", "gray")
SEEN = (
    "put the {block} in the {bowl}",
    "place the {block} into the {bowl}",
    "pick up the {block} and drop it in the {bowl}",
)
HELDOUT = (
    "could you set the {block} inside the {bowl}",
    "the {block} should end up in the {bowl}",
    "grab the {block} and leave it in the {bowl}",
    "I want the {block} in the {bowl}",
    "transfer the {block} over to the {bowl}",
    "drop the {c_block} {n_block} into the {c_bowl} {n_bowl}",
)
COLOR_SYNONYMS = {"red": "crimson", "green": "emerald", "blue": "navy", "yellow": "golden", "orange": "tangerine",
                  "purple": "violet", "pink": "rose", "cyan": "teal", "brown": "chocolate", "gray": "silver"}
NOUN_SYNONYMS = {"block": "cube", "bowl": "dish"}


@dataclass(frozen=True)
class Case:
    instruction: str
    scene: SceneDescription
    oracle: Plan
    split: str


def scene_of(rng: np.random.Generator) -> tuple[SceneDescription, list[str], list[str]]:
    colors = [str(c) for c in rng.choice(COLORS, size=5, replace=False)]
    blocks, bowls = [f"{c} block" for c in colors[:3]], [f"{c} bowl" for c in colors[3:]]
    objects = []
    for label in blocks + bowls:
        x, y = float(rng.uniform(0.35, 0.65)), float(rng.uniform(-0.25, 0.25))
        size = (0.04, 0.04, 0.04) if label.endswith("block") else (0.15, 0.15, 0.05)
        objects.append(DetectedObject(label=label, score=1.0, position=(x, y, 0.645), extent=size, yaw=0.0))
    return SceneDescription(objects=tuple(objects), source="suite"), blocks, bowls


def cases(split: str, count: int, seed: int = 0) -> list[Case]:
    templates = {"seen": SEEN, "heldout": HELDOUT}[split]
    rng = np.random.default_rng([seed, {"seen": 0, "heldout": 1}[split]])
    out = []
    for k in range(count):
        scene, blocks, bowls = scene_of(rng)
        block, bowl = blocks[int(rng.integers(3))], bowls[int(rng.integers(2))]
        template = templates[k % len(templates)]
        c_block, c_bowl = block.split()[0], bowl.split()[0]
        text = template.format(block=block, bowl=bowl, c_block=COLOR_SYNONYMS[c_block], n_block=NOUN_SYNONYMS["block"],
                               c_bowl=COLOR_SYNONYMS[c_bowl], n_bowl=NOUN_SYNONYMS["bowl"])
        oracle = Plan(steps=(SkillCall(skill="pick", args={"object": block}),
                             SkillCall(skill="place", args={"target": bowl})))
        out.append(Case(instruction=text, scene=scene, oracle=oracle, split=split))
    return out


def planning_context():
    """The skills and task the suite's cases are planned with (pick and place, no oracle plan)."""
    from fmrobot.control.skills import PICK, PLACE
    from fmrobot.types import PlanningContext, TaskSpec

    task = TaskSpec(name="pick_place", description="suite", skills=("pick", "place"), templates=(), vocabulary=())
    return PlanningContext(skills=(PICK, PLACE), task=task)


def all_heldout_texts() -> list[str]:
    return [t.split("{")[0].strip() for t in HELDOUT if t.split("{")[0].strip()]
