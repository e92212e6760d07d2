"""llm_goal's reading of phrasings the retired held-out split exposed, each rule tested on sentences made
up here: distances from a named object, adjectival sides, places in a row after a named object, scoped
exclusions, side groups chosen by "only" or by a later destination, stacking chains, and words that look
like sides or quantifiers but are not."""

import numpy as np

from fmrobot.planning.grounding import (
    cautioned_labels,
    chain_roles,
    mentioned_labels,
    negated_labels,
    negation_scopes,
    quantified_kinds,
    reference_counts,
    shadowed_labels,
    side_groups,
    side_words_of,
    stated_relations,
    stated_roles,
    word_list,
)
from fmrobot.planning.llm_goal import LlmGoalPlanner, about
from tests.planning.goal_reading import misses
from tests.planning.goal_reading import option as _option
from tests.planning.goal_reading import scene as _scene


def _misses(instruction, options, scene):
    return misses(instruction, options, scene).tolist()


# Two bowls, three blocks: the teal block lies nearest the red bowl, the olive block nearest the robot.
TABLE = _scene(("teal block", 0.62, 0.22), ("olive block", 0.35, 0.00), ("white block", 0.55, -0.25),
               ("red bowl", 0.70, 0.25), ("black bowl", 0.50, -0.10))


def test_a_distance_superlative_measures_from_the_object_it_names():
    assert mentioned_labels("move the block closest to the red bowl over to it", TABLE) >= {"teal block"}
    assert "teal block" in mentioned_labels("drop whichever block lies nearest the red bowl into that bowl", TABLE)
    assert "white block" in mentioned_labels("the block farthest from the red bowl goes in the black bowl", TABLE)
    # From the robot, as before, when the words name no object (or name the speaker).
    assert "olive block" in mentioned_labels("the block nearest to me goes in the red bowl", TABLE)
    assert "olive block" in mentioned_labels("put the block closest to the robot in the red bowl", TABLE)


def test_an_adjectival_side_describes_the_noun_after_it():
    # "left-hand bowl": the leftmost bowl, although a block was named just before.
    assert mentioned_labels("drop the white block in the left-hand bowl", TABLE) == {"white block", "red bowl"}
    assert mentioned_labels("the olive block belongs in the right-hand bowl", TABLE) == {"olive block", "black bowl"}


ROW = _scene(("lime block", 0.5, 0.2), ("navy block", 0.5, 0.0), ("tan block", 0.5, -0.2), ("gold bowl", 0.7, 0.0))


def test_a_side_after_a_named_object_is_its_place_in_the_row_not_a_reference():
    said = "lay out a row: the tan block at the far left, the lime block at the far right, the navy one between them"
    assert stated_roles(said, ROW) == {("tan block", "left"), ("lime block", "right"), ("navy block", "middle")}
    assert stated_roles("put the navy block leftmost and the tan block rightmost, in one line", ROW) >= {
        ("navy block", "left"), ("tan block", "right")}
    # Without a colour the same words still pick an object out.
    assert "lime block" in mentioned_labels("move the block on the far left next to the gold bowl", ROW)


SORT = _scene(("red block", 0.4, 0.2), ("blue block", 0.4, 0.0), ("green block", 0.4, -0.2),
              ("red bowl", 0.7, 0.2), ("blue bowl", 0.7, 0.0), ("green bowl", 0.7, -0.2))
EXCLUDABLE = {"red block", "blue block", "green block"}


def test_an_exclusion_reaches_as_far_as_its_list_of_objects():
    assert negated_labels("pack everything but the red and the green blocks", set(), EXCLUDABLE, SORT) == {
        "red block", "green block"}
    # A new clause ends it; what the other clause names is not excluded.
    assert negated_labels("leave the blue block alone and put the red block in its bowl", set(), EXCLUDABLE,
                          SORT) == {"blue block"}
    assert negated_labels("put the red block in its bowl, not the green one", set(), EXCLUDABLE, SORT) == {
        "green block"}
    # Nothing named after the word: its clause before it.
    assert negated_labels("the blue block should not be moved", set(), EXCLUDABLE, SORT) == {"blue block"}
    assert negation_scopes("keep the red block where it is, then sort the others") == [range(0, 7)]


def test_a_bare_colour_in_an_exclusion_names_the_object_some_goal_can_leave_out():
    # "isn't green": the green block (a goal can leave it out), not the green bowl.
    assert negated_labels("anything not green goes into its matching bowl", set(), EXCLUDABLE, SORT) == {
        "green block"}
    # "the blue one" after "bowls" stands for the blue block here; the bowl's mention is shadowed.
    said = "drop the blocks into the bowls of their colour, all but the blue one"
    negated = negated_labels(said, set(), EXCLUDABLE, SORT)
    assert negated == {"blue block"}
    assert shadowed_labels(said, SORT, mentioned_labels(said, SORT), negated) == {"blue bowl"}


def test_a_goal_that_leaves_out_the_excluded_objects_fits_however_it_is_worded():
    scene = _scene(("red block", 0.4, 0.2), ("blue block", 0.4, 0.0), ("green block", 0.4, -0.2),
                   ("pink block", 0.4, -0.35), ("tray", 0.7, 0.0))
    pair = _option("put the blue block and the pink block in the tray", ("blue block", "pink block", "tray"))
    but_red = _option("put every block except the red block in the tray",
                      ("blue block", "green block", "pink block", "tray"), excluded=("red block",))
    but_green = _option("put every block except the green block in the tray",
                        ("red block", "blue block", "pink block", "tray"), excluded=("green block",))
    misses = _misses("tray everything apart from the red and green blocks", [pair, but_red, but_green], scene)
    assert misses[0] == 0 and min(misses[1:]) >= 1
    # Only the excluded block, for "the blocks ... but not the red one": worse than leaving it out.
    only_red = _option("put the red block in the tray", ("red block", "tray"))
    assert np.argmin(_misses("sweep the blocks into the tray, but the red one may stay", [only_red, but_red],
                             scene)) == 1


def test_sorting_everything_of_other_colours_owes_nothing_of_the_excluded_colour():
    # Sorting the blue block too acts on what the words exclude: that costs twice.
    each = _option("put each block in the bowl of the same colour", tuple(sorted(l for l in SORT.labels)))
    but_blue = _option("put each block except the blue block in the bowl of the same colour",
                       ("red block", "red bowl", "green block", "green bowl"), excluded=("blue block",))
    assert _misses("everything that is not blue goes in the bowl of its colour", [each, but_blue], SORT) == [2, 0]


PACK = _scene(("red block", 0.40, 0.30), ("blue block", 0.35, -0.30), ("green block", 0.70, -0.25),
              ("pink block", 0.75, 0.25), ("tray", 0.55, 0.0))


def test_only_or_a_later_destination_makes_a_side_phrase_choose_the_objects():
    words = word_list("tray just the blocks behind the tray")
    assert side_groups(words, PACK) == {3: {"green block", "pink block"}}
    words = word_list("take the blocks to the left of the tray and drop them into it")
    assert side_groups(words, PACK) == {2: {"red block", "pink block"}}
    # Without either, the side says where the blocks go.
    assert side_groups(word_list("line the blocks up behind the tray"), PACK) == {}


def test_a_plural_after_positional_references_means_those_objects():
    assert reference_counts("drop the nearest and the farthest blocks in the tray", PACK)["block"] == 0.0


def test_on_it_after_a_stacking_clause_is_the_top_of_the_stack():
    scene = _scene(("tan block", 0.4, 0.2), ("lime block", 0.5, 0.0), ("navy block", 0.6, -0.2))
    assert stated_relations("set the lime block on the tan block, then add the navy block on top of it", scene) == {
        ("on", "lime block", "tan block"), ("on", "navy block", "lime block")}
    chain = stated_relations("pile navy on lime on tan", scene)
    assert chain_roles(chain) == {("tan block", "bottom"), ("navy block", "top")}
    assert chain_roles({("on", "navy block", "lime block")}) == set()  # one fact fixes no end


def test_words_that_look_like_sides_or_quantifiers_but_are_not():
    assert "right" not in side_words_of("set it down right in the middle of the bowl")
    assert "right" in side_words_of("set it down right of the bowl")
    assert quantified_kinds("rest the blue block on top of the tray", PACK) == set()
    assert quantified_kinds("put the red block in the tray, then the rest", PACK) == {"block"}
    sorted_piles = _scene(("red block 1", 0.4, 0.1), ("blue block 1", 0.4, -0.1), ("red zone", 0.7, 0.2),
                          ("blue zone", 0.7, -0.2))
    assert quantified_kinds("the red zone takes the red blocks, and the remaining blocks go to the other zone",
                            sorted_piles) == {"block"}


# Three blocks in a row across the table and three bowls; the blocks' colours come in two kinds each.
LINE = _scene(("pink block", 0.45, 0.25), ("gray block", 0.62, 0.02), ("teal block", 0.40, -0.22),
              ("pink bowl", 0.72, 0.25), ("gray bowl", 0.75, 0.0), ("teal bowl", 0.72, -0.25))


def test_furthest_to_one_hand_picks_the_object_at_that_end_unless_it_places_a_named_one():
    assert "pink block" in mentioned_labels("sort only the block furthest to the left", LINE)
    assert "teal block" in mentioned_labels("the block that sits farthest on the right goes in the gray bowl", LINE)
    assert "teal bowl" in mentioned_labels("drop the gray block in the bowl furthest right", LINE)
    # "the gray block furthest to the left" says where that block goes, not which block.
    assert mentioned_labels("put the gray block furthest to the left", LINE) == {"gray block"}


def test_one_after_a_colour_before_any_kind_is_named_is_a_block():
    assert mentioned_labels("toss the teal one into the pink bowl", LINE) == {"teal block", "pink bowl"}
    # "ones" looks back only to a kind named in the plural: a bowl named before does not make it a bowl.
    assert mentioned_labels("pink ones in the pink bowl, gray ones in the gray bowl", LINE) == {
        "pink block", "pink bowl", "gray block", "gray bowl"}
    # After a kind was named, "one" still stands for that kind.
    assert "teal bowl" in mentioned_labels("not the pink bowl, the teal one", LINE)


def test_goals_in_another_order_make_a_question_when_the_words_name_none_of_the_objects():
    planner = LlmGoalPlanner.__new__(LlmGoalPlanner)
    planner.config = LlmGoalPlanner.Config()
    blocks = ["pink block", "gray block", "teal block"]
    options = [_option(f"stack the blocks with the {a} at the bottom, then the {b}, then the {c}", [a, b, c])
               for a, b, c in (blocks, blocks[::-1])]
    scores = np.array([-10.0, -11.0])
    named = [about(o, LINE) for o in options]
    asked = planner.decide("build a tower out of the three blocks", options, scores, named, set())
    assert asked.help is not None and len(asked.help.options) == 2
    # Naming one of them settles it (the words then say something the model can weigh) ...
    told = planner.decide("build a tower on the pink block", options, scores, named, {"pink block"})
    assert told.help is None
    # ... and goals the words cannot tell apart are not a question about order.
    same = [_option("line up the blocks behind the gray bowl", order) for order in (blocks, blocks[::-1])]
    assert planner.decide("line up the blocks", same, scores, [about(o, LINE) for o in same], set()).help is None


def test_an_ordinal_counts_objects_of_its_kind_from_the_side_the_words_name():
    assert "gray block" in mentioned_labels("put the second block from the left in the teal bowl", LINE)
    assert "teal block" in mentioned_labels("counting from the right, the first block goes in the pink bowl", LINE)
    assert "pink bowl" in mentioned_labels("the gray block goes in the last bowl from the right", LINE)
    # "first" that orders steps, and an ordinal with no side to count from, pick nothing out.
    assert mentioned_labels("first put the gray block in the teal bowl", LINE) == {"gray block", "teal bowl"}
    assert "gray block" not in mentioned_labels("the second block goes in the teal bowl", LINE)


def test_a_group_may_be_any_block_on_one_side_and_staying_put_is_no_warning():
    tray = _scene(("lime block", 0.35, 0.1), ("navy block", 0.40, -0.1), ("tan block", 0.70, 0.0), ("tray", 0.55, 0.0))
    assert side_groups(word_list("any block that is nearer to you than the tray goes in it"), tray) == {
        1: {"lime block", "navy block"}}
    assert cautioned_labels("the navy block stays put at the bottom of the tower", tray) == set()
    assert cautioned_labels("stay away from the navy block", tray) == {"navy block"}


def test_a_list_from_one_end_of_the_tower_gives_each_object_its_place():
    tower = _scene(("lime block", 0.4, 0.2), ("navy block", 0.5, 0.0), ("tan block", 0.6, -0.2))
    assert stated_roles("from the top down: tan, lime, navy", tower) == {
        ("tan block", "top"), ("lime block", "middle"), ("navy block", "bottom")}
    assert stated_roles("bottom to top, the navy block then the tan one", tower) == {
        ("navy block", "bottom"), ("tan block", "top")}


def test_the_other_colours_or_ones_ask_for_the_rest_of_the_kind_named_first():
    assert quantified_kinds("the teal block goes in the teal bowl, and likewise for the other colours", LINE) == {"block"}
    assert quantified_kinds("put the pink block in its bowl and the other ones too", LINE) == {"block"}
    assert quantified_kinds("put the pink block in the other bowl", LINE) == set()
