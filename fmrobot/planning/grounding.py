"""Reading a scene's objects in an instruction: colour words, explicit references, none at all.

Shared by the language-model planners. Colour words the scene does not use are restated
as the nearest scene colour (fmrobot/colors.py); an object is named by its colour word
followed by its noun; an instruction that names no perceived object and no word for the
scene's objects as a whole is refused with one line.
"""

from __future__ import annotations

import itertools
import re
from typing import Sequence

import numpy as np

from fmrobot.colors import ColorLexicon, named_colors
from fmrobot.errors import PlanningError, shown
from fmrobot.types import SceneDescription

#: Words that refer to the scene's objects without naming one ("everything", "the tower").
GENERIC_REFERENCES = frozenset({
    "all", "everything", "each", "every", "both", "tower", "stack", "pile", "heap", "row", "line", "table",
    "object", "objects", "thing", "things", "item", "items", "it", "them", "one", "ones", "colour", "color",
    "colours", "colors", "contents", "left", "right", "front", "behind", "between", "top", "bottom",
})



def ground_colors(instruction: str, scene: SceneDescription) -> str:
    """Restate colour words the scene does not use ("navy") as the nearest scene colour ("blue")."""
    table = named_colors()
    colors = {label.split(" ")[0] for label in scene.labels if label.split(" ")[0] in table}
    if not colors:
        return instruction
    return ColorLexicon({c: table[c] for c in colors}).ground(instruction)


def word_list(text: str) -> list[str]:
    """The text's words, lower case, in order (punctuation and digits dropped)."""
    return re.findall(r"[a-z]+", text.lower())


def words_of(text: str) -> set[str]:
    return set(word_list(text))


def label_words(label: str) -> tuple[str, str]:
    """(colour or first word, noun) of a label: "red block 2" -> ("red", "block"); "tray" -> ("", "tray")."""
    words = [w for w in label.lower().split() if not w.isdigit()]
    return (words[0] if len(words) > 1 else "", words[-1] if words else "")


#: Words that single out one object of a kind by where it is, with the position (robot frame: x away
#: from the robot, y to its left) whose extreme they pick; "middle" picks the median across.
SUPERLATIVES: dict[str, tuple[int, int]] = {  # word -> (axis, sign): the object with the largest sign * coordinate
    "leftmost": (1, 1), "rightmost": (1, -1),
    "nearest": (0, -1), "closest": (0, -1), "nearer": (0, -1), "closer": (0, -1),
    "farthest": (0, 1), "furthest": (0, 1), "farther": (0, 1), "further": (0, 1),
}
#: Nouns of the objects a task puts on the table, and their plurals.
_KIND_WORDS = frozenset(w + end for w in ("block", "bowl", "zone", "tray", "cube", "cylinder", "vase")
                        for end in ("", "s"))
#: An extreme must beat the runner-up by this much (metres) to single an object out.
REFERENCE_MARGIN = 0.03


def spatial_references(words: Sequence[str], scene: SceneDescription, anchor: str | None = None) -> set[str]:
    """Labels the instruction singles out by position: a superlative ("leftmost", "closest",
    "farther"), "middle", or "on the left" / "far left" within four words of a kind noun ("the
    block closest to you", "the leftmost bowl", "the zone on the right"), when one object of that
    kind clearly is it. "Nearest to it" measures from `anchor` (the object the instruction names
    first), "nearest" alone from the robot."""
    by_kind: dict[str, list] = {}
    for obj in scene.objects:
        by_kind.setdefault(label_words(obj.label)[1], []).append(obj)
    positions = {o.label: np.asarray(o.position[:2]) for o in scene.objects}
    found = set()
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        if word in ("left", "right") and after != "of" and (
                (i > 0 and words[i - 1] in ("far", "your")) or (i > 1 and words[i - 2:i] == ["on", "the"])):
            word = word + "most"  # "the zone on the far left", "the bowl on the right", not "to the left of"
        if word not in SUPERLATIVES and word != "middle":
            continue
        near = set(words[max(0, i - 4):i + 5])
        for kind, objects in by_kind.items():
            if not ({kind, kind + "s", kind + "es"} & near) or len(objects) < 2:
                continue
            if word == "middle":
                if len(objects) != 3:
                    continue
                ranked = sorted(objects, key=lambda o: o.position[1])
                gaps = (ranked[1].position[1] - ranked[0].position[1], ranked[2].position[1] - ranked[1].position[1])
                if min(gaps) >= REFERENCE_MARGIN:
                    found.add(ranked[1].label)
                continue
            axis, sign = SUPERLATIVES[word]
            if axis == 0 and {"it", "them"} & set(words[i + 1:i + 3]):
                if anchor is None or anchor not in positions:
                    continue
                key = [sign * float(np.linalg.norm(positions[o.label] - positions[anchor])) for o in objects]
            else:
                key = [sign * o.position[axis] for o in objects]
            ranked = sorted(zip(key, (o.label for o in objects)), reverse=True)
            if ranked[0][0] - ranked[1][0] >= REFERENCE_MARGIN:
                found.add(ranked[0][1])
    return found


def mentioned_labels(instruction: str, scene: SceneDescription) -> set[str]:
    """The perceived labels the instruction names: a label's colour word followed within three words
    by its noun (or the noun's plural), or by "one" after that noun was used ("sort the blocks but
    leave the red one"), or alone when no other perceived label shares that colour; a label without
    a colour, all of its words; and a label the instruction singles out by position ("the leftmost
    block": `spatial_references`)."""
    words = word_list(instruction)
    labels = set(scene.labels)
    colors = [label_words(label)[0] for label in labels]
    found: dict[str, int] = {}  # label -> where it is first named
    for label in labels:
        color, noun = label_words(label)
        nouns = {noun, noun + "s", noun + "es"}
        if not color:
            if all(w in words for w in label.lower().split() if not w.isdigit()):
                found[label] = words.index(label.lower().split()[-1])
            continue
        for i, word in enumerate(words):
            if word != color:
                continue
            follows = set(words[i + 1:i + 4])
            earlier = [w for w in words[:i] if w in _KIND_WORDS]
            if (nouns & follows or colors.count(color) == 1
                    or ({"one", "ones"} & follows and earlier and earlier[-1] in nouns)):
                found[label] = i
                break
    anchor = min(found, key=found.get) if found else None
    return set(found) | spatial_references(words, scene, anchor)


def stated_relations(instruction: str, scene: SceneDescription) -> set[tuple[str, str, str]]:
    """("on", upper, lower) for each pair of objects the instruction puts one on the other: two
    named objects with "on", "onto" or "atop" between them ("the pink block on top of the green
    block"), or "under", "beneath" or "below" the other way round."""
    words = word_list(instruction)
    colors = {label_words(label)[0]: [] for label in scene.labels}
    for label in dict.fromkeys(scene.labels):
        colors[label_words(label)[0]].append(label)
    spots = []  # (word index, label) of every naming of a single object by its colour
    for i, word in enumerate(words):
        same = colors.get(word, [])
        follows = set(words[i + 1:i + 4])
        fitting = [label for label in same if label_words(label)[1] in follows] or (
            same if len(same) == 1 or {"one"} & follows else [])
        if len(fitting) == 1:
            spots.append((i, fitting[0]))
    found = set()
    for (i, a), (j, b) in itertools.pairwise(spots):
        between = set(words[i + 1:j])
        if between & {"on", "onto", "atop"}:
            found.add(("on", a, b))
        elif between & {"under", "beneath", "below", "underneath"}:
            found.add(("on", b, a))
    return found


#: Words that turn a named object into one to leave alone ("all but the red one", "that isn't blue").
NEGATIONS = frozenset({"except", "but", "not", "isn", "aren", "without", "leave", "apart", "other", "besides",
                       "excluding", "save", "skip", "keep"})


def negated_labels(instruction: str, mentioned: set[str], excludable: set[str]) -> set[str]:
    """Named objects the instruction asks to leave alone: those some goal can leave out, when the
    instruction has a word of exclusion."""
    return mentioned & excludable if NEGATIONS & words_of(instruction) else set()


def mismatches(named: set[str], mentioned: set[str], excluded: set[str] = frozenset(),
               negated: set[str] = frozenset()) -> int:
    """Objects the instruction names that the goal is not about, plus objects the instruction asks
    to leave alone that the goal acts on. A goal that leaves an object out matches its mention only
    when the instruction says to leave it out (`negated`)."""
    return len(mentioned - named - (excluded & negated)) + len(named & negated)


def named_labels(description: str, scene: SceneDescription) -> set[str]:
    """The perceived labels a goal's words name ("the red block" in "put the red block in ...")."""
    text = f" {description.lower()} "
    return {label for label in set(scene.labels) if re.search(rf"\b{re.escape(label.lower())}\b", text)}


def check_reference(instruction: str, grounded: str, scene: SceneDescription) -> None:
    """One clear line when the instruction names nothing the scene holds: no perceived object's
    colour or kind, and no word that refers to the scene's objects as a whole."""
    named = set()
    for label in scene.labels:
        for word in words_of(label):
            named |= {word, word + "s", word + "es"}
    said = words_of(instruction) | words_of(grounded)
    if said & (named | GENERIC_REFERENCES):
        return
    seen = ", ".join(sorted(set(scene.labels))) or "nothing"
    raise PlanningError(f"the instruction {shown(instruction, 100)} names nothing in the scene; perceived: {seen}")


