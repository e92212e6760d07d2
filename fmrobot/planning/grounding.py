"""Reading a scene's objects in an instruction: colour words, explicit references, none at all.

Shared by the language-model planners. Colour words the scene does not use are restated
as the nearest scene colour (fmrobot/colors.py); an object is named by its colour word
followed by its noun; an instruction that names no perceived object and no word for the
scene's objects as a whole is refused with one line.
"""

from __future__ import annotations

import re
from collections import Counter
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
    kinds: dict[str, set[str]] = {}  # "bowl", "bowls" -> the colours of the bowls
    for label in scene.labels:
        color, noun = label_words(label)
        # "the cinnamon cube" is read among the blocks' colours, as "the cinnamon block" is
        for form in noun_forms(noun) | _SYNONYMS_OF.get(noun, set()) if color in colors else ():
            kinds.setdefault(form, set()).add(color)
    return ColorLexicon({c: table[c] for c in colors}, listed_before=_NAMED_BY_COLOUR, kinds=kinds).ground(instruction)


#: Everyday nouns for the kinds of object the tasks use, with the noun the scene's labels use.
NOUN_SYNONYMS = {"cube": "block", "cubes": "blocks", "dish": "bowl", "dishes": "bowls", "square": "zone",
                 "squares": "zones", "patch": "zone", "patches": "zones", "pad": "zone", "pads": "zones"}
#: The everyday nouns (and plurals) for each noun of the scene's labels.
_SYNONYMS_OF = {noun: {word for word, kind in NOUN_SYNONYMS.items() if kind.removesuffix("s") == noun}
                for noun in {kind.removesuffix("s") for kind in NOUN_SYNONYMS.values()}}
#: Words before which a noun synonym is a noun, not a word for a shape or a manner ("the red square",
#: "each square", not "put it square in the middle").
_BEFORE_NOUN = frozenset({"the", "a", "an", "each", "every", "its", "their", "that", "this", "those", "these",
                          "other", "matching", "same", "own", "right", "left", "two", "three", "four"})


def ground_nouns(instruction: str, scene: SceneDescription) -> str:
    """Restate everyday nouns for the scene's kinds ("cube", "dish", "square") as the scene's own noun
    ("block", "bowl", "zone"), when the scene has that kind and nothing called by the everyday noun, and
    the word stands as a noun: after a colour word of the scene or a determiner, and not before another
    noun ("the square block" keeps its shape)."""
    kinds = {label_words(label)[1] for label in scene.labels}
    colors = {label_words(label)[0] for label in scene.labels} - {""}
    out = re.split(r"([A-Za-z]+)", instruction)  # odd entries are the words
    words = [word.lower() for word in out[1::2]]
    for k, word in enumerate(words):
        kind = NOUN_SYNONYMS.get(word)
        if kind is None or kind.removesuffix("s") not in kinds or word.removesuffix("es").removesuffix("s") in kinds:
            continue
        before, after = words[k - 1] if k else "", words[k + 1] if k + 1 < len(words) else ""
        if (before in colors or before in _BEFORE_NOUN) and after not in _KIND_WORDS:
            out[2 * k + 1] = kind
    return "".join(out)


def lowered(text: str) -> str:
    """The text in lower case, with "right-most" / "left most" written as one word, as every reading here
    splits it (word indices must agree between them)."""
    return re.sub(r"\b(left|right)[- ]most\b", r"\1most", text.lower())


def word_list(text: str) -> list[str]:
    """The text's words, lower case, in order (punctuation and digits dropped)."""
    return re.findall(r"[a-z]+", lowered(text))


def words_of(text: str) -> set[str]:
    return set(word_list(text))


#: Words after which "right" means "exactly" ("right on its rim", "right there"), not a side.
_AFTER_INTENSIFIER = frozenset({"on", "onto", "in", "into", "inside", "at", "over", "above", "under", "below",
                                "there", "here", "away", "now", "up", "down", "against", "through", "where"})


def side_words_of(text: str) -> set[str]:
    """`words_of`, without "right" where it only stresses a place ("rest it right on the rim")."""
    words = word_list(text)
    return {w for i, w in enumerate(words)
            if not (w == "right" and words[i + 1:i + 2] and words[i + 1] in _AFTER_INTENSIFIER)}


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
#: Words that pick an object by its distance from one named after them ("the block next to the red bowl",
#: "the bowl by the tray").
_BESIDE = frozenset({"next", "beside", "near", "by"})
#: Nouns of the objects a task puts on the table, and their plurals.
_KIND_WORDS = frozenset(w + end for w in ("block", "bowl", "zone", "tray", "cube", "cylinder", "vase")
                        for end in ("", "s"))
#: Nouns a colour name may stand before: the objects' own, "one(s)", and words for a place on the table
#: ("the walnut square" for a zone).
_NAMED_BY_COLOUR = _KIND_WORDS | {"one", "ones", "square", "squares", "patch", "area", "spot", "region", "pad"}
#: Nouns of the objects the robot moves.
_MOVABLE = frozenset({"block", "cube", "cylinder"})
#: An extreme must beat the runner-up by this much (metres) to single an object out.
REFERENCE_MARGIN = 0.03


def spatial_references(words: Sequence[str], scene: SceneDescription, anchor: str | None = None) -> set[str]:
    """Labels the instruction singles out by position: a superlative ("leftmost", "closest",
    "farther", "furthest to the right"), an ordinal counted from a side ("the second block from the
    left": `_ordinal_spot`), "the middle block", or "on the left" / "far left" within four words of a kind noun
    ("the block closest to you", "the leftmost bowl", "the zone on the right"), or of "one" after
    that noun was used ("the blocks ... the rightmost one"), or a positional phrase ("the block at
    the back", "the block in front", "the right-hand bowl", "the bowl beside it": `_position_phrase`,
    `_beside_spots`), when one object of that kind clearly is it. "Nearest to it" measures from
    `anchor` (the object the instruction names first), "nearest" alone from the robot."""
    return {label for _, label in spatial_spots(words, scene, anchor)}


def spatial_spots(words: Sequence[str], scene: SceneDescription, anchor: str | None = None) -> list[tuple[int, str]]:
    """(word index, label) of each positional reference `spatial_references` resolves."""
    by_kind: dict[str, list] = {}
    for obj in scene.objects:
        by_kind.setdefault(label_words(obj.label)[1], []).append(obj)
    positions = {o.label: np.asarray(o.position[:2]) for o in scene.objects}
    found = []
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1] if i > 0 else ""
        phrase = _position_phrase(words, i)
        if word in _BESIDE:
            found += _beside_spots(words, i, scene, by_kind, positions, [label for _, label in found] or [anchor])
            continue
        if word in ORDINALS:
            found += _ordinal_spot(words, i, by_kind)
            continue
        hand = _hand_after(words, i)
        if hand:
            word = hand  # "the block furthest to the left": the leftmost (unless it places a named block, below)
        elif word in SUPERLATIVES and (after in ("left", "right") or "than" in words[i + 1:i + 6]):
            continue  # "the blocks nearer to me than the tray" are a group
        if phrase:
            word = phrase
        elif word in ("left", "right") and after != "of" and (
                before in ("far", "your") or (i > 1 and words[i - 2:i] == ["on", "the"])):
            word = word + "most"  # "the zone on the far left", "the bowl on the right", not "to the left of"
        if word not in SUPERLATIVES and word != "middle":
            continue
        if word == "middle" and after not in _KIND_WORDS | {"one"}:
            continue  # "in the middle" says where something goes, not which object it is (`stated_roles`)
        following = [w for w in words[i + 1:i + 3] if w != "hand"][:1]
        describes = bool(following) and following[0] in _KIND_WORDS | {"one", "ones"}  # "the leftmost bowl"
        if not describes and _placed_after_name(words, i, scene):
            continue  # "the gray block on the far left", "the yellow block rightmost": a place for a named object
        near = set(words[max(0, i - 4):i + 5])
        count = _counted_superlative(words, i)
        earlier = [w for w in words[:i] if w in _KIND_WORDS]
        if phrase and following and following[0] in _KIND_WORDS:
            near = set(following)  # "the left-hand bowl", "the front block": the noun the phrase describes
        elif phrase:  # "the block at the back goes in the bowl": the kind named just before the phrase, else after
            near = set(earlier[-1:]) if earlier and earlier[-1] in words[max(0, i - 4):i] else set()
            near = near or {w for w in words[i + 1:i + 4] if w in _KIND_WORDS}
        if {"one", "ones"} & near and earlier:
            near.add(earlier[-1])  # "the rightmost one": the kind last named
        for kind, objects in by_kind.items():
            if not (noun_forms(kind) & near) or len(objects) < 2:
                continue
            if word == "middle":
                if len(objects) != 3:
                    continue
                ranked = sorted(objects, key=lambda o: o.position[1])
                gaps = (ranked[1].position[1] - ranked[0].position[1], ranked[2].position[1] - ranked[1].position[1])
                if min(gaps) >= REFERENCE_MARGIN:
                    found.append((i, ranked[1].label))
                continue
            axis, sign = SUPERLATIVES[word]
            origin = _measured_from(words, i, scene, anchor) if axis == 0 else None
            if origin == "":
                continue
            if origin is not None:  # "nearest (to) it", "the block closest to the red bowl": distance from that object
                described = [_singular(w) for w in words[max(0, i - 3):i] if w in _KIND_WORDS][-1:]
                if origin not in positions or (described and described[0] != kind):
                    continue  # "the bowl nearest to it" is a bowl, not the block nearest that block
                objects = [o for o in objects if o.label != origin]
                if len(objects) < 2:
                    continue
                key = [sign * float(np.linalg.norm(positions[o.label] - positions[origin])) for o in objects]
            else:
                key = [sign * o.position[axis] for o in objects]
            ranked = sorted(zip(key, (o.label for o in objects)), reverse=True)
            if count < len(ranked) and ranked[count - 1][0] - ranked[count][0] >= REFERENCE_MARGIN:
                found += [(i, label) for _, label in ranked[:count]]
    return found


def _counted_superlative(words: Sequence[str], i: int) -> int:
    """How many objects the positional word at `i` picks: the number said before it ("the two leftmost
    blocks", "the two blocks nearest the tray", "the three blocks on the left"), else one. Not a number
    that counts a group the word then picks from ("of the two blocks, the leftmost")."""
    for j in range(i - 1, max(-1, i - 6), -1):
        if words[j] in _NUMBER_WORDS:
            between = list(words[j + 1:i])
            plural = between[:1] and between[0] in _KIND_WORDS and between[0].endswith("s")
            if not between or (plural and between[1:] in ([], ["on", "the"], ["on", "the", "far"], ["to", "the"])):
                return max(1, _NUMBER_WORDS[words[j]])
            return 1
    return 1


#: Ordinal words, with the place they count to along a direction (-1: the far end).
ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
#: Where counting starts ("second from the left"), with the axis and sign the count runs against.
_COUNTED_FROM = {"left": (1, 1), "right": (1, -1), "front": (0, -1), "near": (0, -1), "nearest": (0, -1),
                 "back": (0, 1), "far": (0, 1), "farthest": (0, 1)}


def _ordinal_spot(words: Sequence[str], i: int, by_kind: dict[str, list]) -> list[tuple[int, str]]:
    """The object an ordinal at `i` counts to: "the second block from the left", "counting from the
    right, the third bowl". Nothing without a kind noun right after the ordinal and a "from the ..." in
    the same sentence, or when neighbours in the count lie within `REFERENCE_MARGIN` of each other."""
    following = [w for w in words[i + 1:i + 2] if w in _KIND_WORDS and not w.endswith("s")]
    near = words[max(0, i - 8):i + 8]
    starts = [near[k + 1:k + 3] for k, w in enumerate(near) if w == "from"]
    sides = [w for start in starts for w in start[:2] if w in _COUNTED_FROM][:1]
    if not following or not sides:
        return []
    objects = by_kind.get(following[0], [])
    axis, sign = _COUNTED_FROM[sides[0]]
    ranked = sorted(objects, key=lambda o: -sign * o.position[axis])
    place = ORDINALS[words[i]]
    if len(ranked) < 2 or place >= len(ranked):
        return []
    place %= len(ranked)
    keys = [sign * o.position[axis] for o in ranked]
    neighbours = [keys[k] for k in (place - 1, place + 1) if 0 <= k < len(keys)]
    if any(abs(keys[place] - k) < REFERENCE_MARGIN for k in neighbours):
        return []
    return [(i, ranked[place].label)]


def _hand_after(words: Sequence[str], i: int) -> str:
    """"leftmost" / "rightmost" for "furthest (to / on the) left / right" at `i`, or "further left" (the more
    to the left of two), else ""."""
    if words[i] in ("further", "farther") and words[i + 1:i + 2] in (["left"], ["right"]):
        return words[i + 1] + "most"
    if words[i] not in ("farthest", "furthest", "most"):
        return ""
    rest = [w for w in words[i + 1:i + 4] if w not in ("to", "on", "the", "over")][:1]
    return rest[0] + "most" if rest in (["left"], ["right"]) else ""


#: Words that name the robot (or the speaker beside it) as where a distance is measured from.
_SPEAKER = frozenset({"you", "me", "us", "yourself", "robot", "arm", "gripper"})


def _measured_from(words: Sequence[str], i: int, scene: SceneDescription, anchor: str | None) -> str | None:
    """Where the distance superlative at `i` measures from: "nearest (to) it" the anchor ("" when there is
    none), "closest to the red bowl" / "nearest the tray" that object, else (no object, "to you") the robot:
    None."""
    rest = list(words[i + 1:i + 6])
    if rest[:1] in (["to"], ["from"]):
        rest = rest[1:]
    if not rest or rest[0] in _SPEAKER:
        return None
    if rest[0] in ("it", "them"):
        return anchor or ""
    if rest[0] in ("the", "a", "an", "that", "this"):
        return None if rest[1:2] and rest[1] in _SPEAKER else _named_in(rest[:4], scene)
    return None


def _placed_after_name(words: Sequence[str], i: int, scene: SceneDescription) -> bool:
    """The positional word at `i` follows an object its colour and noun already single out ("the gray
    block on the far left", "set the yellow block rightmost"): it says where that object goes, not which
    object is meant. Not when the colour is shared ("the red block furthest from you" of two red blocks)."""
    start = i - 1
    while start >= 0 and words[start] in ("on", "the", "at", "far", "to", "in", "is", "goes", "go", "sits", "sit"):
        start -= 1
    if start < 1 or words[start] not in _KIND_WORDS or words[start].endswith("s"):
        return False
    color, noun = words[start - 1], words[start]
    return sum(1 for label in scene.labels if label_words(label) == (color, noun)) == 1


def _position_phrase(words: Sequence[str], i: int) -> str:
    """The superlative a positional phrase stands for: "at the back" (farthest), "in front" (nearest),
    "the right-hand block" (rightmost); "" when the words relate to another object instead ("at the
    back of the bowl", "on its right-hand side")."""
    word, before = words[i], words[i - 1] if i > 0 else ""
    rest = [w for w in words[i + 1:i + 4] if w not in ("hand", "side")]
    if rest[:1] == ["of"] or before in ("its", "their"):
        return ""
    if word in ("back", "rear") and before == "the":
        return "farthest"
    if word == "front" and before in ("in", "the"):
        return "nearest"
    if word in ("left", "right") and words[i + 1:i + 2] == ["hand"] and before in ("the", "a", "your"):
        return word + "most"
    return ""


def _beside_spots(words: Sequence[str], i: int, scene: SceneDescription, by_kind: dict[str, list],
                  positions: dict[str, np.ndarray], earlier: Sequence[str | None]) -> list[tuple[int, str]]:
    """"the bowl by it", "the block next to the tray", "the zone beside the red block": the one object of
    the kind named just before (without a colour) closest to the object named just after, or to the
    object named before for "it"."""
    kind = next((w for w in reversed(words[max(0, i - 2):i]) if w in _KIND_WORDS), "")
    if not kind or kind.endswith("s") or words[words.index(kind, max(0, i - 2)) - 1] not in ("the", "a"):
        return []
    rest = words[i + 1:i + 5]
    if words[i] == "next" and rest[:1] != ["to"]:
        return []
    if {"it", "that"} & set(rest[:2]):
        landmark = next((label for label in reversed(earlier) if label and label_words(label)[1] != kind), None)
    else:
        landmark = _named_in(rest, scene)
    objects = by_kind.get(kind, [])
    if landmark not in positions or len([o for o in objects if o.label != landmark]) < 2:
        return []
    ranked = sorted((float(np.linalg.norm(positions[o.label] - positions[landmark])), o.label)
                    for o in objects if o.label != landmark)
    return [(i, ranked[0][1])] if ranked[1][0] - ranked[0][0] >= REFERENCE_MARGIN else []


def _named_in(words: Sequence[str], scene: SceneDescription) -> str | None:
    """The first object some words name by colour and noun, or by the noun of a colourless object."""
    for j, word in enumerate(words):
        for label in scene.labels:
            color, noun = label_words(label)
            if (color and word == color and noun in words[j + 1:j + 3]) or (not color and word == noun):
                return label
    return None


def _refers_back(word: str, earlier: Sequence[str], nouns: set[str]) -> bool:
    """"one" after a colour word stands for the kind last named ("sort the blocks but leave the red
    one"); "ones" for the kind last named in the plural ("the red blocks to the red zone and the
    blue ones ..." are blocks, though a zone was named in between)."""
    if word not in ("one", "ones") or not earlier:
        return False
    plural = [w for w in earlier if w.endswith("s")] if word == "ones" else []
    return (plural or list(earlier))[-1] in nouns


def _one_before_any_kind(next_word: Sequence[str], earlier: Sequence[str]) -> bool:
    """"one" after a colour before any kind is named ("chuck the pink one in the bowl"), or "ones"
    before any kind is named in the plural ("green ones to the green zone"): something to move."""
    if next_word == ["one"]:
        return not earlier
    return next_word == ["ones"] and not any(w.endswith("s") for w in earlier)


def mentioned_labels(instruction: str, scene: SceneDescription) -> set[str]:
    """The perceived labels the instruction names: a label's colour word followed within three words
    by its noun (or the noun's plural), or by "one" after that noun was used ("sort the blocks but
    leave the red one"; before any kind is named, "the red one" is a block), or alone when no other
    perceived label shares that colour; a label without
    a colour, all of its words; and a label the instruction singles out by position ("the leftmost
    block": `spatial_references`)."""
    words = word_list(instruction)
    labels = set(scene.labels)
    colors = [label_words(label)[0] for label in labels]
    found: dict[str, int] = {}  # label -> where it is first named
    for label in labels:
        color, noun = label_words(label)
        nouns = noun_forms(noun)
        if not color:
            if all(w in words for w in label.lower().split() if not w.isdigit()):
                found[label] = words.index(label.lower().split()[-1])
            continue
        for i, word in enumerate(words):
            if word != color:
                continue
            follows = words[i + 1:i + 4]
            earlier = [w for w in words[:i] if w in _KIND_WORDS]
            if (nouns & set(follows) or colors.count(color) == 1
                    or any(_refers_back(w, earlier, nouns) for w in follows[:2])
                    or (noun in _MOVABLE and _one_before_any_kind(follows[:1], earlier))):
                found[label] = i
                break
    anchor = min(found, key=found.get) if found else None
    groups = {label for members in side_groups(words, scene).values() for label in members}
    named = set(found) | spatial_references(words, scene, anchor) | groups
    meant, contrasted = _the_other(words, scene, named)
    return (named - contrasted) | meant


def _the_other(words: Sequence[str], scene: SceneDescription, named: set[str]) -> tuple[set[str], set[str]]:
    """"the other bowl" where the scene has two bowls and the words named one ("the block closest to the
    yellow bowl ... in the other bowl"): (the bowl meant, the named bowl when it was named only as where a
    distance is measured from, to be set apart; not a bowl the words give something of their own)."""
    meant: set[str] = set()
    contrasted: set[str] = set()
    for i, word in enumerate(words[:-1]):
        noun = words[i + 1]
        if word != "other" or noun not in _KIND_WORDS or noun.endswith("s"):
            continue
        same = [label for label in scene.labels if noun in noun_forms(label_words(label)[1])]
        said = [label for label in same if label in named]
        if len(same) == 2 and len(said) == 1:
            meant |= set(same) - set(said)
            color = label_words(said[0])[0]
            at = [j for j, w in enumerate(words[:i]) if w == color]
            if at and (SUPERLATIVES.keys() | _BESIDE) & set(words[max(0, at[0] - 3):at[0]]):
                contrasted |= set(said)
    return meant, contrasted


#: Words that put a group on one side of an object, with the axis and sign of that side (robot frame).
SIDES: dict[str, tuple[int, int]] = {"left": (1, 1), "right": (1, -1), "behind": (0, 1), "beyond": (0, 1),
                                     "front": (0, -1), "nearer": (0, -1), "closer": (0, -1),
                                     "farther": (0, 1), "further": (0, 1)}


#: Words that make a side phrase after a plural select objects where they are ("the blocks that are left of ...").
_SELECTING = frozenset({"that", "which", "whichever", "lying", "sitting", "sit", "sits", "standing", "located",
                        "currently", "already", "only", "just"})  # "pack only the blocks in front of the tray"


def _destination_after(words: Sequence[str], j: int) -> bool:
    """A container destination follows the side phrase at `j` ("put the blocks on the right of the tray
    into it"): the side phrase then says which objects, not where they go."""
    rest = words[j + 1:j + 12]
    for k, word in enumerate(rest):
        if word in ("into", "inside") or (word == "in" and k > 0 and rest[k - 1] != "front"):
            after = rest[k + 1:k + 4]
            return bool(after) and (after[0] == "it" or any(_singular(w) in _CONTAINERS for w in after))
    return False


_CONTAINERS = frozenset({"tray", "bowl", "zone"})


def side_groups(words: Sequence[str], scene: SceneDescription) -> dict[int, set[str]]:
    """For each plural noun (or noun after "any", "every", "each") the words restrict to one side of an
    object ("the blocks to the left of the tray", "whichever blocks sit on its right-hand side", "the
    blocks nearer to me than the tray", "any block in front of the tray"), its
    word index and the objects of that kind on that side. A side is read within eight words after the
    noun; the object is the one named after the side word, or for "its" the one named before the noun.
    Nothing when an object lies within `REFERENCE_MARGIN` of the dividing line."""
    positions = {o.label: np.asarray(o.position[:2]) for o in scene.objects}
    groups: dict[int, set[str]] = {}
    for i, word in enumerate(words):
        if word not in _KIND_WORDS or not (word.endswith("s") or words[i - 1:i] in (["any"], ["every"], ["each"])):
            continue  # "the blocks ...", or "any block that is nearer to you than the tray"
        for j in range(i + 1, min(len(words), i + 9)):
            if words[j] in _KIND_WORDS or words[j] in ("and", "then"):
                break
            if words[j] not in SIDES or (words[j] in ("left", "right", "front") and "of" not in words[j + 1:j + 4]
                                         and words[j - 1] not in ("its", "their")):
                continue
            if not (_SELECTING & set(words[max(0, i - 2):j]) or "than" in words[j + 1:j + 6]
                    or _destination_after(words, j)):
                break  # "line up the blocks behind the bowl" says where they go, not which ones
            if words[j - 1] in ("its", "their"):
                landmark = _last_named(words[:i], scene) or _named_in(words[j + 1:], scene)
            else:
                landmark = _named_in(words[j + 1:j + 7], scene)
            if landmark not in positions:
                break
            axis, sign = SIDES[words[j]]
            kind = _singular(word)
            offsets = [(sign * float(positions[label][axis] - positions[landmark][axis]), label)
                       for label in positions if label_words(label)[1] == kind and label != landmark]
            if offsets and all(abs(d) >= REFERENCE_MARGIN for d, _ in offsets):
                members = {label for d, label in offsets if d > 0}
                if members:
                    groups[i] = members
            break
    return groups


def _last_named(words: Sequence[str], scene: SceneDescription) -> str | None:
    """The object named last in some words (by colour and noun, or a colourless object's noun)."""
    for j in range(len(words) - 1, -1, -1):
        named = _named_in(words[j:j + 3], scene)
        if named:
            return named
    return None


def object_spots(instruction: str, scene: SceneDescription) -> list[tuple[int, str]]:
    """(word index, label) of each place the instruction names one object: its colour word followed
    by its noun (or by "one" standing for it), a colour only one object has, the noun of an object
    without a colour ("the tray"), or a positional reference (`spatial_spots`), in the order they
    are said."""
    words = word_list(instruction)
    colors: dict[str, list[str]] = {}
    for label in dict.fromkeys(scene.labels):
        colors.setdefault(label_words(label)[0], []).append(label)
    spots = []
    for i, word in enumerate(words):
        same = colors.get(word, []) if word else []
        follows = words[i + 1:i + 4]
        earlier = [w for w in words[:i] if w in _KIND_WORDS]
        fitting = [label for label in same if label_words(label)[1] in follows] or [
            label for label in same
            if any(_refers_back(w, earlier, noun_forms(label_words(label)[1])) for w in follows[:2])]
        if not fitting and len(same) == 1:
            fitting = same
        plain = [label for label in colors.get("", []) if label_words(label)[1] == word]
        if len(fitting) == 1 or len(plain) == 1:  # a colourless label ("tray") by its noun
            spots.append((i, (fitting or plain)[0]))
    anchor = spots[0][1] if spots else None
    return sorted(spots + spatial_spots(words, scene, anchor))


def noun_forms(noun: str) -> set[str]:
    """A noun and its plurals."""
    return {noun, noun + "s", noun + "es"}


def clause_numbers(instruction: str) -> list[int]:
    """For each word of `word_list(instruction)`, the number of its clause: clauses end at
    punctuation, "and" and "then" ("X at the bottom, Y in the middle and Z on top")."""
    numbers, clause = [], 0
    for token in re.findall(r"[a-z]+|[,;:.!?]", lowered(instruction)):
        if not token.isalpha() or token in ("and", "then"):
            clause += 1
        if token.isalpha():
            numbers.append(clause)
    return numbers


def stated_relations(instruction: str, scene: SceneDescription) -> set[tuple[str, str, str]]:
    """("on", upper, lower) for each pair of objects the instruction puts one on the other: two
    named objects with "on", "onto" or "atop" between them ("the pink block on top of the green
    block", "the red block on the block closest to you"), or "under", "beneath" or "below" the
    other way round."""
    words = word_list(instruction)
    spots = object_spots(instruction, scene)
    found = set()
    for k, (i, a) in enumerate(spots):
        j, b = spots[k + 1] if k + 1 < len(spots) else (len(words), a)
        between = words[i + 1:j]
        back = _on_it(between)
        if back:  # "the blue block resting on it": on the object named before, not the next one
            if k > 0 and spots[k - 1][1] != a:
                it = spots[k - 1][1]
                # "put A on B, then C on top of it": "it" is the stack so far, whose top is A.
                for _ in range(len(found)):
                    above = [f[1] for f in found if f[2] == it and f[1] != a]
                    if back != "on" or not above:
                        break
                    it = above[0]
                found.add(("on", a, it) if back == "on" else ("on", it, a))
            continue
        if a == b or not _reaches_next(between):
            continue
        if set(between) & {"on", "onto", "atop", "above"}:
            found.add(("on", a, b))
        elif set(between) & {"under", "beneath", "below", "underneath"}:
            found.add(("on", b, a))
    return found


def _reaches_next(between: Sequence[str]) -> bool:
    """Whether a stacking word between two objects relates them: not when it ends at a place of its
    own ("the red block on the table, the yellow block onto it", "the yellow block on top and the
    purple block as its base")."""
    for k, word in enumerate(between):
        if word in ("on", "onto", "atop", "above", "under", "beneath", "below", "underneath"):
            rest = between[k + 1:]
            if rest[:1] == ["top"] and rest[1:2] != ["of"]:
                return False
            return not {"table", "and", "then"} & set(rest)
    return True


def chain_roles(stated: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """(label, place) for the ends of one chain of stated stacking facts ("yellow on red on pink"): the
    object under all the others at the bottom, the one over all the others on top."""
    uppers, lowers = {f[1] for f in stated}, {f[2] for f in stated}
    bottoms, tops = lowers - uppers, uppers - lowers
    if len(stated) < 2 or len(bottoms) != 1 or len(tops) != 1 or len(uppers | lowers) != len(stated) + 1:
        return set()
    return {(bottoms.pop(), "bottom"), (tops.pop(), "top")}


def _on_it(words: Sequence[str]) -> str:
    """"on" for "on it" / "on top of it", "under" for "under it", else ""."""
    for i, word in enumerate(words):
        if word in ("it", "that") and i > 0:
            before = words[max(0, i - 3):i]
            if {"on", "onto", "atop", "above"} & set(before):
                return "on"
            if {"under", "beneath", "below", "underneath"} & set(before):
                return "under"
    return ""


#: Words that say which place in a tower or a row an object takes, or that a move passes by it, and the place.
ROLE_WORDS = {"bottom": "bottom", "base": "bottom", "top": "top", "middle": "middle", "centre": "middle",
              "center": "middle", "left": "left", "right": "right", "via": "via", "using": "via", "through": "via",
              "lowest": "bottom", "foundation": "bottom", "bottommost": "bottom", "highest": "top", "topmost": "top",
              "uppermost": "top", "cap": "top", "caps": "top", "crown": "top", "crowns": "top"}
#: Words that place an object relative to all the others ("underneath both", "between them", "above them all").
GROUP_ROLE_WORDS = {"under": "bottom", "underneath": "bottom", "beneath": "bottom", "below": "bottom",
                    "above": "top", "over": "top", "between": "middle"}
_GROUP_WORDS = frozenset({"both", "them", "all", "those", "others"})


def stated_roles(instruction: str, scene: SceneDescription) -> set[tuple[str, str]]:
    """(label, place) for each object given one place ("the pink block on the bottom", "the red one in
    the middle", "the gray block to its left", "the blue block on top", "via the green zone"): a place
    word belongs to the object named last before it in its clause, or else first after it.
    A place word followed by "of" and an object named later in the clause is a relation, not a place
    ("on top of the green block", "to the left of the bowl"); one that names an object by where it
    is ("the block on the right") is a reference, not a place."""
    words = word_list(instruction)
    numbers = clause_numbers(instruction)
    spots = object_spots(instruction, scene)
    referring = {i for i, _ in spatial_spots(words, scene)}
    given: dict[str, set[str]] = {}
    for i, word in enumerate(words):
        if word in GROUP_ROLE_WORDS and (set(words[i + 1:i + 3]) & _GROUP_WORDS or (
                word == "between" and (i + 1 == len(words) or numbers[i + 1] != numbers[i]))):
            word = GROUP_ROLE_WORDS[word]  # "with the gray block underneath both", "the blue one in between"
        elif word in ("leftmost", "rightmost") and _placed_after_name(words, i, scene):
            word = word.removesuffix("most")  # "the yellow block rightmost": its place in the row
        elif word == "table" and words[i - 2:i] == ["on", "the"] and not _LEAVING & set(
                w for j, w in enumerate(words) if numbers[j] == numbers[i]):
            word = "bottom"  # "start with the red block on the table": the tower's base (not "leave it on the table")
        elif word not in ROLE_WORDS or i in referring:
            continue
        if word in ("left", "right") and i > 0 and words[i - 1] in ("far", "your") and not _placed_after_name(
                words, i, scene):
            continue  # "the zone on your right" points at an object; "the gray block on the far left" is a place
        inside = [(j, label) for j, label in spots if numbers[j] == numbers[i]]
        if i + 1 < len(words) and words[i + 1] == "of" and any(j > i for j, _ in inside):
            continue
        # The place is the object's named last before it in its clause ("the green block in the centre
        # with the red block on its left"), or first after it ("at the bottom goes the red block").
        before = [label for j, label in inside if j < i]
        after = [label for j, label in inside if j > i]
        if before or after:
            given.setdefault((before or after)[-1 if before else 0], set()).add(ROLE_WORDS.get(word, word))
    for label, place in _listed_from_one_end(words, spots):
        given.setdefault(label, set()).add(place)
    return {(label, places.pop()) for label, places in given.items() if len(places) == 1}


#: Word runs that say a list goes from one end of a tower to the other, with the end it starts at.
_FROM_ONE_END = {("top", "down"): "top", ("top", "to", "bottom"): "top", ("bottom", "up"): "bottom",
                 ("bottom", "to", "top"): "bottom", ("top", "downwards"): "top", ("bottom", "upwards"): "bottom",
                 ("table", "up"): "bottom", ("up", "from", "the", "table"): "bottom",
                 ("up", "from", "the", "bottom"): "bottom", ("down", "from", "the", "top"): "top"}


def _listed_from_one_end(words: Sequence[str], spots: Sequence[tuple[int, str]]) -> list[tuple[str, str]]:
    """Places of objects listed after "from the top down" / "bottom to top" ("from the top down: yellow,
    purple, brown"), or before it when none follow ("red then purple then pink, counting up from the
    table"): the first at that end, the last at the other, one between them in the middle."""
    for k in range(len(words)):
        start = next((end for run, end in _FROM_ONE_END.items() if tuple(words[k:k + len(run)]) == run), None)
        if start is None:
            continue
        listed = list(dict.fromkeys(label for j, label in spots if j > k))
        if len(listed) < 2:
            listed = list(dict.fromkeys(label for j, label in spots if j < k))
        if len(listed) < 2:
            return []
        other = "bottom" if start == "top" else "top"
        places = [(listed[0], start), (listed[-1], other)]
        return places + [(listed[1], "middle")] if len(listed) == 3 else places
    return []


#: Words that ask for every object of a kind (the kind named after them, or the one named before).
QUANTIFIERS = frozenset({"all", "every", "each", "everything", "rest", "remaining", "others"})


def quantified_kinds(instruction: str, scene: SceneDescription) -> set[str]:
    """Kinds the instruction asks for all of: "all the blocks", "every block", "each of the four
    blocks", "the other blocks", "then the rest" (the kind named first), "everything" (every kind)."""
    words = word_list(instruction)
    kinds = {label_words(label)[1] for label in scene.labels}
    found = set()
    for i in _quantifier_spots(words):
        word = words[i]
        if word in ("everything", "anything"):
            return kinds
        after = [_singular(w) for w in words[i + 1:i + 5] if w in _KIND_WORDS]
        before = [_singular(w) for w in words[:i] if w in _KIND_WORDS]
        # "the rest" / "the others": of the kind acted on first ("put the red block in its bowl, then the rest");
        # "the leftover blocks": the kind it qualifies.
        qualified = i + 1 < len(words) and words[i + 1] in _KIND_WORDS
        kind = after[0] if after and (word not in _REST_WORDS or qualified) else (before[:1] or after or [""])[0]
        found |= {kind} & kinds
    return found


#: Plurals after "other" that mean the remaining objects of the kind named before ("and so on for the
#: other colours", "the other ones").
_OTHER_GROUPS = frozenset({"colours", "colors", "ones"})
#: Quantifiers that mean the objects not yet acted on ("then the rest", "whatever is left").
_REST_WORDS = frozenset({"rest", "remaining", "others", "leftover", "leftovers", "left"})
#: Words that, just before a quantifier, leave those objects alone ("leave the rest where they are").
_LEAVING = frozenset({"leave", "leaving", "keep", "keeping", "ignore", "ignoring", "except", "without"})


#: Words that make a quantifier's objects someone's ("all of its blocks").
_POSSESSIVES = frozenset({"its", "their", "his", "her"})
#: Counts in words.
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
#: Words that, before "of the <plural>", say how many of them are meant ("one of the blocks", "a couple of
#: the blocks"): some, not all.
_PARTITIVES = {**_NUMBER_WORDS, "couple": 2, "pair": 2, "few": 2, "either": 1, "any": 1}


def _partitive(words: Sequence[str], i: int) -> float | None:
    """How many of the plural at `i` a partitive before it means ("two of the blocks": 2), else None."""
    k = i - 1
    if k >= 0 and words[k] in ("the", "these", "those", "my", "your"):
        k -= 1
    if k < 1 or words[k] != "of":
        return None
    return _PARTITIVES.get(words[k - 1])


def _quantifier_spots(words: Sequence[str]) -> list[int]:
    """Indices of the words that ask for every object of a kind: a quantifier ("all", "every", "the
    rest", "the leftovers", "anything"), "the other blocks" (or "ones", "colours"), "no block" (left out),
    "whatever is left";
    not one that follows a word of leaving ("leave the rest where they are")."""
    spots = []
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1] if i > 0 else ""
        if word == "rest" and before not in ("the", "all", "any"):
            continue  # "rest the block on the vase": a verb, not "the rest"
        if word in QUANTIFIERS and _POSSESSIVES & set(words[i + 1:i + 3]):
            continue  # "all of its blocks": those that belong to something, not every block
        if not (word in QUANTIFIERS or word in ("anything", "leftover", "leftovers")
                or (word == "other" and after.endswith("s") and after in _KIND_WORDS | _OTHER_GROUPS)
                or (word == "other" and after in _NUMBER_WORDS)  # "on a tower made of the other two"
                or (word == "no" and after in _KIND_WORDS)
                or (word == "left" and before in ("is", "are", "s", "remains", "still") and after != "of")):
            continue
        if not _LEAVING & set(words[max(0, i - 3):i]):
            spots.append(i)
    return spots


def _singular(noun: str) -> str:
    return noun.removesuffix("s")


def reference_counts(instruction: str, scene: SceneDescription) -> dict[str, float]:
    """For each kind the instruction refers to, how many objects of it the words may mean beyond those
    they name: one for each "the block" that says no colour or position, none after a colour ("the
    red blocks" are the red ones), any number for a bare plural ("the blocks") or when a quantifier
    ("every", "the rest") asks for all. Kinds the words never refer to have no entry."""
    words = word_list(instruction)
    if _quantifier_spots(words) or quantified_kinds(instruction, scene):
        return {}
    grouped = side_groups(words, scene)  # "the blocks that are behind the tray": those, no others
    numbers = clause_numbers(instruction)
    colors = {label_words(label)[0] for label in scene.labels} - {""}
    kinds = Counter(label_words(label)[1] for label in scene.labels)  # kind -> how many the scene has
    positional = {i for i, _ in spatial_spots(words, scene)}
    # Objects the words exclude ("leave the other blocks where they are") are not among those they mean;
    # a place the exclusion names is not excluded ("leave the yellow one out of the bowls").
    excluded = {j for scope in negation_scopes(instruction, colors) for j in scope
                if not _PLACE_WORDS & set(words[scope.start:j])}
    counts: dict[str, float] = {}
    for i, word in enumerate(words):
        kind = _singular(word) if word in _KIND_WORDS else ""
        if kind not in kinds:
            if word in colors:  # a colour alone names objects of some kind
                for label in scene.labels:
                    if label_words(label)[0] == word:
                        counts.setdefault(label_words(label)[1], 0.0)
            continue
        before = [w for j, w in enumerate(words[max(0, i - 3):i], max(0, i - 3)) if numbers[j] == numbers[i]]
        colored = bool(colors & set(before))  # in its own clause: "apart from the blue one, the blocks" is plain
        if word != kind and i in excluded:
            counts.setdefault(kind, 0.0)
        elif word != kind:  # a plural; "the leftmost and the rightmost blocks" are those two
            # "the two blocks nearest the tray": a number, then the positional word that picks that many
            counted = i > 0 and words[i - 1] in _NUMBER_WORDS and bool(positional & set(range(i + 1, i + 4)))
            picked = colored or i in grouped or bool(positional & set(range(i - 4, i))) or counted
            # "one of the blocks", "a couple of the blocks", "those two blocks": that many, not all (though
            # "the two zones" of two are all of them)
            some = _partitive(words, i) or _NUMBER_WORDS.get(words[i - 1] if i else "")
            if some and some >= kinds[kind]:
                some = None
            counts[kind] = counts.get(kind, 0.0) + (0.0 if picked else some if some else float("inf"))
        elif colored or positional & set(range(i - 1, i + 4)):
            counts.setdefault(kind, 0.0)
        else:
            counts[kind] = counts.get(kind, 0.0) + 1.0
    return counts


#: Words that introduce a place ("out of the bowls", "in the pile").
_PLACE_WORDS = frozenset({"out", "in", "into", "inside", "on", "onto", "from", "to", "at", "off", "where"})
#: Words that turn a named object into one to leave alone ("all but the red one", "that isn't blue"); so does
#: "other than" (`negation_scopes`), while "the other zone" names one.
NEGATIONS = frozenset({"except", "but", "not", "isn", "aren", "without", "leave", "leaving", "apart",
                       "besides", "excluding", "save", "skip", "skipping", "keep", "keeping", "omit", "omitting",
                       "stay", "stays", "remain", "remains"})
#: Words of exclusion said after what they exclude ("the green blocks can stay in the pile"): their scope is
#: the clause before them, whatever follows ("the one on the right stays out of the bowls" keeps no bowl).
_STAYING = frozenset({"stay", "stays", "remain", "remains"})


def negated_labels(instruction: str, mentioned: set[str], excludable: set[str],
                   scene: SceneDescription | None = None) -> set[str]:
    """Named objects the instruction asks to leave alone, among those some goal can leave out. Without
    a scene: every such object, when the instruction has a word of exclusion. With one: the objects
    named in the scope of a word of exclusion (`negation_scopes`: "all but the red one", "except the
    green and purple blocks", "anything that isn't blue"); a colour word there that names no object
    of its own names the excludable objects of that colour ("tidy the blocks into their bowls except
    the yellow one": the yellow block, not its bowl)."""
    words = word_list(instruction)
    colors = {label_words(label)[0] for label in (scene.labels if scene else ())} - {""}
    scopes = negation_scopes(instruction, colors)
    if scene is None or not scopes:
        return mentioned & excludable if scopes else set()
    inside = {i for scope in scopes for i in scope}
    spots = [(i, label) for i, label in object_spots(instruction, scene) if i in inside]
    found = {label for _, label in spots} & excludable
    for i in inside:
        if words[i] in colors and not any(label in excludable for j, label in spots if j == i):
            found |= {label for label in excludable if label_words(label)[0] == words[i]}
    return found


def shadowed_labels(instruction: str, scene: SceneDescription, mentioned: set[str], negated: set[str]) -> set[str]:
    """Mentioned objects named only inside a scope of exclusion with the colour of an excluded object
    ("except the yellow one" after "bowls": the yellow bowl stands for the excluded yellow block)."""
    colors = {label_words(label)[0] for label in negated} - {""}
    if not colors:
        return set()
    scopes = negation_scopes(instruction, {label_words(label)[0] for label in scene.labels} - {""})
    inside = {i for scope in scopes for i in scope}
    outside = {label for i, label in object_spots(instruction, scene) if i not in inside}
    return {label for label in mentioned - negated - outside if label_words(label)[0] in colors}


def negation_scopes(instruction: str, colors: set[str] = frozenset()) -> list[range]:
    """Word ranges (indices of `word_list`) a word of exclusion applies to: from it to the end of its
    phrase, through a list of objects ("except the green and purple blocks") but not into a new clause
    ("leave the red block out and pack the others"); when it names nothing after it, its clause
    before it ("the red block should not be packed"). `colors`: the scene's colour words."""
    tokens = re.findall(r"[a-z]+|[,;:.!?()]", lowered(instruction))
    words = [t for t in tokens if t.isalpha()]
    breaks = []  # for each word, whether a clause break (punctuation) precedes it
    pending = False
    for token in tokens:
        if not token.isalpha():
            pending = True
        else:
            breaks.append(pending)
            pending = False
    breaks.append(True)
    naming = _KIND_WORDS | {"one", "ones"} | set(colors)

    def object_next(j: int) -> bool:
        rest = [w for w in words[j:j + 3] if w not in ("the", "a", "an")]
        return bool(rest) and rest[0] in naming

    scopes = []
    for i, word in enumerate(words):
        negating = word in NEGATIONS or (word == "other" and words[i + 1:i + 2] == ["than"])
        if not negating or (word in _LEAVING and set(words[i + 1:i + 3]) & (QUANTIFIERS | _REST_WORDS)):
            continue  # not "leave the rest where it is"
        end = i + 1
        while word not in _STAYING and end < len(words) and not breaks[end] and words[end] != "then":
            if words[end] in ("and", "or", "nor") and not object_next(end + 1):
                break
            end += 1
        start = i
        if not naming & set(words[i + 1:end]):
            while start > 0 and not breaks[start] and words[start - 1] not in ("and", "then"):
                start -= 1
        scopes.append(range(start, end))
    return scopes


#: Words that warn about an object instead of asking to act on it ("careful, the vase breaks easily").
CAUTIONS = frozenset({"careful", "mind", "avoid", "fragile", "breaks", "break", "breakable", "gentle", "delicate",
                      "antique", "precious", "valuable", "priceless", "brittle", "shatter", "shatters", "cracks"})
#: Words that forbid an action: what it would end at is the object to keep clear of.
PROHIBITIONS = frozenset({"don", "never"})
#: Two-word prohibitions: "stay away from the vase", "stay clear of it" (but "it stays put" forbids nothing).
PROHIBITING_PAIRS = frozenset((stay, where) for stay in ("stay", "stays") for where in ("away", "clear", "off", "out"))


def cautioned_labels(instruction: str, scene: SceneDescription) -> set[str]:
    """Objects named in a clause that warns about them ("mind the vase", "the vase breaks easily"), and
    the last object of a forbidden action ("don't put the red block on the vase": the vase)."""
    words = word_list(instruction)
    numbers = clause_numbers(instruction)
    spots = object_spots(instruction, scene)
    warned = {numbers[i] for i, word in enumerate(words) if word in CAUTIONS}
    found = {label for i, label in spots if numbers[i] in warned}
    forbidding = {numbers[i] for i, word in enumerate(words)
                  if word in PROHIBITIONS or tuple(words[i:i + 2]) in PROHIBITING_PAIRS}
    for clause in forbidding:
        named = [label for i, label in spots if numbers[i] == clause]
        found |= set(named[-1:])
    return found


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
            named |= noun_forms(word)
    said = words_of(instruction) | words_of(grounded)
    if said & (named | GENERIC_REFERENCES):
        return
    seen = ", ".join(sorted(set(scene.labels))) or "nothing"
    raise PlanningError(f"the instruction {shown(instruction, 100)} names nothing in the scene; perceived: {seen}")


