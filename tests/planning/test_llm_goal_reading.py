"""llm_goal's reading of an instruction beyond colour words: places in a tower or row, how many objects
the words mean, quantifiers, and the choices the words leave open (asked, not guessed)."""

import math

import numpy as np

from fmrobot.planning.grounding import (
    mentioned_labels,
    negated_labels,
    quantified_kinds,
    reference_counts,
    side_groups,
    stated_relations,
    stated_roles,
    word_list,
)
from fmrobot.planning.llm_goal import LlmGoalConfig, LlmGoalPlanner, about
from tests.planning.goal_reading import misses
from tests.planning.goal_reading import option as _option
from tests.planning.goal_reading import scene as _scene


BLOCKS = _scene(("teal block", 0.40, 0.20), ("pink block", 0.55, 0.00), ("gray block", 0.70, -0.20),
                ("tray", 0.50, -0.40))


def _tower(bottom, middle, top):
    return _option(f"stack the blocks with the {bottom} at the bottom, then the {middle}, then the {top}",
                   (bottom, middle, top), (("on", middle, bottom), ("on", top, middle), ("at", bottom, "bottom"),
                                           ("at", middle, "middle"), ("at", top, "top")))


def _misses(instruction, options, scene=BLOCKS):
    return misses(instruction, options, scene)


def test_places_in_a_tower_or_row_are_read_per_clause_and_relations_are_not_places():
    assert stated_roles("build it with gray block as the base, the teal block in the centre and pink block on top",
                        BLOCKS) == {("gray block", "bottom"), ("teal block", "middle"), ("pink block", "top")}
    assert stated_roles("set the pink block down, then the gray one to its left and the teal one to its right",
                        BLOCKS) == {("gray block", "left"), ("teal block", "right")}
    # "on top of <object>" and "left of <object>" relate two objects; no place is stated.
    assert stated_roles("the teal block goes on top of the gray block", BLOCKS) == set()
    assert stated_roles("put the pink block to the left of the tray", BLOCKS) == set()
    # By position: the block farthest away (gray) at the bottom, the leftmost one (teal) on top.
    assert stated_roles("the farthest block at the bottom and the leftmost one on top", BLOCKS) == {
        ("gray block", "bottom"), ("teal block", "top")}


def test_a_tower_whose_stated_places_differ_costs_a_mismatch_each():
    right, wrong = _tower("gray block", "teal block", "pink block"), _tower("teal block", "gray block", "pink block")
    misses = _misses("gray block as the base, the teal block in the centre and pink block on top", [right, wrong])
    assert misses.tolist() == [0, 2]
    # "on the block nearest to you": a positional reference takes part in a stated stacking fact.
    assert stated_relations("put the gray block on the block nearest to you", BLOCKS) == {
        ("on", "gray block", "teal block")}


def test_ones_stands_for_the_kind_last_named_in_the_plural():
    scene = _scene(("red block 1", 0.4, 0.1), ("red block 2", 0.5, 0.1), ("blue block 1", 0.4, -0.1),
                   ("blue block 2", 0.5, -0.1), ("red zone", 0.6, 0.2), ("blue zone", 0.6, -0.2))
    assert mentioned_labels("bring the red blocks over to the red zone, the blue ones too", scene) >= {
        "blue block 1", "blue block 2", "red zone"}


def test_how_many_objects_the_words_mean_and_which_kinds_they_quantify():
    assert reference_counts("drop the block in the tray", BLOCKS) == {"block": 1.0, "tray": 1.0}
    assert reference_counts("drop the teal and the gray blocks in the tray", BLOCKS)["block"] == 0.0
    assert math.isinf(reference_counts("drop the blocks in the tray", BLOCKS)["block"])
    assert reference_counts("drop every block in the tray", BLOCKS) == {}  # a quantifier lifts the count
    assert quantified_kinds("put the pink block in the tray first, then the remaining ones", BLOCKS) == {"block"}
    assert quantified_kinds("move the pink block, and afterwards the other blocks", BLOCKS) == {"block"}
    assert quantified_kinds("put the pink block in the tray", BLOCKS) == set()


def test_a_goal_is_charged_for_objects_the_words_do_not_ask_for_or_leave_out():
    every = _option("put every block in the tray", ("teal block", "pink block", "gray block", "tray"))
    pair = _option("put the teal block and the gray block in the tray", ("teal block", "gray block", "tray"))
    single = _option("put the pink block in the tray", ("pink block", "tray"))
    # Two blocks by position: packing every block acts on one more than they may mean.
    assert _misses("the nearest block and the farthest one go in the tray", [every, pair]).tolist() == [1, 0]
    # "then the rest": leaving blocks out of it is a mismatch for each.
    assert _misses("put the pink block in the tray, then the rest", [every, single]).tolist() == [0, 2]
    # A bare plural does not single out one block.
    assert _misses("pack up the blocks", [every, single]).tolist() == [0, 1]


def test_open_sides_orders_and_objects_become_questions():
    planner = LlmGoalPlanner(LlmGoalConfig(), llm=None)
    scene = BLOCKS
    behind = _option("line up the blocks behind the tray", ("teal block", "pink block", "gray block", "tray"))
    front = _option("line up the blocks in front of the tray", ("teal block", "pink block", "gray block", "tray"))
    options = [behind, front]
    named = [about(o, scene) for o in options]
    scores = np.array([1.0, 0.0])
    assert planner.decide("arrange the blocks in a line by the tray", options, scores, named, set()).help is not None
    assert planner.decide("arrange the blocks in a line behind the tray", options, scores, named, set()).help is None
    for words in ("arrange the blocks in a line on the near side of the tray", "line them up between me and the tray"):
        assert planner.decide(words, options, scores, named, set()).help is None, words
    rows = [_option(f"put the {a}, the {b} and the {c} in a row from left to right", (a, b, c))
            for a, b, c in (("teal block", "pink block", "gray block"), ("gray block", "pink block", "teal block"))]
    named = [about(o, scene) for o in rows]
    assert planner.decide("line the blocks up in the usual order", rows, scores, named, set()).help is not None
    # Naming none of the blocks leaves the order open as well (the task's judge needs one order) ...
    assert planner.decide("line the blocks up", rows, scores, named, set()).help is not None
    # ... naming one of them gives the model something to weigh.
    assert planner.decide("line the blocks up from the teal one", rows, scores, named, {"teal block"}).help is None
    # Pairs of objects the words leave open (a block and its bowl) stand in for each other.
    bowls = _scene(("red block", 0.4, 0.2), ("red bowl", 0.6, 0.2), ("blue block", 0.4, -0.2), ("blue bowl", 0.6, -0.2))
    pairs = [_option(f"put only the {c} block in the bowl of its colour", (f"{c} block", f"{c} bowl")) for c in
             ("red", "blue")]
    named = [about(o, bowls) for o in pairs]
    assert planner.decide("put the block in its bowl", pairs, scores, named, set()).help is not None


def test_an_object_the_words_warn_about_is_kept_clear_of():
    scene = _scene(("cyan block", 0.4, 0.2), ("blue bowl", 0.6, 0.0), ("glass vase", 0.5, -0.2))
    bowl = _option("put the cyan block in the blue bowl", ("cyan block", "blue bowl"))
    vase = _option("put the cyan block on the glass vase", ("cyan block", "glass vase"))
    assert _misses("take the cyan block to the blue bowl; mind the glass vase beside it", [bowl, vase],
                   scene).tolist() == [0, 2]
    assert _misses("don't set the cyan block on the glass vase, the blue bowl is for it", [bowl, vase],
                   scene).tolist() == [0, 2]
    # Without a warning the vase is what the words ask for (and the bowl goal involves a bowl they never mention).
    assert _misses("set the cyan block on the glass vase", [bowl, vase], scene).tolist() == [2, 0]


def test_a_zone_to_pass_through_is_not_the_destination():
    scene = _scene(("red zone", 0.4, 0.2), ("blue zone", 0.5, 0.0), ("green zone", 0.6, -0.2))
    assert stated_roles("take the tower off the red zone, through the green zone", scene) == {("green zone", "via")}
    to_blue = _option("move the tower from the red zone to the blue zone", ("red zone", "blue zone"),
                      (("at", "green zone", "via"),))
    to_green = _option("move the tower from the red zone to the green zone", ("red zone", "green zone"),
                       (("at", "blue zone", "via"),))
    assert _misses("shift the tower from the red zone, using the green zone", [to_blue, to_green],
                   scene).tolist() == [1, 1]  # no destination said: one zone too many, or green not passed through
    assert _misses("shift the tower from the red zone to the blue zone, using the green zone", [to_blue, to_green],
                   scene).tolist() == [0, 1]


def test_a_goal_naming_the_whole_group_the_words_refer_to_is_not_charged():
    scene = _scene(("red block 1", 0.4, 0.1), ("blue block 1", 0.4, -0.1), ("red zone", 0.6, 0.2),
                   ("blue zone", 0.6, -0.2))
    both = _option("move the red blocks to the red zone and the blue blocks to the blue zone",
                   ("red block 1", "blue block 1", "red zone", "blue zone"))
    red = _option("move the red blocks to the red zone", ("red block 1", "red zone"))
    assert _misses("split the heap by colour between the zones", [both, red], scene).tolist() == [0, 1]


def test_it_after_on_refers_back_and_places_go_to_the_object_named_before_them():
    assert stated_relations("the gray block first, with the teal block sitting on it", BLOCKS) == {
        ("on", "teal block", "gray block")}
    assert stated_roles("set the pink block in the centre with the teal block on its right", BLOCKS) == {
        ("pink block", "middle"), ("teal block", "right")}


def test_staying_away_from_an_object_cautions_it():
    from fmrobot.planning.grounding import cautioned_labels

    scene = _scene(("cyan block", 0.4, 0.2), ("blue bowl", 0.6, 0.0), ("glass vase", 0.5, -0.2))
    assert cautioned_labels("bring the cyan block to the blue bowl and stay away from the glass vase", scene) == {
        "glass vase"}


# Two bowls and a tray beside BLOCKS' blocks, placed so that each positional phrase has one clear answer.
ROOM = _scene(("teal block", 0.40, 0.20), ("pink block", 0.55, 0.00), ("gray block", 0.70, -0.20),
              ("red bowl", 0.45, -0.10), ("blue bowl", 0.75, 0.25), ("tray", 0.62, 0.10))


def test_positional_phrases_and_beside_it_single_out_one_object():
    assert mentioned_labels("fetch the block at the rear and drop it in the red bowl", ROOM) == {
        "gray block", "red bowl"}
    assert mentioned_labels("place the block in front inside the blue bowl", ROOM) == {"teal block", "blue bowl"}
    assert mentioned_labels("the left-hand block belongs in the red bowl", ROOM) == {"teal block", "red bowl"}
    # "beside it": the bowl closest to the block just singled out (teal), not to the robot.
    assert mentioned_labels("take the block nearest you and put it in the bowl beside it", ROOM) == {
        "teal block", "red bowl"}
    # A relation to another object, or a place in a row, is no reference.
    assert mentioned_labels("set the pink block at the back of the blue bowl", ROOM) == {"pink block", "blue bowl"}
    assert mentioned_labels("the teal block farthest left, the gray block farthest right", ROOM) == {
        "teal block", "gray block"}


def test_a_plural_restricted_to_one_side_of_an_object_means_those_objects():
    assert side_groups(word_list("pack the blocks which sit to the right of the tray"), ROOM) == {
        2: {"pink block", "gray block"}}
    assert side_groups(word_list("only the blocks closer to you than the tray"), ROOM) == {
        2: {"teal block", "pink block"}}
    assert side_groups(word_list("put the blocks sitting on its left-hand side into the tray"), ROOM) == {
        2: {"teal block"}}
    # Where the blocks go, not which ones: no group.
    assert side_groups(word_list("line up the blocks behind the tray"), ROOM) == {}
    assert reference_counts("store the blocks that are behind the tray", ROOM)["block"] == 0.0
    # A colour in an earlier clause does not colour the plural: "the blocks" are all of them.
    assert math.isinf(reference_counts("apart from the teal one, the blocks go in the tray", ROOM)["block"])


def test_leftovers_no_block_and_anything_quantify_and_leaving_the_rest_does_not():
    assert quantified_kinds("drop the pink block in first and then whatever is left", ROOM) == {"block"}
    assert quantified_kinds("no block should stay outside the tray", ROOM) == {"block"}
    assert quantified_kinds("anything not teal goes in the tray", ROOM) == {"block", "bowl", "tray"}
    assert quantified_kinds("store the pink block and leave the rest where they are", ROOM) == set()
    assert negated_labels("store the pink block and keep the rest where they are", {"pink block"},
                          {"pink block"}) == set()
    assert negated_labels("store all but the pink block", {"pink block"}, {"pink block"}) == {"pink block"}


def test_more_words_for_places_in_a_tower_or_row():
    assert stated_roles("the gray block goes highest, sitting on the pink block, with the teal block below them",
                        ROOM) == {("gray block", "top"), ("teal block", "bottom")}
    assert stated_roles("take the teal block as the foundation, put the pink block above it and cap it with the "
                        "gray block", ROOM) == {("teal block", "bottom"), ("gray block", "top")}
    assert stated_relations("put the pink block above it", ROOM) == set()
    assert ("on", "pink block", "teal block") in stated_relations("teal block first, the pink block above it", ROOM)
    assert ("pink block", "middle") in stated_roles("teal block left, gray block right, the pink block between them",
                                                    ROOM)


def test_a_goal_on_the_other_hand_than_the_words_name_is_charged():
    left = _option("put the pink block to the left of the gray block", ("pink block", "gray block"))
    right = _option("put the pink block to the right of the gray block", ("pink block", "gray block"))
    assert _misses("set the pink block down just right of the gray block", [left, right]).tolist() == [1, 0]


def test_a_goal_on_another_side_than_the_far_or_near_side_the_words_name_is_charged():
    sides = [_option(f"put the pink block {words} the gray block", ("pink block", "gray block"))
             for words in ("to the left of", "behind", "in front of")]
    assert _misses("set the pink block on the far side of the gray block", sides).tolist() == [1, 0, 1]
    assert _misses("the pink block goes on the near side of the gray block", sides).tolist() == [1, 1, 0]
    assert _misses("the pink block just past the gray block, on the side away from you", sides).tolist() == [1, 0, 1]
    # "closer" alone names no side: no side is charged more than another.
    assert len(set(_misses("put the pink block closer to the gray block", sides).tolist())) == 1


def test_some_of_the_blocks_means_that_many_and_leaves_which_ones_open():
    assert reference_counts("pop one of the blocks into the tray", BLOCKS)["block"] == 1.0
    assert reference_counts("put a couple of the blocks in the tray", BLOCKS)["block"] == 2.0
    assert reference_counts("put the blocks in the tray", BLOCKS)["block"] == math.inf
    every = _option("put every block in the tray", ("teal block", "pink block", "gray block", "tray"))
    singles = [_option(f"put the {b} in the tray", (b, "tray")) for b in ("teal block", "pink block")]
    assert _misses("pop one of the blocks into the tray", [every, *singles]).tolist() == [2, 0, 0]
    planner = LlmGoalPlanner(LlmGoalConfig(), llm=None)
    named = [about(o, BLOCKS) for o in singles]
    assert planner.decide("pop one of the blocks into the tray", singles, np.array([1.0, 0.0]), named,
                          {"tray"}).help is not None


def test_the_other_two_are_all_the_rest_and_all_of_its_blocks_are_not_every_block():
    assert quantified_kinds("put the teal block on top of a tower made of the other two", BLOCKS) == {"block"}
    assert quantified_kinds("make sure the tray gets all of its blocks", BLOCKS) == set()
    assert quantified_kinds("make sure the tray gets all the blocks", BLOCKS) == {"block"}


def test_on_the_table_is_a_towers_base_and_on_top_before_and_is_a_place_not_a_relation():
    words = "start with the teal block on the table, pop the pink block onto it, then the gray block"
    assert stated_relations(words, BLOCKS) == {("on", "pink block", "teal block")}
    assert ("teal block", "bottom") in stated_roles(words, BLOCKS)
    assert stated_roles("leave the teal block on the table and stack the rest", BLOCKS) == set()
    words = "a tower with the gray block on top and the teal block as its base"
    assert stated_relations(words, BLOCKS) == set()
    assert stated_roles(words, BLOCKS) == {("gray block", "top"), ("teal block", "bottom")}
    assert stated_relations("the gray block on top of the teal block", BLOCKS) == {("on", "gray block", "teal block")}


def test_orders_that_differ_only_in_objects_the_words_do_not_name_are_asked():
    planner = LlmGoalPlanner(LlmGoalConfig(), llm=None)
    towers = [_tower("pink block", "gray block", "teal block"), _tower("gray block", "pink block", "teal block")]
    named = [about(o, BLOCKS) for o in towers]
    scores = np.array([1.0, 0.0])
    assert planner.decide("put the teal block on top of a tower made of the other two", towers, scores, named,
                          {"teal block"}).help is not None
    # When the words name an object the two goals place differently, they are the model's to weigh.
    assert planner.decide("the teal block on top, the pink block under it", towers, scores, named,
                          {"teal block", "pink block"}).help is None


def test_further_left_picks_the_more_left_of_a_kind():
    from fmrobot.planning.grounding import spatial_spots

    bowls = _scene(("brown bowl", 0.5, 0.08), ("yellow bowl", 0.45, -0.13), ("gray block", 0.6, -0.07))
    assert spatial_spots(word_list("put it into whichever bowl is further left"), bowls) == [(6, "brown bowl")]


def test_words_for_a_precious_object_warn_about_it():
    scene = _scene(("cyan block", 0.4, 0.2), ("blue bowl", 0.6, 0.0), ("glass vase", 0.5, -0.2))
    bowl = _option("put the cyan block in the blue bowl", ("cyan block", "blue bowl"))
    vase = _option("put the cyan block on the glass vase", ("cyan block", "glass vase"))
    assert _misses("drop the cyan block into the blue bowl. the glass vase is an antique, so be gentle around it",
                   [bowl, vase], scene).tolist() == [0, 2]


def test_a_goal_involving_a_kind_the_words_never_mention_is_charged_where_another_goal_is_not():
    row = _option("put the teal block, the pink block and the gray block in a row from left to right",
                  ("teal block", "pink block", "gray block"))
    beside = _option("line up the blocks behind the tray", ("teal block", "pink block", "gray block", "tray"))
    words = "a line of blocks with the teal block on the far left and the gray block on the far right"
    assert _misses(words, [row, beside]).tolist() == [0, 1]
    assert _misses("line the blocks up by the tray", [row, beside]).tolist()[1] == 0


ROW = _scene(("red block", 0.40, 0.30), ("blue block", 0.45, 0.10), ("green block", 0.50, -0.10),
             ("cyan block", 0.55, -0.30), ("tray", 0.45, 0.45))


def test_a_number_before_a_positional_word_picks_that_many():
    # The tray is at y=0.45: red (0.15 away) and blue (0.35) are nearest it, well ahead of green (0.55).
    assert mentioned_labels("put the two blocks nearest the tray into it", ROW) == {"red block", "blue block", "tray"}
    assert mentioned_labels("pack the two leftmost blocks", ROW) == {"red block", "blue block"}
    assert mentioned_labels("pack the three blocks on the right", ROW) == {"blue block", "green block", "cyan block"}
    # A number that counts the group a positional word then picks from is not how many it picks.
    assert mentioned_labels("of the two blocks, the leftmost goes in the tray", ROW) == {"red block", "tray"}
    # Those two are all the blocks the words mean; "those two blocks" without them is two, not every block.
    assert reference_counts("put the two blocks nearest the tray into it", ROW)["block"] == 0
    assert reference_counts("could you pack those two blocks into the tray?", ROW)["block"] == 2


def test_everyday_nouns_for_the_scenes_kinds_are_restated_as_its_own():
    from fmrobot.planning.grounding import ground_nouns

    zones = _scene(("red block", 0.4, 0.1), ("red zone", 0.5, 0.2), ("tray", 0.5, -0.2))
    assert ground_nouns("Load all of the Cubes onto the red square.", zones) == \
        "Load all of the blocks onto the red zone."
    # Not a shape word before a noun, nor a manner ("square in the middle"), nor a kind the scene lacks.
    assert ground_nouns("the square block goes square in the middle of the dish", zones) == \
        "the square block goes square in the middle of the dish"
    assert quantified_kinds(ground_nouns("please load all of the cubes into the tray", zones), zones) == {"block"}


def test_right_most_with_a_hyphen_is_one_positional_word():
    assert word_list("the right-most block, the left most one") == ["the", "rightmost", "block", "the", "leftmost",
                                                                     "one"]
    assert mentioned_labels("move the right-most of the three blocks into the tray", ROW) == {"cyan block", "tray"}


def test_the_other_of_two_objects_is_the_one_not_named():
    bowls = _scene(("gray block", 0.40, -0.05), ("green block", 0.42, -0.14), ("brown block", 0.44, 0.21),
                   ("yellow bowl", 0.53, 0.03), ("pink bowl", 0.56, -0.16))
    # The yellow bowl only says which block; "the other bowl" is the pink one, and not the yellow one.
    said = "grab the block sitting closest to the yellow bowl and put it in the other bowl"
    assert mentioned_labels(said, bowls) == {"gray block", "pink bowl"}
    # Of three bowls, "the other bowl" does not say which.
    three = _scene(*[(o.label, *o.position[:2]) for o in bowls.objects], ("red bowl", 0.6, 0.2))
    assert "pink bowl" not in mentioned_labels(said, three)
    # A zone the words give something of its own is not set apart by "the other zone", and "other" names
    # the zone there; it excludes only in "other than".
    from fmrobot.planning.grounding import negation_scopes

    piles = _scene(("purple block 1", 0.57, 0.0), ("yellow block 1", 0.40, -0.08), ("purple zone", 0.52, 0.2),
                   ("yellow zone", 0.48, -0.22))
    said = "the zone on your right gets the yellow blocks, the other zone the purple ones"
    assert {"yellow zone", "purple zone"} <= mentioned_labels(said, piles)
    assert negation_scopes(said) == []
    assert negation_scopes("every block other than the red one") == [range(2, 7)]


def test_what_can_stay_is_left_out_and_the_other_blocks_left_alone_are_not_meant():
    from fmrobot.planning.grounding import negation_scopes

    piles = _scene(("green block 1", 0.52, -0.07), ("green block 2", 0.58, 0.08), ("blue block 1", 0.55, 0.01),
                   ("blue block 2", 0.44, 0.06), ("green zone", 0.48, 0.21), ("blue zone", 0.48, -0.22))
    said = "the green blocks can stay in the pile for now; sort out the rest"
    assert negation_scopes(said) == [range(0, 5)]
    # What follows "stays" is where it stays, not more to leave alone.
    assert negation_scopes("the one on the right stays out of the bowls") == [range(0, 6)]
    blue_only = _option("move the blue blocks to the blue zone", ("blue block 1", "blue zone", "blue block 2"),
                        excluded=("green block 1", "green block 2"))
    every = _option("move the blue blocks to the blue zone and the green blocks to the green zone",
                    ("blue block 1", "blue zone", "blue block 2", "green block 1", "green zone", "green block 2"))
    assert misses(said, [blue_only, every], piles).tolist() == [0, 4]
    assert reference_counts("only sort the block that's farthest from you, and leave the other blocks where they are",
                            ROW)["block"] == 0
    # The place an exclusion names is not what it leaves alone.
    sorting = _scene(("purple block", 0.58, -0.05), ("purple bowl", 0.39, -0.16), ("red block", 0.61, 0.22),
                     ("red bowl", 0.58, -0.2), ("yellow block", 0.4, 0.24), ("yellow bowl", 0.48, 0.08))
    assert reference_counts("sort the blocks by colour, but leave the yellow one out of the bowls",
                            sorting)["bowl"] == math.inf


def test_a_list_before_counting_up_from_the_table_starts_at_the_bottom():
    assert stated_roles("a tower that goes red block then blue block then cyan block counting up from the table",
                        ROW) == {("red block", "bottom"), ("blue block", "middle"), ("cyan block", "top")}


def test_a_number_of_a_kind_that_the_scene_has_no_more_of_means_all_of_them():
    assert reference_counts("tidy the pile away; the four blocks are colour-coded", ROW)["block"] == math.inf
    assert reference_counts("pack three blocks", ROW)["block"] == 3
