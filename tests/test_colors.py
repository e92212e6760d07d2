import pytest

from fmrobot.colors import ColorLexicon, rgb_to_lab
from sims.objects import COLORS

LEXICON = ColorLexicon(COLORS)


@pytest.mark.parametrize("phrase,grounded", [
    ("the crimson cube", "the red cube"),
    ("scarlet brick", "red brick"),
    ("the teal dish", "the cyan dish"),
    ("a forest green block", "a green block"),
    ("Grey-blue bowl", "blue bowl") if False else ("grey bowl", "gray bowl"),
])
def test_colour_words_become_known_colours(phrase, grounded):
    assert LEXICON.ground(phrase) == grounded


@pytest.mark.parametrize("phrase", ["red block", "the green bowl", "a lemon", "robot arm", "table"])
def test_known_colours_objects_and_non_colour_phrases_pass_unchanged(phrase):
    assert LEXICON.ground(phrase) == phrase


def test_lab_of_white_and_black():
    assert rgb_to_lab([1, 1, 1]) == pytest.approx([100, 0, 0], abs=0.05)
    assert rgb_to_lab([0, 0, 0]) == pytest.approx([0, 0, 0], abs=1e-6)


def test_every_colour_phrase_in_a_sentence_is_grounded():
    assert LEXICON.ground("drop the navy cube into the golden dish") == "drop the blue cube into the yellow dish"
    assert LEXICON.ground("put the crimson cube in the teal bowl") == "put the red cube in the cyan bowl"


def test_saturated_colours_match_by_hue_and_greys_by_lightness():
    from fmrobot.colors import named_colors

    table = named_colors()
    lexicon = ColorLexicon({c: table[c] for c in ("red", "brown", "blue", "gray", "green", "cyan", "white")})
    # Dark shades keep their hue: in plain CIELAB distance navy is nearest gray and crimson brown.
    assert lexicon.ground("the navy block") == "the blue block"
    assert lexicon.ground("the crimson block") == "the red block"
    assert lexicon.ground("the jade block") == "the green block"  # the survey pairs jade with green
    assert lexicon.ground("the silver block") == "the white block"
    assert lexicon.ground("the charcoal block") == "the gray block"


def test_names_only_the_long_list_has_are_colours_only_right_before_an_object_noun():
    from fmrobot.colors import listed_colors

    assert {"walnut", "pewter", "vermilion"} <= set(listed_colors())  # absent from the xkcd and CSS4 tables
    lexicon = ColorLexicon(COLORS, listed_before=frozenset({"block", "bowl", "one"}))
    assert lexicon.ground("drop the vermilion block into the pewter bowl") == "drop the red block into the gray bowl"
    assert lexicon.ground("the vermilion one, please") == "the red one, please"  # punctuation after the noun
    # Everyday words that the long list also names ("walnut", "lagoon") stay words elsewhere.
    assert lexicon.ground("crack the walnut open by the lagoon") == "crack the walnut open by the lagoon"
    # Without object nouns to look for (perception's queries), the long list is not read at all.
    assert LEXICON.ground("the vermilion block") == "the vermilion block"


def test_a_compound_name_in_the_long_list_pulls_a_name_towards_its_basic_colour():
    from fmrobot.colors import listed_colors, named_colors

    table = named_colors()
    lexicon = ColorLexicon({c: table[c] for c in ("brown", "orange", "gray", "blue")},
                           listed_before=frozenset({"block"}))
    # Walnut's value is nearer orange by hue and lightness; the list's "walnut brown" decides.
    assert lexicon.nearest(listed_colors()["walnut"]) == "orange"
    assert lexicon.ground("the walnut block") == "the brown block"
    # A grey with a compound in another colour ("graphite blue") is still matched as a grey.
    assert lexicon.ground("the graphite block") == "the gray block"


def test_a_colour_before_an_object_noun_is_the_nearest_colour_of_that_kind():
    from fmrobot.colors import named_colors

    table = named_colors()
    known = {c: table[c] for c in ("orange", "pink", "blue", "cyan")}
    kinds = {"bowl": {"pink", "blue"}, "bowls": {"pink", "blue"}, "block": {"orange", "cyan"}}
    # Blush is nearer the orange block's colour than the pink bowl's: without kinds it reads as orange.
    assert ColorLexicon(known).ground("the blush bowl") == "the orange bowl"
    lexicon = ColorLexicon(known, kinds=kinds)
    assert lexicon.ground("the blush bowl") == "the pink bowl"
    assert lexicon.ground("the blush block, then the blush bowls.") == "the orange block, then the pink bowls."
    # A colour the scene has is kept as said, whatever the kind ("the blue block" names no block here).
    assert lexicon.ground("the blue block") == "the blue block"
    # Not before a noun of a kind: all known colours, as before.
    assert lexicon.ground("the blush one") == ColorLexicon(known).ground("the blush one")


def test_grounding_reads_a_colour_among_the_colours_of_the_kind_it_names():
    from fmrobot.planning.grounding import ground_colors
    from tests.planning.goal_reading import scene

    table = scene(("orange block", 0.4, 0.1), ("cyan block", 0.5, 0.0), ("pink bowl", 0.5, -0.2),
                  ("blue bowl", 0.6, 0.2))
    assert ground_colors("the robin's egg blue block on the left side of the blush bowl", table) == \
        "the cyan block on the left side of the pink bowl"


def test_a_compound_said_without_its_basic_colour_is_read_before_an_object_noun():
    from fmrobot.colors import named_colors

    table = named_colors()
    assert "duck egg blue" in table and "duck egg" not in table
    lexicon = ColorLexicon({c: table[c] for c in ("cyan", "purple", "red", "blue")},
                           listed_before=frozenset({"block", "bowl"}))
    assert lexicon.ground("pop it into the duck-egg bowl") == "pop it into the cyan bowl"
    # The long list has names like "into the blue"; words like "into" and "the" are never part of one.
    assert lexicon.ground("each into the bowl of its colour") == "each into the bowl of its colour"
    # Nor are words for a place or a rank, though the list names a colour "middle purple".
    assert lexicon.ground("take the middle block") == "take the middle block"
    # One word is read so only when the list pairs it with one basic colour ("lapis blue"), and not an
    # everyday word the list happens to pair once ("glass green", "full yellow").
    assert lexicon.ground("the lapis bowl") == "the blue bowl"
    greens = ColorLexicon({c: table[c] for c in ("green", "yellow", "red")}, listed_before=frozenset({"vase", "bowl"}))
    assert greens.ground("mind the glass vase and the full bowl") == "mind the glass vase and the full bowl"
    assert greens.ground("the dirty bowl") == "the dirty bowl"  # the list pairs "dirty" with eight colours


def test_the_basic_colour_word_that_ends_a_compound_name_decides_between_near_colours():
    from fmrobot.colors import named_colors

    table = named_colors()
    lexicon = ColorLexicon({c: table[c] for c in ("red", "brown", "orange", "pink", "purple", "gray", "green",
                                                  "yellow", "blue", "cyan")},
                           listed_before=frozenset({"block", "bowl"}))
    # By hue alone these land on a neighbour ("salmon pink" on red, "burnt orange" on brown); the word that
    # ends the name says which colour is meant.
    assert lexicon.ground("the salmon pink block") == "the pink block"
    assert lexicon.ground("the burnt orange bowl") == "the orange bowl"
    assert lexicon.ground("the olive green block") == "the green block"
    # A basic colour word said right after a colour name is part of it: one colour, not two.
    assert lexicon.ground("the lavender purple block") == "the purple block"
    assert lexicon.ground("the stone grey block") == "the gray block"
    # A name whose value is far from its basic word still goes to the nearer colour.
    assert lexicon.ground("the turquoise blue bowl") == "the cyan bowl"


def test_a_colour_said_without_a_noun_after_a_plural_is_read_among_that_kinds_colours():
    from fmrobot.planning.grounding import ground_colors
    from tests.planning.goal_reading import scene

    table = scene(("pink block", 0.37, 0.25), ("brown block", 0.59, 0.06), ("blue block", 0.39, 0.09),
                  ("orange bowl", 0.41, -0.11))
    # Cinnamon is nearer the orange bowl's colour; after "the three blocks" it is one of the blocks.
    assert ground_colors("the three blocks in one line: cinnamon in the centre", table) == \
        "the three blocks in one line: brown in the centre"
    assert ground_colors("cinnamon in the centre", table) == "orange in the centre"
    # An everyday noun for a kind ("cube") narrows the colours as the kind's own noun does.
    assert ground_colors("the cinnamon cube", table) == "the brown cube"
