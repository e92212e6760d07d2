"""Goal-interpreting planning (LLM+P): the language model understands, a sound solver sequences.

The task's goal domain (fmrobot.interfaces.GoalDomain) lists every goal it can pursue
among the perceived objects, each in words ("put the red block in the blue bowl") with
the plan that reaches it. The model reads the instruction and scores each goal's words
as the goal it asks for, after task-generic few-shot examples; the best goal's plan is
executed. Understanding (which goal?) is the model's, sequencing (which steps, in which
order?) the task solver's, so the two can be measured apart: a wrong goal is the
model's error, a failed plan is not.

As in llm_scoring, colour words the scene does not use are first restated as the
nearest scene colour (fmrobot/colors.py), and everyday nouns for the scene's kinds ("cube",
"dish", "square") as its own ("block", "bowl", "zone"); each goal's score under a content-free
instruction ("N/A") is partly subtracted, so that goals the model likes anyway do not
win by their wording. Explicit references weigh in as well (fmrobot/planning/grounding.py):
a goal loses `mention_weight` for each object the instruction names that it is not about
(by colour and noun, by position as in "the leftmost block" or "the two blocks nearest the
tray", as "the other bowl" of two, or left out against a word of exclusion), for acting on an
object the instruction excludes or warns about ("careful, the vase breaks easily"), for a side
relation the words never ask for, for contradicting a
stated stacking fact ("the red block on the blue one") or a stated place in a tower or row
("the pink block on the bottom", "the gray one to its left"), for acting on more objects of
a kind than the words may mean ("the block nearest to you and the red one" is two blocks,
not every block; "one of the blocks" is one, "a couple of the blocks" two), for singling out an
object the words only refer to as a group ("pack the blocks"), for leaving out an object a
quantifier asks for ("every block", "then the rest", "the other two", not "all of its
blocks"), and for a side other than the one the words name outright ("just right of the
yellow block", "on the far side of the bowl"). An exclusion reaches as far as its list of objects ("all
but the green and purple blocks"), and any goal that leaves those out fits it, however the
goal is worded; a chain of stacking facts ("yellow on red on pink") also fixes the tower's ends.
When a goal that scores within `ask_margin` of the best one differs from it only in what the words left open, the decision is a question listing
those goals, and the responder's answer picks the plan: objects the instruction does not name swapped for others
of their kinds, another side of the same objects when the words name no side ("next to
the bowl"), or another order of the same objects when the words ask for an order without
saying it, name none of the objects ("just build a tower of the three blocks"), or name none
of those the two orders place differently ("the green block on top of the other two").

After a failed step the same goal is resumed at the failed step (or the pick before
it), as the oracle planner does: steps before it are done. After the shield refused the
chosen goal, the best goal that avoids the refused step and fits the words as well is
taken instead, unless the words fit the refused goal exactly (then the request itself is
what was refused).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import PlanningError, shown
from fmrobot.interfaces import GoalDomain, LanguageModel
from fmrobot.planning.grounding import (
    cautioned_labels,
    chain_roles,
    check_reference,
    ground_colors,
    ground_nouns,
    label_words,
    mentioned_labels,
    mismatches,
    named_labels,
    negated_labels,
    noun_forms,
    quantified_kinds,
    reference_counts,
    shadowed_labels,
    side_words_of,
    stated_relations,
    stated_roles,
    word_list,
    words_of,
)
from fmrobot.planning.instructions import checked_instruction
from fmrobot.planning.llm_scoring import load_prompt, probability_of, score_requests, softmax
from fmrobot.planning.oracle import resume_after
from fmrobot.types import GoalOption, HelpRequest, PlanDecision, PlanningContext, SceneDescription, StepFeedback


class LlmGoalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = "tabletop_goals"  # few-shot examples in fmrobot/planning/prompts (without .txt) or a path
    calibrate: bool = True  # subtract part of each goal's score under a content-free instruction
    calibration_strength: float = Field(default=0.5, ge=0.0, le=1.0)
    content_free: str = "N/A"
    ground_colors: bool = True  # restate colour words as colours of perceived objects
    # Each mismatch with what the words say explicitly (an object named but not in the goal, an
    # excluded object acted on, a side never asked for, a stated stacking fact contradicted)
    # costs this much (log-likelihood units).
    mention_weight: float = Field(default=6.0, ge=0.0)
    ask_for_help: bool = True  # ask when the words leave open which object is meant
    # Calibrated log-likelihood gap under which a goal that swaps an object the instruction did not
    # name for another of its kind is as likely: then the instruction left it open.
    ask_margin: float = Field(default=8.0, ge=0.0)
    max_options_asked: int = Field(default=4, ge=2)  # at most this many goals in a question
    require_reference: bool = True  # an instruction must name something in the scene
    content_free_cache: int = Field(default=4096, ge=0)


class LlmGoalPlanner:
    Config = LlmGoalConfig
    needs_llm = True

    def __init__(self, config: LlmGoalConfig | None = None, *, llm: LanguageModel):
        self.config = config or LlmGoalConfig()
        self.llm = llm
        self.prefix = load_prompt(self.config.prompt).rstrip()
        self._content_free: OrderedDict[str, float] = OrderedDict()

    # ------------------------------------------------------------------ Planner

    def plan(self, instruction: str, scene: SceneDescription, context: PlanningContext) -> PlanDecision:
        checked_instruction(instruction)
        options = self.options(scene, context)
        grounded = self.ground(instruction, scene)
        if self.config.require_reference:
            check_reference(instruction, grounded, scene)
        scores = self.scores(grounded, options)
        mentioned = mentioned_labels(grounded, scene)
        named = [about(o, scene) for o in options]
        if self.config.mention_weight:
            misses = self.mismatch_counts(grounded, options, named, mentioned, scene)
            scores = scores - self.config.mention_weight * misses
        return self.decide(instruction, options, scores, named, mentioned)

    def replan(self, previous: PlanDecision, feedback: StepFeedback, scene: SceneDescription,
               context: PlanningContext) -> PlanDecision:
        if feedback.reason.startswith("safety shield refused") and not previous.history:
            other = self.allowed_reading(previous.instruction, feedback, scene, context)
            if other is not None:
                return other.model_copy(update={"history": previous.history + (feedback,)})
        resumed = resume_after(previous, feedback)
        if resumed is None:
            return self.plan(previous.instruction, scene, context)
        return resumed.model_copy(update={"history": previous.history + (feedback,),
                                          "rationale": f"{previous.rationale}; resumed after: {feedback.reason}"})

    def allowed_reading(self, instruction: str, refused: StepFeedback, scene: SceneDescription,
                        context: PlanningContext) -> PlanDecision | None:
        """After the shield refused the chosen goal's plan: the best goal that does not take the refused
        step and fits the words as well as the refused one did ("put it in the bowl; mind the vase"
        read as "on the vase" first). None when every such goal fits the words worse: the request
        itself was what the shield refused, and it stays refused."""
        options = self.options(scene, context)
        grounded = self.ground(instruction, scene)
        mentioned = mentioned_labels(grounded, scene)
        named = [about(o, scene) for o in options]
        misses = self.mismatch_counts(grounded, options, named, mentioned, scene)
        taking = [refused.call in o.plan.steps for o in options]
        if not any(taking):
            return None
        fit = min(m for m, t in zip(misses, taking) if t)
        if fit == 0:
            return None  # the words fit the refused goal exactly: that request is what was refused
        keep = [i for i, o in enumerate(options) if not taking[i] and misses[i] <= fit]
        if not keep:
            return None
        scores = self.scores(grounded, options) - self.config.mention_weight * misses
        best = max(keep, key=lambda i: scores[i])
        return PlanDecision(instruction=instruction, plan=options[best].plan,
                            rationale=f"llm_goal: the shield refused {refused.call}; next reading "
                                      f"{options[best].description!r} {scores[best]:.2f}")

    # ------------------------------------------------------------------ deciding

    def options(self, scene: SceneDescription, context: PlanningContext) -> list[GoalOption]:
        domain = context.domain
        if not isinstance(domain, GoalDomain):
            raise PlanningError(f"planner llm_goal chooses among the goals a task lists, and task "
                                f"{context.task.name} lists none here; use planner=llm_scoring or llm_structured")
        options = domain.options(scene)
        if not options:
            raise PlanningError(f"task {context.task.name} lists no goal among the perceived objects "
                                f"({', '.join(scene.labels) or 'nothing'})")
        return options

    def scores(self, instruction: str, options: Sequence[GoalOption]) -> np.ndarray:
        """Calibrated log-likelihood of each goal's words as the goal of the instruction."""
        # Every way to say each goal is scored; a goal scores as its best-scoring wording.
        owners = [i for i, o in enumerate(options) for _ in (o.description, *o.phrasings)]
        texts = [goal_text(d) for o in options for d in (o.description, *o.phrasings)]
        requests = [(self.prompt(instruction), texts)]
        missing = [t for t in dict.fromkeys(texts) if t not in self._content_free] if self.config.calibrate else []
        if missing:
            requests.append((self.prompt(self.config.content_free), missing))
        answers = self._score_all(requests)
        raw = np.asarray(answers[0], dtype=float)
        if not self.config.calibrate:
            return best_per_option(raw, owners, len(options))
        for text, value in zip(missing, answers[1] if missing else []):
            self._content_free[text] = float(value)
        prior = np.asarray([self._content_free[t] for t in texts])
        for text in texts:
            self._content_free.move_to_end(text)
        while len(self._content_free) > self.config.content_free_cache:
            self._content_free.popitem(last=False)
        return best_per_option(raw - self.config.calibration_strength * prior, owners, len(options))

    @staticmethod
    def mismatch_counts(instruction: str, options: Sequence[GoalOption], named: Sequence[set[str]],
                        mentioned: set[str], scene: SceneDescription) -> np.ndarray:
        # Objects the words exclude; a goal that leaves one out, whatever its wording, matches that.
        negated = negated_labels(instruction, mentioned, {x for o in options for x in o.excluded}, scene)
        # "everything that isn't blue": nothing of an excluded colour is owed to a quantifier.
        negated_colors = {label_words(x)[0] for x in negated} - {""}
        # A colour the exclusion names resolves to the excluded object, not another of that colour.
        mentioned = mentioned - shadowed_labels(instruction, scene, mentioned, negated)
        # A goal that puts something beside another object, for words that name no side at all.
        sideless = not (side_words_of(instruction) & RELATION_WORDS)
        # Stated facts ("the pink block on the green one") that a goal about both objects contradicts.
        stated = stated_relations(instruction, scene)
        # Places stated for objects in a tower or a row ("the pink block on the bottom", "the red one to its left").
        places = stated_roles(instruction, scene)
        # A chain of stacking facts fixes the tower's ends ("stack yellow on red on pink": pink at the bottom).
        places |= {(label, place) for label, place in chain_roles(stated) if label not in {x for x, _ in places}}
        # How many objects of each kind the words may mean beyond those they name ("the block": one).
        counts = reference_counts(instruction, scene)
        # Kinds the words ask for all of ("every block", "then the rest"): what a goal leaves out of them.
        every = quantified_kinds(instruction, scene)
        reachable = {x for o in named for x in o}
        # Objects the words warn about are to be kept clear of, not acted on.
        warned = cautioned_labels(instruction, scene) - negated
        # The one side the words name ("just right of the yellow block", "on the far side of the bowl"),
        # against goals on another side.
        sides = named_sides(instruction)
        # Kinds of object the words refer to: a goal that also involves a kind they never mention ("line up the
        # blocks behind the bowl" for words about blocks alone) is charged once for it.
        words = words_of(instruction)
        said_kinds = every | {kind_of(x) for x in mentioned} | {k for k in map(kind_of, reachable)
                                                                 if noun_forms(k) & words}
        # A goal is also about the objects it gives a place ("via the green zone"), though it does not move them.
        return np.asarray([mismatches(n | {r[1] for r in o.relations if r[0] == "at"}, mentioned - warned,
                                      negated, negated) + len(n & warned)
                           # Acting on an object the words exclude does what they forbid, besides leaving their
                           # exclusion unheeded: it costs twice.
                           + len(n & negated)
                           + (sideless and bool(words_of(o.description) & SIDE_WORDS))
                           + (sum(1 for fact in stated if {fact[1], fact[2]} <= n and fact not in o.relations)
                              if any(r[0] == "on" for r in o.relations) else 0)
                           + misplaced(o, places) + unasked(n, mentioned, counts)
                           + unsaid(mentioned_labels(o.description, scene) - (negated - n), n, reachable,
                                    mentioned - negated, counts)
                           + sum(1 for x in reachable - n - negated if kind_of(x) in every
                                 and label_words(x)[0] not in negated_colors)
                           + other_hand(o.description, sides)
                           for n, o in zip(named, options)], dtype=float) + unsaid_kinds(named, said_kinds)

    def decide(self, instruction: str, options: Sequence[GoalOption], scores: np.ndarray,
               named: Sequence[set[str]], mentioned: set[str]) -> PlanDecision:
        """The best goal's plan; or, when goals that differ only in what the words left open (objects they
        do not name, a side they do not name, an order they ask for but do not give) are too close to
        call, a question."""
        order = np.argsort(-scores)
        best = int(order[0])
        probabilities = softmax(scores)
        ranked = ", ".join(f"{options[i].description!r} {scores[i]:.2f}" for i in order[:3])
        common = {"instruction": instruction, "rationale": f"llm_goal: {ranked}"}
        if self.config.ask_for_help and len(options) > 1:
            said = side_words_of(instruction) | named_sides(instruction)
            close = [best] + [int(i) for i in order[1:]
                              if scores[best] - scores[int(i)] < self.config.ask_margin
                              and (stands_in(named[int(i)], named[best], mentioned)
                                   or other_side(options[int(i)], options[best], named[int(i)], named[best], said)
                                   or other_order(options[int(i)], options[best], named[best], mentioned, said))
                              ][:self.config.max_options_asked - 1]
            if len(close) > 1:
                request = HelpRequest(question=f"Which did you mean by {shown(instruction, 100)}?",
                                      options=tuple(options[i].description for i in close),
                                      choices=tuple(options[i].plan for i in close))
                return PlanDecision(help=request, confidence=probability_of(probabilities, close), **common)
        return PlanDecision(plan=options[best].plan, confidence=float(probabilities[best]), **common)

    # ------------------------------------------------------------------ text

    def prompt(self, instruction: str) -> str:
        return f"{self.prefix}\n\nInstruction: {instruction}\nGoal:"

    def ground(self, instruction: str, scene: SceneDescription) -> str:
        """The instruction in the scene's words: its colours (`ground_colors`) and nouns (`ground_nouns`)."""
        return ground_nouns(ground_colors(instruction, scene) if self.config.ground_colors else instruction, scene)

    def _score_all(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return score_requests(self.llm, requests)


#: Words of a goal that puts something at a side of another object, and words an instruction
#: may use to ask for a relation of that kind.
SIDE_WORDS = frozenset({"left", "right", "front", "behind", "between"})
RELATION_WORDS = SIDE_WORDS | {"beside", "next", "side", "near", "by", "west", "east", "north", "south", "before",
                               "back", "centre", "center", "middle", "row", "line"}


#: Words for each side of an object, for telling whether an instruction chose one.
SIDE_SYNONYMS = {"left": frozenset({"left", "west"}), "right": frozenset({"right", "east"}),
                 "front": frozenset({"front", "before", "nearer", "closer"}),
                 "behind": frozenset({"behind", "back", "beyond", "far", "farther", "away"})}
#: Words that ask for an order.
ORDER_WORDS = frozenset({"order", "ordered", "sequence"})


def about(option: GoalOption, scene: SceneDescription) -> set[str]:
    """The objects a goal is about: those it says it is about, else those its words name."""
    return set(option.objects) if option.objects else named_labels(option.description, scene)


def stands_in(other: set[str], best: set[str], mentioned: set[str]) -> bool:
    """`other` is `best` with objects the instruction did not name swapped for others of their kinds
    ("the block in the bowl of its colour": the red block and bowl, or the blue ones): the words left
    open which were meant."""
    gone, new = best - other, other - best
    if not gone or len(gone) != len(new) or (gone | new) & mentioned:
        return False
    return sorted(map(kind_of, gone)) == sorted(map(kind_of, new))


def other_side(other: GoalOption, best: GoalOption, other_named: set[str], best_named: set[str],
               said: set[str]) -> bool:
    """`other` is `best` at another side of the same objects, and the words name neither side ("line up
    the blocks next to the bowl" for behind or in front of it)."""
    if other_named != best_named:
        return False
    sides, best_sides = sides_of(words_of(other.description)), sides_of(words_of(best.description))
    return bool(sides and best_sides) and sides != best_sides and not (sides | best_sides) & sides_of(said)


def other_order(other: GoalOption, best: GoalOption, best_named: set[str], mentioned: set[str], said: set[str]) -> bool:
    """`other` puts the same objects in another order, and the words ask for an order without saying
    it: they name at most one of the objects ("put them in the order we agreed"), or they name none
    and the two goals' words differ ("just make a tower of the three blocks"), or the objects the two
    goals place differently are ones the words do not name ("the green block on top of a tower of the
    other two", "a row with the brown block in the middle")."""
    if set(other.objects) != set(best.objects) or other.objects == best.objects:
        return False
    if said & ORDER_WORDS:
        return len(best_named & mentioned) <= 1
    if not best_named & mentioned:
        return other.description != best.description
    moved = {x for x, y in zip(other.objects, best.objects) if x != y}
    return (len(moved) >= 2 and not moved & mentioned and other.description != best.description
            and _template(other) == _template(best))  # only the order differs, not the side or the kind of goal


def _template(option: GoalOption) -> str:
    """A goal's words with its objects' names left out: the same for two orders of one kind of goal."""
    text = option.description
    for label in sorted(option.objects, key=len, reverse=True):
        text = text.replace(label, "{}")
    return text


def sides_of(words: set[str]) -> set[str]:
    """The sides some words name: {"behind"} for "on the far side of", {"front"} for "in front of"."""
    return {side for side, synonyms in SIDE_SYNONYMS.items() if words & synonyms}


#: The two sides that an instruction names by hand.
HANDS = frozenset({"left", "right"})
#: Phrases that name the far or near side of an object outright (unlike "far" or "closer" alone,
#: which often pick an object out: "the block closer to you").
DEPTH_PHRASES = {"behind": (("behind",), ("far", "side"), ("back", "side"), ("back", "of"), ("side", "away")),
                 "front": (("front",), ("near", "side"), ("nearer", "side"), ("close", "side"),
                           ("closer", "side"), ("side", "facing", "you"), ("side", "facing", "me"),
                           ("side", "nearest", "you"), ("side", "closest", "to", "you"))}
#: The four sides, as goals' words name them.
SIDES = frozenset({"left", "right", "front", "behind"})


def named_sides(instruction: str) -> set[str]:
    """The sides the words name outright: a hand ("just right of"), or the far or near side ("on the far
    side of the bowl", "behind it", "in front of")."""
    words = word_list(instruction)
    sides = side_words_of(instruction) & HANDS
    if any(w == "between" and {"me", "you"} & set(words[i + 1:i + 6]) for i, w in enumerate(words)):
        sides.add("front")  # "between me and the bowl", "between it and me": the side facing the robot
    for side, phrases in DEPTH_PHRASES.items():
        if any(tuple(words[i:i + len(phrase)]) == phrase for phrase in phrases for i in range(len(words))):
            sides.add(side)
    return sides


def other_hand(description: str, sides: set[str]) -> int:
    """1 when the words name one side ("put it just left of the bowl", "on its far side") and the goal's
    words only another."""
    said = words_of(description) & SIDES
    return int(len(sides) == 1 and bool(said) and not said & sides)


def misplaced(option: GoalOption, places: set[tuple[str, str]]) -> int:
    """Stated places ("the pink block on the bottom", "via the green zone") that the goal gives its
    object another of, or gives another object."""
    given = {subject: place for relation, subject, place in option.relations if relation == "at"}
    return sum(1 for label, place in places
               if (given[label] != place if label in given else place in given.values()))


def unasked(named: set[str], mentioned: set[str], counts: dict[str, float]) -> int:
    """Objects the goal acts on beyond what the words may mean, kind by kind ("put the red block and
    the blue one in the tray" does not mean every block)."""
    extra = {}
    for label in named - mentioned:
        extra[kind_of(label)] = extra.get(kind_of(label), 0) + 1
    return int(sum(max(0.0, n - counts[kind]) for kind, n in extra.items() if kind in counts))


def unsaid(spelled: set[str], named: set[str], reachable: set[str], mentioned: set[str],
           counts: dict[str, float]) -> int:
    """Objects the goal's words single out that the instruction only refers to as a group, when the
    goal acts on part of that group ("pack the blocks" is not "put the red block in the tray", "sort
    the blocks" not "move the blue blocks to the blue zone", while "sort the pile into the two zones"
    may name both zones)."""
    def partial(kind: str) -> bool:
        return any(kind_of(x) == kind for x in reachable - named)

    return sum(1 for label in spelled - mentioned
               if counts.get(kind_of(label)) == float("inf") and partial(kind_of(label)))


def unsaid_kinds(named: Sequence[set[str]], said: set[str]) -> np.ndarray:
    """1 for a goal that involves a kind of object the words never refer to, where another goal does not
    ("line up the blocks behind the bowl" for "a line of blocks with the blue one on the far left"); a kind
    every goal involves costs nothing ("the heap" is blocks whatever the goal)."""
    flags = np.asarray([bool({kind_of(x) for x in n} - said) for n in named], dtype=float)
    return flags - flags.min() if len(flags) else flags


def kind_of(label: str) -> str:
    return label_words(label)[1]


def best_per_option(scores: np.ndarray, owners: Sequence[int], count: int) -> np.ndarray:
    best = np.full(count, -np.inf)
    np.maximum.at(best, np.asarray(owners), scores)
    return best


def goal_text(description: str) -> str:
    """A goal's words as the model reads them after "Goal:"."""
    return f" {description}."


