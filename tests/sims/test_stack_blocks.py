import numpy as np
import pybullet as pb
import pytest

from fmrobot.planning.templates import match
from sims.tasks.stack_blocks import HELD_OUT_TEMPLATES, StackBlocks, StackBlocksConfig
from sims.world import TABLE_TOP_Z, World


@pytest.fixture(scope="module")
def stack_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="stack_blocks")
    yield env
    env.close()


def _build(env, order, xy=None, offset=(0.0, 0.0)):
    """Teleport blocks into a tower in `order` (bottom first) over `xy` and let it settle."""
    world = env.world
    x, y = xy if xy is not None else world.position(order[0])[:2]
    z = TABLE_TOP_Z
    for i, label in enumerate(order):
        body = world.body(label)
        z += body.height / 2
        pb.resetBasePositionAndOrientation(body.body_id, (x + i * offset[0], y + i * offset[1], z + 0.001),
                                           (0, 0, 0, 1), physicsClientId=world.client)
        z += body.height / 2 + 0.001
    world.step(480)


def test_success_is_false_at_the_start_and_every_block_is_on_the_table(stack_env):
    for seed in range(3):
        stack_env.reset_episode(seed)
        predicates = stack_env.evaluate()
        order = stack_env._goal.order
        assert len(order) == 3 and len(set(order)) == 3
        assert predicates["success"] is False and predicates["tower_built"] is False
        assert predicates["bottom_on_table"] and predicates["upright"] and predicates["released"]


def test_seen_instructions_match_a_template_whose_plan_is_the_oracle_plan(stack_env):
    spec = stack_env.task.spec()
    for seed in range(8):
        episode, _ = stack_env.reset_episode(seed)
        matched = [(t, match(t, episode.instruction)) for t in spec.templates]
        matched = [(t, slots) for t, slots in matched if slots is not None]
        assert len(matched) == 1, episode.instruction
        template, slots = matched[0]
        assert template.plan_for(**slots) == episode.oracle_plan
        bottom, middle, top = stack_env._goal.order
        assert [s.args.get("object") or s.args.get("target") for s in episode.oracle_plan.steps] == [
            middle, bottom, top, middle]


def test_only_the_named_order_counts(stack_env):
    env = stack_env
    env.reset_episode(4)
    bottom, middle, top = env._goal.order
    _build(env, (bottom, top, middle))  # a neat tower, wrong order
    predicates = env.evaluate()
    assert predicates["upright"] and predicates["tower_at_rest"] and predicates["bottom_on_table"]
    assert not predicates[f"{middle} on {bottom}"] and not predicates["success"]

    env.reset_episode(4)
    _build(env, (bottom, middle, top))
    assert env.evaluate()["success"]

    env.reset_episode(4)
    _build(env, (middle, bottom, top))  # right pairs on top, wrong block at the bottom
    predicates = env.evaluate()
    assert not predicates["success"] and not predicates[f"{middle} on {bottom}"]


def test_blocks_side_by_side_or_overhanging_are_not_a_tower(stack_env):
    env = stack_env
    env.reset_episode(5)
    bottom, middle, top = env._goal.order
    x, y = env.world.position(bottom)[:2]
    for i, label in enumerate((bottom, middle, top)):  # in a row on the table, touching
        pb.resetBasePositionAndOrientation(env.world.body(label).body_id, (x, y + 0.041 * i, TABLE_TOP_Z + 0.0205),
                                           (0, 0, 0, 1), physicsClientId=env.world.client)
    env.world.step(240)
    assert not env.evaluate()["tower_built"]
    env.reset_episode(5)
    _build(env, (bottom, middle, top), offset=(0.0, 0.018))  # each block 45% off the one below
    predicates = env.evaluate()
    assert not predicates["success"], predicates


def test_held_out_phrasings_and_cylinders_at_level_3():
    task = StackBlocks(StackBlocksConfig(level="L3"))
    world = World(renderer="tiny")
    try:
        world.reset()
        instruction, goal = task.setup(world, np.random.default_rng(0))
    finally:
        world.close()
    assert all(label.endswith(" cylinder") for label in goal.order)
    assert not any(match(t, instruction) for t in task.spec().templates)
    colors = [label.split()[0] for label in goal.order]
    assert any(t.format(bottom=goal.order[0], middle=goal.order[1], top=goal.order[2], shape="cylinder",
                        bottom_color=colors[0], middle_color=colors[1], top_color=colors[2]) == instruction
               for t in HELD_OUT_TEMPLATES)


def test_bad_configs_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="need 4 distinct colours, got 3"):
        StackBlocksConfig(colors=("red", "green", "blue"), distractors=1)
    with pytest.raises(ValueError, match="unknown colours"):
        StackBlocksConfig(colors=("red", "green", "chartreuse"))
    with pytest.raises(ValueError, match="5 blocks do not fit"):
        StackBlocksConfig(distractors=2, workspace_x=(0.4, 0.5), workspace_y=(-0.1, 0.1))
    with pytest.raises(ValueError, match="less than or equal to 2"):
        StackBlocksConfig(distractors=3)
    spec = StackBlocks().spec()
    assert spec.skills == ("pick", "place") and "red block" in spec.vocabulary and len(spec.vocabulary) == 10
