"""SayCan-style planning: the language model scores every feasible next step.

Candidates are enumerated from the skill schemas and the perceived objects (plus
"done"); each is written out with its skill's phrase ("pick up the red block") and
scored by its log-likelihood after a few-shot prompt, the instruction and the steps
taken so far. The best one is executed, its outcome fed back, and the model is asked
again until it says "done". One `score` call per decision covers all candidates (the
backend reuses the cached few-shot prefix and batches the candidates).

Likelihoods favour phrases the model finds likely anyway; subtracting each candidate's
score under a content-free instruction ("N/A") removes that prior (Zhao et al., 2021,
"Calibrate before use") when choosing which object to act on; whether to stop ("done")
is decided on the raw scores, since the content-free prompt shares the plan's shape.
The content-free scores depend only on the history, so they are cached. Steps
that cannot follow the history (placing with an empty gripper, picking with a full one)
are ruled out, and perception confidence weighs in as an affordance.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from itertools import product
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.colors import ColorLexicon, named_colors
from fmrobot.errors import PlanningError
from fmrobot.interfaces import LanguageModel
from fmrobot.types import (
    Plan,
    PlanDecision,
    PlanningContext,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
    StepFeedback,
)

PROMPTS = Path(__file__).parent / "prompts"
DONE = "done"


class LlmScoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = "tabletop_steps"  # a file in fmrobot/planning/prompts (without .txt) or a path
    calibrate: bool = True  # subtract each candidate's score under a content-free instruction
    calibration_strength: float = Field(default=1.0, ge=0.0, le=1.0)  # fraction of that score subtracted
    content_free: str = "N/A"
    affordance_weight: float = Field(default=1.0, ge=0.0)  # times log(perception score)
    ground_colors: bool = True  # restate colour words as colours of perceived objects
    max_steps: int = Field(default=8, ge=1)  # steps without "done" before giving up
    content_free_cache: int = Field(default=256, ge=0)


class LlmScoringPlanner:
    Config = LlmScoringConfig
    needs_llm = True

    def __init__(self, config: LlmScoringConfig | None = None, *, llm: LanguageModel):
        self.config = config or LlmScoringConfig()
        self.llm = llm
        self.prefix = load_prompt(self.config.prompt).rstrip()
        self._content_free: OrderedDict[tuple, list[float]] = OrderedDict()

    # ------------------------------------------------------------------ Planner

    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision:
        return self.decide(instruction, scene, context, ())

    def replan(self, previous: PlanDecision, feedback: StepFeedback, scene: SceneDescription,
               context: PlanningContext) -> PlanDecision:
        return self.decide(previous.instruction, scene, context, previous.history + (feedback,))

    # ------------------------------------------------------------------ deciding

    def decide(self, instruction: str, scene: SceneDescription, context: PlanningContext,
               history: tuple[StepFeedback, ...]) -> PlanDecision:
        done_steps = [f.call for f in history if f.status is SkillStatus.SUCCESS]
        if len(done_steps) >= self.config.max_steps:
            raise PlanningError(f"no 'done' after {len(done_steps)} steps for {instruction!r}")
        candidates = enumerate_candidates(scene, context.skills)
        if not candidates:
            raise PlanningError(f"no skill call is possible: the scene holds {scene.labels or 'nothing'}")
        specs = {s.name: s for s in context.skills}
        texts = [f" {specs[c.skill].say(c)}." for c in candidates] + [f" {DONE}."]
        said = [specs[c.skill].say(c) for c in done_steps]
        grounded = self.ground(instruction, scene)
        raw = np.asarray(self.llm.score(self.prompt(grounded, said), texts))
        affordance = self.affordances(candidates, scene, done_steps)
        scores = raw + affordance
        if self.config.calibrate:
            # Calibration corrects the model's taste for some words over others, which matters
            # when choosing *which* object; whether to stop is a question of the plan's shape,
            # which the content-free prompt shares, so "done" is decided on the raw scores.
            stop = bool(np.argmax(scores) == len(candidates))
            prior = np.asarray(self.content_free_scores(said, texts))
            scores = raw - self.config.calibration_strength * prior + affordance
            scores[-1] = np.inf if stop else -np.inf
        order = np.argsort(-scores)
        probabilities = _softmax(scores)
        best = int(order[0])
        ranked = ", ".join(f"{texts[i].strip(' .')} {scores[i]:.2f}" for i in order[:3])
        common = dict(instruction=instruction, confidence=float(probabilities[best]), history=history,
                      rationale=f"llm_scoring: {ranked}")
        if best == len(candidates):
            return PlanDecision(plan=Plan(steps=(), final=True), **common)
        return PlanDecision(plan=Plan(steps=(candidates[best],), final=False), **common)

    def prompt(self, instruction: str, said: Sequence[str]) -> str:
        steps = "".join(f" {i}. {text}." for i, text in enumerate(said, start=1))
        return f"{self.prefix}\n\nHuman: {instruction}\nRobot:{steps} {len(said) + 1}."

    def content_free_scores(self, said: Sequence[str], texts: Sequence[str]) -> list[float]:
        key = (tuple(said), tuple(texts))
        if key in self._content_free:
            self._content_free.move_to_end(key)
            return self._content_free[key]
        scores = list(self.llm.score(self.prompt(self.config.content_free, said), texts))
        if self.config.content_free_cache:
            self._content_free[key] = scores
            while len(self._content_free) > self.config.content_free_cache:
                self._content_free.popitem(last=False)
        return scores

    def affordances(self, candidates: Sequence[SkillCall], scene: SceneDescription,
                    done_steps: Sequence[SkillCall]) -> np.ndarray:
        """Log-affordance per candidate, and 0 for "done": -inf for steps the history rules out."""
        holding = bool(done_steps) and done_steps[-1].skill == "pick"
        values = []
        for call in candidates:
            if (call.skill == "pick" and holding) or (call.skill == "place" and not holding):
                values.append(-math.inf)
                continue
            confidence = min((scene.find(str(v)).score for v in call.args.values() if scene.has(str(v))),
                             default=1.0)
            values.append(self.config.affordance_weight * math.log(max(confidence, 1e-6)))
        return np.asarray(values + [0.0])

    def ground(self, instruction: str, scene: SceneDescription) -> str:
        """Restate colour words the scene does not use ("navy") as the nearest scene colour ("blue")."""
        if not self.config.ground_colors:
            return instruction
        table = named_colors()
        colors = {label.split(" ")[0] for label in scene.labels if label.split(" ")[0] in table}
        if not colors:
            return instruction
        return ColorLexicon({c: table[c] for c in colors}).ground(instruction)


def load_prompt(name: str) -> str:
    path = PROMPTS / f"{name}.txt"
    if not path.is_file():
        path = Path(name)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROMPTS.glob("*.txt")))
        raise PlanningError(f"no prompt {name!r}: give a file path or one of: {shipped}")
    return path.read_text()


def enumerate_candidates(scene: SceneDescription, skills: Sequence[SkillSpec]) -> list[SkillCall]:
    """Every call of every skill whose object arguments range over the perceived objects."""
    labels = list(dict.fromkeys(o.label for o in scene.objects))
    calls = []
    for spec in skills:
        if not spec.object_arguments:
            calls.append(SkillCall(skill=spec.name, args={}))
            continue
        for values in product(labels, repeat=len(spec.object_arguments)):
            calls.append(SkillCall(skill=spec.name, args=dict(zip(spec.object_arguments, values))))
    return calls


def _softmax(scores: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(scores), scores, -1e9)
    z = np.exp(finite - finite.max())
    return z / z.sum()
