import numpy as np
import pybullet as pb
import pytest

from sims.tasks.separate_piles import SeparatePiles, SeparatePilesConfig
from sims.world import TABLE_TOP_Z


@pytest.fixture(scope="module")
def piles_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="separate_piles")
    yield env
    env.close()


def _put(env, label: str, x: float, y: float) -> None:
    body = env.world.body(label)
    pb.resetBasePositionAndOrientation(body.body_id, (x, y, TABLE_TOP_Z + body.height / 2 + 0.002), (0, 0, 0, 1),
                                       physicsClientId=env.world.client)


def test_a_two_colour_pile_between_two_zones_of_those_colours(piles_env):
    for seed in range(5):
        episode, _ = piles_env.reset_episode(seed)
        goal = piles_env._goal
        world = piles_env.world
        zones = {b.color: label for label, b in world.bodies.items() if b.kind == "zone"}
        blocks = {label: b.color for label, b in world.bodies.items() if b.kind == "block"}
        assert len(zones) == 2 and len(blocks) == 4 and set(blocks.values()) == set(zones)
        assert sorted(blocks) == sorted(f"{c} block {i}" for c in zones for i in (1, 2))  # unique labels
        assert dict(goal.moves) == {label: zones[color] for label, color in blocks.items()}
        # The pile lies between the zones (one on each side of it), away from both.
        ys = {label: world.position(label)[1] for label in [*zones.values(), *blocks]}
        low, high = sorted(ys[z] for z in zones.values())
        assert all(low < ys[b] < high for b in blocks)
        for color in zones:
            assert color in episode.instruction or "its colour" in episode.instruction
        assert [s.skill for s in episode.oracle_plan.steps] == ["pick", "place"] * 4
        assert set(world.bodies) <= set(episode.task.vocabulary)


def test_success_needs_every_block_in_the_zone_of_its_colour(piles_env):
    env = piles_env
    env.reset_episode(2)
    goal = env._goal
    assert env.evaluate()["success"] is False and not env.evaluate()["all_separated"]
    offsets = iter([(-0.04, -0.04), (0.04, 0.04)] * 2)
    for block, zone in goal.moves:
        x, y, _ = env.world.position(zone)
        dx, dy = next(offsets)
        _put(env, block, x + dx, y + dy)
    env.world.step(240)
    predicates = env.evaluate()
    assert predicates["all_separated"] and predicates["success"], predicates
    # Swap one pair: each is in a zone, but the wrong one.
    (first, first_zone), (second, second_zone) = goal.moves[0], goal.moves[1]
    a, b = env.world.position(first), env.world.position(second)
    _put(env, first, b[0], b[1])
    _put(env, second, a[0], a[1])
    env.world.step(240)
    predicates = env.evaluate()
    assert first_zone != second_zone  # the goal's order alternates colours
    assert not predicates[f"{first} in {first_zone}"] and not predicates[f"{second} in {second_zone}"]
    assert not predicates["success"]


def test_bad_configs_fail_with_what_was_expected():
    with pytest.raises(ValueError, match="do not fit a 0.1 m pile"):
        SeparatePilesConfig(per_color=3, pile_size=0.1)
    with pytest.raises(ValueError, match="beyond the workspace"):
        SeparatePilesConfig(zone_size=0.2, pile_size=0.3)
    with pytest.raises(ValueError, match="unknown colours"):
        SeparatePilesConfig(colors=("red", "mauve"))
    spec = SeparatePiles(SeparatePilesConfig(per_color=3)).spec()
    assert "red block 3" in spec.vocabulary and "red zone" in spec.vocabulary
    assert np.all([t.plan == () for t in spec.templates])


def test_a_goal_for_one_colour_leaves_the_other_colours_blocks_out():
    from tests.planning.goal_reading import scene

    table = scene(("green block 1", 0.52, -0.07), ("green block 2", 0.58, 0.08), ("blue block 1", 0.55, 0.01),
                  ("blue block 2", 0.44, 0.06), ("green zone", 0.48, 0.21), ("blue zone", 0.48, -0.22))
    options = {o.description: o for o in SeparatePiles(SeparatePilesConfig()).goal_options(table)}
    assert set(options["move the blue blocks to the blue zone"].excluded) == {"green block 1", "green block 2"}
    assert options["move the green blocks to the green zone and the blue blocks to the blue zone"].excluded == ()
