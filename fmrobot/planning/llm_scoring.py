"""SayCan-style planning: the language model scores every feasible next step.

Candidates are enumerated from the skill schemas and the perceived objects (plus
"done"); each is written out with its skill's phrase ("pick up the red block") and
scored by its log-likelihood after a few-shot prompt, the instruction and the steps
taken so far. The best one is executed, its outcome fed back, and the model is asked
again until it says "done". One `score` call per decision covers all candidates (the
backend reuses the cached few-shot prefix and scores the candidates in one pass).

Likelihoods favour phrases the model finds likely anyway; subtracting each candidate's
score under a content-free instruction ("N/A") removes that prior (Zhao et al., 2021,
"Calibrate before use") when choosing which object to act on; whether to stop ("done")
is decided on the raw scores, since the content-free prompt shares the plan's shape.
A content-free score depends only on the history and the step's text, so it is cached
per pair. Steps that cannot follow the history (placing with an empty gripper, picking
with a full one) are ruled out before scoring, and perception confidence weighs in as
an affordance.

With `ask_for_help`, the normalized scores go through a conformal prediction set
(fmrobot/planning/conformal.py): when more than one step is plausible enough, the
decision is a question listing them instead of a guess.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from itertools import product
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, TypeVar, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.assets import ShippedFiles
from fmrobot.errors import PlanningError, shown
from fmrobot.interfaces import BatchScoring, LanguageModel
from fmrobot.llm import retry
from fmrobot.llm.retry import TransientLanguageModelError, UnusableReplyError
from fmrobot.planning.conformal import HelpCalibration, load_calibration
from fmrobot.planning.grounding import check_reference, ground_colors
from fmrobot.planning.instructions import checked_instruction
from fmrobot.types import (
    HelpRequest,
    Plan,
    PlanDecision,
    PlanningContext,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
    StepFeedback,
)

T = TypeVar("T")
PROMPTS = ShippedFiles(Path(__file__).parent / "prompts", ".txt")
DONE = "done"


class LlmScoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = "tabletop_steps"  # a file in fmrobot/planning/prompts (without .txt) or a path
    calibrate: bool = True  # subtract each candidate's score under a content-free instruction
    calibration_strength: float = Field(default=0.5, ge=0.0, le=1.0)  # fraction of that score subtracted
    content_free: str = "N/A"
    affordance_weight: float = Field(default=1.0, ge=0.0)  # times log(perception score)
    ground_colors: bool = True  # restate colour words as colours of perceived objects
    list_objects: bool = False  # an "Objects: ..." line of perceived labels before the instruction
    max_steps: int = Field(default=8, ge=1)  # steps without "done" before giving up
    require_reference: bool = True  # an instruction must name something in the scene
    content_free_cache: int = Field(default=4096, ge=0)  # (history, text) scores kept
    ask_for_help: bool = False  # ask when the conformal prediction set holds more than one step
    help_calibration: str = "smollm2-tabletop"  # fmrobot/planning/calibrations/<name>.json or a path


class LlmScoringPlanner:
    Config = LlmScoringConfig
    needs_llm = True

    def __init__(self, config: LlmScoringConfig | None = None, *, llm: LanguageModel):
        self.config = config or self.Config()
        self.llm = llm
        self.prefix = load_prompt(self.config.prompt).rstrip()
        self._content_free: OrderedDict[tuple, float] = OrderedDict()
        self.help: HelpCalibration | None = (load_calibration(self.config.help_calibration)
                                             if self.config.ask_for_help else None)

    # ------------------------------------------------------------------ Planner

    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision:
        checked_instruction(instruction)
        if self.config.require_reference:
            check_reference(instruction, self.ground(instruction, scene), scene)
        return self.decide(instruction, scene, context, ())

    def replan(self, previous: PlanDecision, feedback: StepFeedback, scene: SceneDescription,
               context: PlanningContext) -> PlanDecision:
        return self.decide(previous.instruction, scene, context, previous.history + (feedback,))

    # ------------------------------------------------------------------ deciding

    def decide(self, instruction: str, scene: SceneDescription, context: PlanningContext,
               history: tuple[StepFeedback, ...]) -> PlanDecision:
        plans, texts, scores = self.options(instruction, scene, context, history)
        probabilities = softmax(scores)
        order = np.argsort(-scores)
        best = int(order[0])
        ranked = ", ".join(f"{texts[i]} {scores[i]:.2f}" for i in order[:3])
        common = dict(instruction=instruction, history=history, rationale=f"llm_scoring: {ranked}")
        if self.help is not None:
            chosen = self.help.prediction_set(probabilities)
            if len(chosen) > 1:
                request = HelpRequest(question=f"I am not sure what to do next for {instruction!r}. Which one?",
                                      options=tuple(texts[i] for i in chosen),
                                      choices=tuple(plans[i] for i in chosen))
                return PlanDecision(help=request, confidence=probability_of(probabilities, chosen), **common)
        return PlanDecision(plan=plans[best], confidence=float(probabilities[best]), **common)

    def options(self, instruction: str, scene: SceneDescription, context: PlanningContext,
                history: tuple[StepFeedback, ...] = ()) -> tuple[list[Plan], list[str], np.ndarray]:
        """Every possible next step as a one-step plan ("done": an empty final plan), its text, its score."""
        done_steps = [f.call for f in history if f.status is SkillStatus.SUCCESS]
        if len(done_steps) >= self.config.max_steps:
            raise PlanningError(f"no 'done' after {len(done_steps)} steps for {shown(instruction, 80)}")
        candidates = enumerate_candidates(scene, context.skills)
        if not candidates:
            raise PlanningError(f"no skill call is possible: the scene holds {scene.labels or 'nothing'}")
        texts = self.step_texts(candidates, context) + [f" {DONE}"]
        said = [t.strip() for t in self.step_texts(done_steps, context)]
        grounded = self.ground(instruction, scene)
        affordance = self.affordances(candidates, scene, done_steps, context.skills)
        # Steps the history rules out (affordance 0) are not worth a forward pass.
        feasible = np.flatnonzero(np.isfinite(affordance))
        raw = np.full(len(texts), -np.inf)
        objects = self.listed_objects(scene)
        asked = [texts[i] for i in feasible]
        requests = [(self.prompt(grounded, said, objects), asked)]
        if self.config.calibrate:  # content-free scores not cached yet go in the same pass
            missing = self._uncached_content_free(said, asked, objects)
            requests.append((self.prompt(self.config.content_free, said, objects), missing))
        answers = self._score_all(requests)
        raw[feasible] = answers[0]
        scores = raw + affordance
        if self.config.calibrate:
            # Calibration corrects the model's taste for some words over others, which matters
            # when choosing *which* object; whether to stop is a question of the plan's shape,
            # which the content-free prompt shares, so "done" is decided on the raw scores.
            for text, value in zip(requests[1][1], answers[1]):
                self._content_free[(tuple(objects), tuple(said), text)] = float(value)
            stop = bool(np.argmax(scores) == len(candidates))
            prior = np.zeros(len(texts))
            prior[feasible] = self.content_free_scores(said, asked, objects)
            scores = raw - self.config.calibration_strength * prior + affordance
            scores[-1] = np.inf if stop else -np.inf
        plans = [Plan(steps=(c,), final=False) for c in candidates] + [Plan(steps=(), final=True)]
        return plans, [t.strip() for t in texts], scores

    def prompt(self, instruction: str, said: Sequence[str], objects: Sequence[str] = ()) -> str:
        steps = "".join(f" {i}. {text}." for i, text in enumerate(said, start=1))
        listing = f"Objects: {', '.join(objects)}.\n" if objects else ""
        return f"{self.prefix}\n\n{listing}Human: {instruction}\nRobot:{steps} {len(said) + 1}."

    def listed_objects(self, scene: SceneDescription) -> tuple[str, ...]:
        """The perceived labels for the prompt's "Objects:" line (with `list_objects`), kind by kind."""
        if not self.config.list_objects:
            return ()
        return tuple(sorted(set(scene.labels), key=lambda label: (label.split(" ")[-1], label)))

    def step_texts(self, calls: Sequence[SkillCall], context: PlanningContext) -> list[str]:
        """Each call as the model reads it, after the prompt: " pick up the red block"."""
        specs = {s.name: s for s in context.skills}
        return [f" {specs[c.skill].say(c)}" for c in calls]

    def _uncached_content_free(self, said: Sequence[str], texts: Sequence[str], objects: Sequence[str]) -> list[str]:
        return [t for t in dict.fromkeys(texts) if (tuple(objects), tuple(said), t) not in self._content_free]

    def _score_all(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return score_requests(self.llm, requests)

    def content_free_scores(self, said: Sequence[str], texts: Sequence[str],
                            objects: Sequence[str] = ()) -> list[float]:
        """Each text's score after the content-free instruction; kept per (objects, history, text),
        and only the texts not kept yet are scored (a text's score does not depend on the others)."""
        keys = [(tuple(objects), tuple(said), text) for text in texts]
        fresh = {}
        missing = self._uncached_content_free(said, texts, objects)
        if missing:
            prompt = self.prompt(self.config.content_free, said, objects)
            fresh = dict(zip(missing, ask_again(self.llm, lambda: checked_scores(self.llm.score(prompt, missing),
                                                                                 missing))))
        scores = []
        for key, text in zip(keys, texts):
            if text in fresh:
                scores.append(float(fresh[text]))
                self._content_free[key] = scores[-1]
            else:
                scores.append(self._content_free[key])
            self._content_free.move_to_end(key)
        while len(self._content_free) > self.config.content_free_cache:
            self._content_free.popitem(last=False)
        return scores

    def affordances(self, candidates: Sequence[SkillCall], scene: SceneDescription,
                    done_steps: Sequence[SkillCall], skills: Sequence[SkillSpec]) -> np.ndarray:
        """Log-affordance per candidate, and 0 for "done": -inf for steps the history rules out
        (the gripper after the last step done is not what the skill's precondition needs)."""
        specs = {spec.name: spec for spec in skills}
        last = specs.get(done_steps[-1].skill) if done_steps else None
        gripper = "holding" if last is not None and last.leaves_gripper == "holding" else "empty"
        values = []
        for call in candidates:
            needs = specs[call.skill].needs_gripper if call.skill in specs else None
            if needs is not None and needs != gripper:
                values.append(-math.inf)
                continue
            confidence = min((scene.find(str(v)).score for v in call.args.values() if scene.has(str(v))),
                             default=1.0)
            values.append(self.config.affordance_weight * math.log(max(confidence, 1e-6)))
        return np.asarray(values + [0.0])

    def ground(self, instruction: str, scene: SceneDescription) -> str:
        """Restate colour words the scene does not use ("navy") as the nearest scene colour ("blue")."""
        return ground_colors(instruction, scene) if self.config.ground_colors else instruction


class SceneListingConfig(LlmScoringConfig):
    """The scoring planner's options with the perceived objects listed in the prompt."""

    prompt: str = "tabletop_scene_steps"  # few-shot examples with "Objects:" lines, including sorting
    list_objects: bool = True
    calibrate: bool = False  # subtracting the content-free prior hurt on sorting (README)
    max_steps: int = Field(default=10, ge=1)


class SceneListingLlmScoringPlanner(LlmScoringPlanner):
    """llm_scoring for multi-step tasks whose instruction names no object (sort_by_color): the
    model sees the objects left in the scene, so it can tell what is left to do."""

    Config = SceneListingConfig


def ask_again(llm: LanguageModel, ask: Callable[[], T]) -> T:
    """`ask()`, asked again (the backend's retry policy) while the reply is unusable or the call failed
    transiently; then the last error, which the runner counts as a failed decision."""
    return retry.call(ask, retry.policy_of(llm), retry_on=(TransientLanguageModelError, UnusableReplyError))


def score_requests(llm: LanguageModel, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
    """Several (prompt, continuations) scored in one pass where the backend can (`score_many`), checked;
    asked again while the scores are unusable."""
    return ask_again(llm, lambda: _scored(llm, requests))


def _scored(llm: LanguageModel, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
    if isinstance(llm, BatchScoring):
        answers = list(llm.score_many(requests))
        if len(answers) != len(requests):
            raise UnusableReplyError(f"the language model answered {len(answers)} of {len(requests)} scoring "
                                     "requests; no choice can be made")
        return [checked_scores(a, texts) for a, (_, texts) in zip(answers, requests)]
    return [checked_scores(llm.score(prompt, texts), texts) if texts else [] for prompt, texts in requests]


def checked_scores(scores: Sequence[Any], continuations: Sequence[str]) -> list[float]:
    """The model's scores as floats, one per continuation; UnusableReplyError (a PlanningError) for
    anything else: a malfunctioning model must not pick a step by the accident of NaN sorting."""
    try:
        values = [float(s) for s in scores]
    except (TypeError, ValueError):
        raise UnusableReplyError("the language model's scores are not numbers; no step can be chosen") from None
    if len(values) != len(continuations):
        raise UnusableReplyError(f"the language model returned {len(values)} scores for {len(continuations)} "
                                 "continuations; no step can be chosen")
    bad = [v for v in values if math.isnan(v) or v == math.inf]
    if bad:
        raise UnusableReplyError(f"the language model returned {len(bad)} invalid score(s) (NaN or +inf) of "
                                 f"{len(values)}, e.g. {bad[0]}; no step can be chosen")
    if values and all(v == -math.inf for v in values):
        raise UnusableReplyError(f"the language model scored all {len(values)} continuations impossible (-inf); "
                                 "no step can be chosen")
    return values


def load_prompt(name: str) -> str:
    path = PROMPTS.find(name)
    if path is None:
        raise PlanningError(f"no prompt {name!r}: give a file path or one of: {PROMPTS.listing()}")
    return path.read_text()


def enumerate_candidates(scene: SceneDescription, skills: Sequence[SkillSpec]) -> list[SkillCall]:
    """Every call of every skill: object arguments range over the perceived objects (two of them
    never name the same one), Literal-typed ones (a side) over their values. Arguments with a
    default keep it; a skill with a required argument of any other type cannot be enumerated."""
    labels = list(dict.fromkeys(o.label for o in scene.objects))
    calls = []
    for spec in skills:
        choices = argument_choices(spec, labels)
        if choices is None:
            raise PlanningError(f"skill {spec.name!r} has a required argument that is neither an object nor a "
                                "choice of values (Literal), so its calls cannot be listed for scoring")
        for values in product(*choices.values()):
            objects = [v for name, v in zip(choices, values) if name in spec.object_arguments]
            if len(set(objects)) == len(objects):
                calls.append(SkillCall(skill=spec.name, args=dict(zip(choices, values))))
    return calls


def argument_choices(spec: SkillSpec, labels: Sequence[str]) -> dict[str, list[Any]] | None:
    """The values each argument of the skill may take; None if one of them cannot be listed."""
    choices: dict[str, list[Any]] = {}
    for name, field in spec.parameters.model_fields.items():
        if name in spec.object_arguments:
            choices[name] = list(labels)
        elif get_origin(field.annotation) is Literal:
            choices[name] = list(get_args(field.annotation))
        elif field.is_required():
            return None
    return choices


def softmax(scores: np.ndarray) -> np.ndarray:
    """Normalized scores: -inf gets 0; options scored +inf (a decided stop) share all of it."""
    scores = np.asarray(scores, dtype=float)
    certain = np.isposinf(scores)
    if certain.any():
        return certain / certain.sum()
    finite = np.where(np.isfinite(scores), scores, -1e9)
    z = np.exp(finite - finite.max())
    return z / z.sum()


def probability_of(probabilities: np.ndarray, chosen) -> float:
    """The probability that one of the `chosen` options is meant: their summed probability, which
    rounding can put a hair above 1 (0.97036... + 0.02963... = 1.0000000000000002)."""
    return min(1.0, float(np.asarray(probabilities)[chosen].sum()))
