import pybullet as pb
import pytest

from sims.tasks.blocks_and_bowls import block_in_bowl
from sims.tasks.swap_blocks import SwapBlocks, SwapBlocksConfig


@pytest.fixture(scope="module")
def swap_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="swap_blocks")
    yield env
    env.close()


def _drop_into(env, block: str, bowl: str) -> None:
    centre = env.world.position(bowl)
    pb.resetBasePositionAndOrientation(env.world.body(block).body_id, (centre[0], centre[1], centre[2] + 0.08),
                                       (0, 0, 0, 1), physicsClientId=env.world.client)


def test_blocks_start_in_two_bowls_and_the_third_is_empty(swap_env):
    for seed in range(4):
        episode, _ = swap_env.reset_episode(seed)
        goal = swap_env._goal
        world = swap_env.world
        assert block_in_bowl(world, goal.first_block, goal.first_bowl)
        assert block_in_bowl(world, goal.second_block, goal.second_bowl)
        assert not any(block_in_bowl(world, b, goal.spare_bowl) for b in (goal.first_block, goal.second_block))
        assert goal.first_bowl in episode.instruction and goal.second_bowl in episode.instruction
        assert goal.spare_bowl not in episode.instruction
        predicates = swap_env.evaluate()
        assert predicates["success"] is False and predicates["blocks_at_rest"] and predicates["released"]


def test_the_oracle_plan_parks_the_first_block_in_the_empty_bowl(swap_env):
    swap_env.reset_episode(1)
    goal = swap_env._goal
    steps = swap_env.episode.oracle_plan.steps
    assert [(s.skill, next(iter(s.args.values()))) for s in steps] == [
        ("pick", goal.first_block), ("place", goal.spare_bowl),
        ("pick", goal.second_block), ("place", goal.first_bowl),
        ("pick", goal.first_block), ("place", goal.second_bowl),
    ]


def test_only_a_full_swap_counts(swap_env):
    env = swap_env
    env.reset_episode(3)
    goal = env._goal
    _drop_into(env, goal.first_block, goal.second_bowl)  # one block over, the other still home
    env.world.step(480)
    predicates = env.evaluate()
    assert predicates[f"{goal.first_block} in {goal.second_bowl}"]
    assert not predicates["swapped"] and not predicates["success"]

    env.reset_episode(3)
    _drop_into(env, goal.first_block, goal.spare_bowl)  # both moved, one to the buffer
    _drop_into(env, goal.second_block, goal.first_bowl)
    env.world.step(480)
    assert not env.evaluate()["success"]

    env.reset_episode(3)
    _drop_into(env, goal.first_block, goal.second_bowl)
    _drop_into(env, goal.second_block, goal.first_bowl)
    env.world.step(480)
    assert env.evaluate()["success"]


def test_bad_configs_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="need 5 distinct colours, got 4"):
        SwapBlocksConfig(colors=("red", "green", "blue", "yellow"))
    with pytest.raises(ValueError, match="leaves the fingers no room"):
        SwapBlocksConfig(block_size=0.06, bowl_radius=0.06)
    with pytest.raises(ValueError, match="unknown colours"):
        SwapBlocksConfig(colors=("red", "green", "blue", "yellow", "chartreuse"))
    spec = SwapBlocks().spec()
    assert "red bowl" in spec.vocabulary and "red block" in spec.vocabulary
    assert all(not t.plan for t in spec.templates)
