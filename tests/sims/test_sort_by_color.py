import numpy as np
import pybullet as pb
import pytest

from sims.tasks.sort_by_color import TEMPLATES, SortByColor, SortByColorConfig


@pytest.fixture(scope="module")
def sort_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="sort_by_color")
    yield env
    env.close()


@pytest.fixture(scope="module")
def distractor_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task=SortByColor(SortByColorConfig(num_bowls=3, num_blocks=2, distractors=2)))
    yield env
    env.close()


def _colour(label: str) -> str:
    return label.split()[0]


def _drop_into(env, block: str, bowl: str) -> None:
    centre = env.world.position(bowl)
    pb.resetBasePositionAndOrientation(env.world.body(block).body_id, (centre[0], centre[1], centre[2] + 0.12),
                                       (0, 0, 0, 1), physicsClientId=env.world.client)


def test_every_block_has_the_bowl_of_its_colour_and_the_plan_visits_each_once(sort_env):
    for seed in range(5):
        episode, _ = sort_env.reset_episode(seed)
        bodies = sort_env.world.bodies
        bowls = {b.color: label for label, b in bodies.items() if b.kind == "bowl"}
        blocks = {b.color: label for label, b in bodies.items() if b.kind == "block"}
        assert len(bowls) == 3 and len(blocks) == 3 and set(blocks) == set(bowls)
        goal = sort_env._goal
        assert {(m.block, m.bowl) for m in goal.moves} == {(blocks[c], bowls[c]) for c in blocks}
        assert goal.distractors == ()
        assert episode.instruction in [t.format(shape="block") for t in TEMPLATES]
        steps = episode.oracle_plan.steps
        assert [s.skill for s in steps] == ["pick", "place"] * 3
        for pick, place in zip(steps[::2], steps[1::2]):
            assert _colour(pick.args["object"]) == _colour(place.args["target"])
        assert sorted(s.args["object"] for s in steps[::2]) == sorted(blocks.values())


def test_distractor_blocks_have_colours_no_bowl_has(distractor_env):
    distractor_env.reset_episode(3)
    bodies = distractor_env.world.bodies
    bowl_colours = {b.color for b in bodies.values() if b.kind == "bowl"}
    goal = distractor_env._goal
    assert len(goal.moves) == 2 and len(goal.distractors) == 2 and len(bowl_colours) == 3
    assert all(bodies[d].color not in bowl_colours for d in goal.distractors)
    assert len(distractor_env.episode.oracle_plan.steps) == 4  # distractors are left alone
    predicates = distractor_env.evaluate()
    assert all(predicates[f"{d} in no bowl"] for d in goal.distractors)


def test_success_is_false_at_the_start(sort_env):
    sort_env.reset_episode(2)
    predicates = sort_env.evaluate()
    goal = sort_env._goal
    assert predicates["success"] is False and predicates["all_sorted"] is False
    assert not any(predicates[f"{m.block} in {m.bowl}"] for m in goal.moves)
    assert predicates["blocks_at_rest"] and predicates["released"]


def test_predicates_hold_once_every_block_rests_in_its_bowl(sort_env):
    env = sort_env
    env.reset_episode(4)
    goal = env._goal
    *first, last = goal.moves
    for move in first:
        _drop_into(env, move.block, move.bowl)
    env.world.step(480)  # two seconds: fall, bounce, come to rest
    predicates = env.evaluate()
    assert all(predicates[f"{m.block} in {m.bowl}"] for m in first)
    assert not predicates[f"{last.block} in {last.bowl}"] and not predicates["success"]
    _drop_into(env, last.block, last.bowl)
    env.world.step(480)
    predicates = env.evaluate()
    assert predicates["all_sorted"] and predicates["blocks_at_rest"] and predicates["success"], predicates


def test_a_block_in_the_wrong_bowl_or_a_distractor_in_any_bowl_fails(sort_env, distractor_env):
    env = sort_env
    env.reset_episode(5)
    first, second, third = env._goal.moves
    _drop_into(env, first.block, second.bowl)
    _drop_into(env, second.block, first.bowl)
    _drop_into(env, third.block, third.bowl)
    env.world.step(480)
    predicates = env.evaluate()
    assert predicates[f"{third.block} in {third.bowl}"]
    assert not predicates[f"{first.block} in {first.bowl}"] and not predicates["success"]

    env = distractor_env
    env.reset_episode(6)
    goal = env._goal
    for move in goal.moves:
        _drop_into(env, move.block, move.bowl)
    env.world.step(480)
    assert env.evaluate()["success"]
    empty_bowl = next(label for label, b in env.world.bodies.items()
                      if b.kind == "bowl" and label not in {m.bowl for m in goal.moves})
    _drop_into(env, goal.distractors[0], empty_bowl)
    env.world.step(480)
    predicates = env.evaluate()
    assert not predicates[f"{goal.distractors[0]} in no bowl"] and not predicates["success"]
    assert predicates["all_sorted"]


def test_config_is_checked_and_the_vocabulary_names_every_colour():
    with pytest.raises(ValueError, match="need as many bowls"):
        SortByColorConfig(num_bowls=2, num_blocks=3)
    with pytest.raises(ValueError, match="distinct colours"):
        SortByColorConfig(num_bowls=3, num_blocks=3, distractors=1, colors=("red", "green", "blue"))
    with pytest.raises(ValueError, match="unknown colours"):
        SortByColorConfig(colors=("red", "chartreuse", "green", "blue"))
    spec = SortByColor().spec()
    assert len(spec.vocabulary) == 20 and "red block" in spec.vocabulary and "red bowl" in spec.vocabulary
    assert spec.skills == ("pick", "place")


def test_four_bowls_fit_the_workspace_and_a_scene_that_cannot_fit_is_a_config_error():
    from sims.world import World

    task = SortByColor(SortByColorConfig(num_bowls=4, num_blocks=4))
    world = World(renderer="tiny")
    try:
        for seed in range(5):
            world.reset()
            task.setup(world, np.random.default_rng(seed))
            assert len(world.bodies) == 8
    finally:
        world.close()
    with pytest.raises(ValueError, match="4 bowls and 7 blocks do not fit"):
        SortByColorConfig(num_bowls=4, num_blocks=4, distractors=3)


def test_layout_restarts_find_room_that_one_greedy_pass_misses():
    from sims.tasks.base import sample_placements

    radii = [0.085] * 3 + [0.045] * 3
    with pytest.raises(ValueError, match="could not place"):
        sample_placements(np.random.default_rng(0), radii, (0.35, 0.68), (-0.26, 0.26), tries=200)
    spots = sample_placements(np.random.default_rng(0), radii, (0.35, 0.68), (-0.26, 0.26), tries=200, restarts=200)
    assert len(spots) == 6
