"""Reading a scene's objects in an instruction: colour words, explicit references, none at all.

Shared by the language-model planners. Colour words the scene does not use are restated
as the nearest scene colour (fmrobot/colors.py); an object is named by its colour word
followed by its noun; an instruction that names no perceived object and no word for the
scene's objects as a whole is refused with one line.
"""

from __future__ import annotations

import re

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


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def label_words(label: str) -> tuple[str, str]:
    """(colour or first word, noun) of a label: "red block 2" -> ("red", "block"); "tray" -> ("", "tray")."""
    words = [w for w in label.lower().split() if not w.isdigit()]
    return (words[0] if len(words) > 1 else "", words[-1] if words else "")


def mentioned_labels(instruction: str, scene: SceneDescription) -> set[str]:
    """The perceived labels the instruction names: a label's colour word followed within three words
    by its noun (or the noun's plural) or, when no other perceived label shares that colour, the
    colour word alone ("the red one"); a label without a colour, all of its words."""
    words = re.findall(r"[a-z]+", instruction.lower())
    labels = set(scene.labels)
    colors = [label_words(label)[0] for label in labels]
    found = set()
    for label in labels:
        color, noun = label_words(label)
        nouns = {noun, noun + "s", noun + "es"}
        if not color:
            if all(w in words for w in label.lower().split() if not w.isdigit()):
                found.add(label)
            continue
        for i, word in enumerate(words):
            if word != color:
                continue
            if nouns & set(words[i + 1:i + 4]) or colors.count(color) == 1:
                found.add(label)
                break
    return found


def mismatches(named: set[str], mentioned: set[str]) -> int:
    """Objects the instruction names that the goal does not, plus objects the goal names where the
    instruction names another of the same kind (a goal may name a bowl the instruction left out)."""
    kinds = {label_words(label)[1] for label in mentioned}
    return len(mentioned - named) + len({label for label in named - mentioned if label_words(label)[1] in kinds})


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


