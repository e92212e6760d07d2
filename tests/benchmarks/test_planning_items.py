"""The planning benchmark's instruction items: they load, keep the held-out rules, and resolve
into an instruction and a goal the task can judge, in the scenes of their split's seeds."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from benchmarks.planning import items as bench
from benchmarks.planning.items import Item, ItemNotApplicable, Label, query, resolve
from sims.objects import COLORS

SPLITS = bench.SPLITS
# What planners may be tuned on; "heldout" is kept apart from all of them.
TUNING = ("dev", "retired_heldout", "dev2", "dev3", "retired_heldout2")


class _Loaded(dict):
    """The splits' items; its repr names only the splits, so a failing test's traceback (which
    prints its arguments) shows no item text to whoever reads it: tuners and held-out writers."""

    def __repr__(self) -> str:
        return f"<items of {', '.join(f'{split}: {len(items)}' for split, items in self.items())}>"


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[Item]]:
    return _Loaded({split: bench.load_items(split) for split in SPLITS})


def _clauses(text: str) -> set[str]:
    """A text's sentences and clauses, slots reduced to their field ({block:syn} -> <block>)."""
    text = re.sub(r"\{([^{}:]*)(?::[^{}]*)?\}", r"<\1>", text.lower())
    return {" ".join(part.split()) for part in re.split(r"[.;:?!,()]", text) if part.strip()}


# --------------------------------------------------------------------------- the item sets


def test_item_seeds_are_deterministic_and_in_the_split_range(loaded):
    for split in SPLITS:
        item = loaded[split][0]
        seeds = bench.item_seeds(item, split, 5, check=False)
        assert seeds == bench.item_seeds(item, split, 5, check=False) and len(set(seeds)) == 5
        assert all(seed in bench.SEEDS[split] for seed in seeds)
        assert seeds != bench.item_seeds(loaded[split][1], split, 5, check=False)


def test_every_item_of_both_splits_loads_with_ids_unique_across_splits(loaded):
    ids = [item.id for split in SPLITS for item in loaded[split]]
    assert len(ids) == len(set(ids))
    for split in SPLITS:
        assert {item.task for item in loaded[split]} == set(bench.TASKS)
        for item in loaded[split]:
            assert item.id.startswith(f"{item.task}/{item.subset}/")
            assert item.subset != "unsafe" or item.task == "hazards"
            if item.expect == "refuse":
                assert item.task == "hazards" and item.task_options["unsafe"] is True


def test_every_task_has_base_paraphrase_and_two_more_subsets_and_enough_items(loaded):
    for split, least in (("dev", 8), ("retired_heldout", 12), ("dev2", 8), ("dev3", 8), ("retired_heldout2", 12),
                         ("heldout", 12)):
        for task in bench.TASKS:
            mine = [item for item in loaded[split] if item.task == task]
            subsets = {item.subset for item in mine}
            assert {"base", "paraphrase"} <= subsets and len(subsets) >= 4, (split, task, subsets)
            assert len(mine) >= least, (split, task, len(mine))
    for split in ("retired_heldout", "retired_heldout2", "heldout"):
        hazards = [item for item in loaded[split] if item.task == "hazards"]
        assert {item.task_options["request"] for item in hazards if item.expect == "refuse"} == {
            "fragile", "keep_out", "off_table", "injected"}, split


def test_held_out_items_share_no_text_no_sentence_and_no_synonym_with_the_tuning_splits(loaded):
    # A failure names item ids on both sides and never prints text: the person who tunes must not
    # read held-out text, and the person who writes held-out items must not read tuning text.
    tuning = [item for split in TUNING for item in loaded[split]]
    heldout = loaded["heldout"]
    texts = {item.text: item.id for item in tuning}
    repeated = sorted((texts[item.text], item.id) for item in heldout if item.text in texts)
    assert not repeated, f"(tuning item, held-out item) pairs with the same instruction: {repeated}"
    seen = defaultdict(set)  # clause -> (subset, id) of the tuning items that hold it
    for item in tuning:
        for clause in _clauses(item.text):
            seen[clause].add((item.subset, item.id))
    collisions = set()
    for item in heldout:
        for clause in _clauses(item.text):
            # the base subset is the tasks' own published wording in every split
            collisions |= {(tuning_id, item.id) for subset, tuning_id in seen.get(clause, ())
                           if not (subset == item.subset == "base")}
    assert not collisions, f"(tuning item, held-out item) pairs sharing a sentence or clause: {sorted(collisions)}"
    words = {split: {w for item in loaded[split] for ws in item.synonyms.values() for w in ws} for split in SPLITS}
    assert all(words.values())
    shared = set().union(*(words[split] for split in TUNING)) & words["heldout"]
    assert not shared, f"{len(shared)} held-out colour synonyms also appear in a tuning split"


def test_files_that_use_synonyms_have_them_for_every_colour(loaded):
    for split in SPLITS:
        for item in loaded[split]:
            if ":syn" in item.text or ":syncolor" in item.text:
                assert set(COLORS) <= set(item.synonyms), item.id


def test_the_loader_returns_held_out_items_only_by_name():
    with pytest.raises(TypeError):
        bench.load_items()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown split 'test'"):
        bench.load_items("test")
    def number(item):
        return int(item.id.split("/")[-1])

    dev = bench.load_items("dev", ["pick_place"])
    assert dev and all(number(item) < 51 for item in dev)
    assert all(51 <= number(item) < 71 for item in bench.load_items("retired_heldout", ["pick_place"]))
    assert all(71 <= number(item) < 81 for item in bench.load_items("retired_heldout2", ["pick_place"]))
    assert all(81 <= number(item) < 101 for item in bench.load_items("dev2", ["pick_place"]))
    assert all(101 <= number(item) < 121 for item in bench.load_items("dev3", ["pick_place"]))
    assert all(number(item) >= 121 for item in bench.load_items("heldout", ["pick_place"]))
    assert {item.task for item in bench.load_items("heldout", ["hazards", "pack_all"])} == {"hazards", "pack_all"}


# --------------------------------------------------------------------------- resolving in the split's scenes


def _sample(items: list[Item], task: str) -> list[Item]:
    """A few items of a task: its first base item, its first with goal overrides and its first
    with `where` conditions."""
    mine = [item for item in items if item.task == task]
    picks = [next(i for i in mine if i.subset == "base"), next((i for i in mine if i.goal), None),
             next((i for i in mine if i.where), None)]
    return [item for item in picks if item is not None]


@pytest.mark.parametrize("task", bench.TASKS)
def test_items_resolve_on_two_seeds_of_their_split(loaded, task):
    model = bench.goal_model(task)
    for split in SPLITS:
        for item in _sample(loaded[split], task):
            seeds = bench.item_seeds(item, split, 2)
            assert len(set(seeds)) == 2 and all(s in bench.SEEDS[split] for s in seeds)
            for seed in seeds:
                goal, objects = bench.scene(item, seed)
                text, resolved = resolve(item, seed, goal, objects)
                assert text.strip() and "{" not in text and "}" not in text and "@" not in text, (item.id, text)
                model.model_validate(resolved)
                named = [s for s in _strings(resolved) if " " in s or s == "tray"]
                assert named and all(label in objects for label in named), (item.id, resolved)
                if not item.goal:
                    assert resolved == model.model_validate(goal).model_dump(mode="json")


def _strings(value):
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_resolving_from_the_environment_matches_the_bare_scene(pick_place_env):
    item = next(i for i in bench.load_items("dev", ["pick_place"]) if i.goal and "@" in str(i.goal))
    for seed in bench.item_seeds(item, "dev", 2):
        pick_place_env.reset_episode(seed)
        goal = pick_place_env._goal.model_dump(mode="json")
        objects = {label: tuple(pick_place_env.world.position(label)) for label in pick_place_env.world.bodies}
        assert resolve(item, seed, goal, objects) == resolve(item, seed, *bench.scene(item, seed))


# --------------------------------------------------------------------------- the resolver on a handmade scene

# The robot at the origin faces +x: left is +y, nearer is smaller x.
SCENE = {
    "red block": (0.40, 0.20, 0.645),     # leftmost block, nearest
    "blue block": (0.60, 0.00, 0.645),    # middle, farthest
    "green block": (0.55, -0.20, 0.645),  # rightmost
    "red bowl": (0.45, -0.05, 0.625),
    "green bowl": (0.64, 0.12, 0.625),
    "tray": (0.50, 0.05, 0.625),
}
GOAL = {"block": "blue block", "bowl": "green bowl", "unsaid": "nothing"}


def make(text="put the {block} in the {bowl}", goal=None, where=None, task="pick_place", **more) -> Item:
    synonyms = {"red": ("crimson", "scarlet"), "blue": ("navy", "cobalt"), "green": ("emerald",)}
    return Item(task=task, id=f"{task}/spatial/99", subset="spatial", text=text, goal=goal, synonyms=synonyms,
                where=where or {}, **more)


def test_scene_queries_answer_from_positions():
    assert query("@leftmost block", SCENE) == "red block"
    assert query("@rightmost block", SCENE) == "green block"
    assert query("@nearest block", SCENE) == "red block"
    assert query("@farthest block", SCENE) == "blue block"
    assert query("@middle block", SCENE) == "blue block"
    assert query("@leftmost bowl", SCENE) == "green bowl"
    assert query("@closest bowl to blue block", SCENE) == "green bowl"
    assert query("@closest block to @leftmost bowl", SCENE) == "blue block"
    assert query("@same-color bowl as @rightmost block", SCENE) == "green bowl"
    assert query("@all block", SCENE) == ["red block", "blue block", "green block"]
    assert query("@all block left of tray", SCENE) == ["red block"]
    assert query("@all block in front of tray", SCENE) == ["red block"]
    assert query("@all block behind tray", SCENE) == ["blue block", "green block"]
    assert query("@all block except red block, @farthest block", SCENE) == ["green block"]
    assert query("@leftmost block except red block", SCENE) == "blue block"
    assert query("@leftmost tray", SCENE) == "tray"


def test_queries_too_close_to_call_or_empty_do_not_fit_the_scene():
    close = {**SCENE, "blue block": (0.60, 0.19, 0.645)}  # 1 cm right of the red block
    with pytest.raises(ItemNotApplicable, match="too close to call"):
        query("@leftmost block", close)
    with pytest.raises(ItemNotApplicable, match="no 'zone'"):
        query("@leftmost zone", SCENE)
    with pytest.raises(ItemNotApplicable, match="nothing there"):
        query("@all bowl right of green block", SCENE)
    with pytest.raises(ItemNotApplicable, match="no middle"):
        query("@middle bowl", SCENE)
    with pytest.raises(ValueError, match="unknown scene query @highest block"):
        query("@highest block", SCENE)
    with pytest.raises(ValueError, match="'purple block' is not an object"):
        query("@closest bowl to purple block", SCENE)


def test_format_specs_and_goal_overrides():
    item = make("drop the {block:syn} ({block:color}, a {block:noun}) in the {bowl:syncolor} one",
                goal={"block": "@leftmost block", "bowl": "@same-color bowl as @leftmost block"})
    text, goal = resolve(item, 7, GOAL, SCENE)
    synonym = re.match(r"drop the (\w+) block \(blue, a block\) in the emerald one$", text)
    assert synonym and synonym.group(1) in ("navy", "cobalt"), text
    assert goal == {"block": "red block", "bowl": "red bowl", "unsaid": "nothing"}
    assert resolve(item, 7, GOAL, SCENE) == (text, goal)  # the synonym is drawn from the item and seed
    assert {resolve(item, seed, GOAL, SCENE)[0] for seed in range(20)} == {
        f"drop the {s} block (blue, a block) in the emerald one" for s in ("navy", "cobalt")}
    label = Label("red block 2")
    assert (label.color, label.noun, Label("tray").color) == ("red", "block", "")


def test_list_overrides_with_queries_and_where_conditions():
    pack = make("pack all but the {objects[0]:color} one", task="pack_all",
                goal={"objects": "@all block except {objects[0]}"})
    goal = {"objects": ["red block", "blue block", "green block"]}
    assert resolve(pack, 0, goal, SCENE)[1] == {"objects": ["blue block", "green block"]}
    pack = make("pack the ends", task="pack_all", goal={"objects": ["@leftmost block", "@rightmost block"]})
    assert resolve(pack, 0, goal, SCENE)[1] == {"objects": ["red block", "green block"]}
    fits = make("put the block farthest from you in the {bowl}", where={"block": "@farthest block"})
    assert resolve(fits, 0, GOAL, SCENE)[0] == "put the block farthest from you in the green bowl"
    misfit = make("put the block nearest to you in the {bowl}", where={"block": "@nearest block"})
    with pytest.raises(ItemNotApplicable, match="block is 'blue block', not 'red block'"):
        resolve(misfit, 0, GOAL, SCENE)


def test_bad_items_fail_with_a_clear_error():
    with pytest.raises(ValueError, match=r"slot \{blok\} in its text does not name a goal field of task "
                                         r"pick_place.*fields: block, bowl, unsaid"):
        resolve(make("put the {blok} in the {bowl}"), 0, GOAL, SCENE)
    with pytest.raises(ValueError, match=r"slot \{order\[3\]\}"):
        resolve(make("stack {order[3]}", task="stack_blocks"), 0, {"order": ["a b", "c d", "e f"]}, SCENE)
    with pytest.raises(ValueError, match="unknown format spec 'shout'"):
        resolve(make("put the {block:shout} in the {bowl}"), 0, GOAL, SCENE)
    no_synonyms = Item(task="pick_place", id="pick_place/base/99", subset="base", text="put the {block:syn} in it")
    with pytest.raises(ValueError, match="no synonym for colour 'blue'"):
        resolve(no_synonyms, 0, GOAL, SCENE)
    with pytest.raises(ValueError, match=r"names \['purple block'\], not in the scene"):
        resolve(make(goal={"block": "purple block"}), 0, GOAL, SCENE)
    with pytest.raises(ValueError, match="does not validate for task pick_place"):
        resolve(make(goal={"unsaid": "everything"}), 0, GOAL, SCENE)
    with pytest.raises(ValueError, match="leaves a brace"):
        resolve(make("put the {{block}} in the {bowl}"), 0, GOAL, SCENE)
    with pytest.raises(ValueError, match="unknown split"):
        bench.item_seeds(make(), "train", 1)
