import numpy as np
import pybullet as pb
import pytest

from sims.tasks.align_line import AlignLine, AlignLineConfig
from sims.world import TABLE_TOP_Z


def _env(modes):
    from sims.env import TabletopEnv

    return TabletopEnv(task=AlignLine(AlignLineConfig(modes=modes)))


@pytest.fixture(scope="module")
def ordered_env():
    env = _env(("ordered",))
    yield env
    env.close()


@pytest.fixture(scope="module")
def behind_env():
    env = _env(("behind",))
    yield env
    env.close()


def _put(env, label: str, x: float, y: float) -> None:
    body = env.world.body(label)
    pb.resetBasePositionAndOrientation(body.body_id, (x, y, TABLE_TOP_Z + body.height / 2 + 0.002), (0, 0, 0, 1),
                                       physicsClientId=env.world.client)
    pb.resetBaseVelocity(body.body_id, (0, 0, 0), (0, 0, 0), physicsClientId=env.world.client)


def _row(env, labels, x: float, y: float, step: float = 0.08, sag: tuple = (0.0, 0.0, 0.0)) -> dict:
    """Put the blocks left to right (falling y) at x (+ sag), `step` apart, and judge."""
    for i, label in enumerate(labels):
        _put(env, label, x + sag[i], y - i * step)
    env.world.step(240)
    return env.evaluate()


def test_ordered_instruction_names_the_blocks_and_the_plan_puts_them_beside_the_middle_one(ordered_env):
    for seed in range(4):
        episode, _ = ordered_env.reset_episode(seed)
        first, second, third = ordered_env._goal.blocks
        assert episode.instruction.index(first) < episode.instruction.index(second) < episode.instruction.index(third)
        assert [(s.skill, dict(s.args)) for s in episode.oracle_plan.steps] == [
            ("pick", {"object": first}), ("place_next_to", {"target": second, "side": "left"}),
            ("pick", {"object": third}), ("place_next_to", {"target": second, "side": "right"})]
        assert ordered_env.evaluate()["success"] is False


def test_a_straight_row_in_the_named_order_succeeds_and_near_misses_do_not(ordered_env):
    env = ordered_env
    env.reset_episode(5)
    blocks = env._goal.blocks
    _put(env, next(label for label, b in env.world.bodies.items() if b.kind == "bowl"), 0.65, -0.22)  # out of the way
    x, y = 0.42, 0.12
    assert _row(env, blocks, x, y)["success"], env.evaluate()
    predicates = _row(env, blocks[::-1], x, y)  # right to left
    assert predicates["collinear"] and not predicates["in_order"] and not predicates["success"]
    predicates = _row(env, blocks, x, y, sag=(0.0, 0.05, 0.0))  # the middle one out of line
    assert not predicates["collinear"] and not predicates["success"]
    predicates = _row(env, blocks, x, y, step=0.03)  # squeezed: 3 cm apart is less than a block
    assert not predicates["spaced"]
    predicates = _row(env, blocks, x, y, step=0.07, sag=(0.0, 0.07, 0.14))  # straight, but diagonal
    assert predicates["collinear"] and not predicates["row_left_to_right"] and not predicates["success"]


def test_a_row_beside_the_bowl_must_be_on_its_named_side_and_alongside_it(behind_env):
    env = behind_env
    env.reset_episode(1)
    goal = env._goal
    assert goal.mode == "behind" and goal.bowl in env.episode.instruction
    bowl = env.world.position(goal.bowl)
    order = (goal.blocks[1], goal.blocks[0], goal.blocks[2])
    assert _row(env, order, bowl[0] + 0.14, bowl[1] + 0.08)["success"], env.evaluate()
    assert not _row(env, order, bowl[0] - 0.14, bowl[1] + 0.08)["beside_bowl"]  # in front, not behind
    assert not _row(env, order, bowl[0] + 0.14, bowl[1] + 0.35)["beside_bowl"]  # off to one side


def test_bad_configs_fail_with_what_was_expected():
    with pytest.raises(ValueError, match="modes is empty"):
        AlignLineConfig(modes=())
    with pytest.raises(ValueError, match="min_spacing .* must be below max_spacing"):
        AlignLineConfig(min_spacing=0.2)
    with pytest.raises(ValueError, match="need that many distinct colours"):
        AlignLineConfig(colors=("red", "blue", "green"))
    spec = AlignLine(AlignLineConfig(level="L3")).spec()
    assert any("cylinders" in t.text for t in spec.templates)
    assert np.all([v.endswith((" cylinder", " bowl")) for v in spec.vocabulary])


def test_a_row_beside_a_bowl_is_the_same_goal_in_any_block_order():
    from sims.tasks.align_line import AlignLine, AlignLineGoal

    task = AlignLine()
    beside = AlignLineGoal(mode="behind", blocks=("red block", "blue block", "green block"), bowl="pink bowl")
    ordered = beside.model_copy(update={"mode": "ordered"})
    assert len({g.blocks for g in task.equivalent_goals(beside)}) == 6
    assert task.equivalent_goals(ordered) == [ordered]  # left to right as named: the order is the goal


def test_the_first_two_seeds_are_one_ordered_row_and_one_row_beside_a_bowl():
    # tests/sims/test_every_task.py runs the oracle stack on seeds 0 and 1: between them, both kinds of goal.
    env = _env(AlignLineConfig().modes)
    try:
        modes = set()
        for seed in (0, 1):
            env.reset_episode(seed)
            modes.add(env._goal.mode)
    finally:
        env.close()
    assert "ordered" in modes and len(modes) == 2


def test_the_goal_domain_lists_rows_beside_the_bowl_whichever_mode_the_episode_was_drawn_from():
    from tests.planning.goal_reading import scene

    table = scene(("red block", 0.4, 0.1), ("blue block", 0.5, -0.1), ("pink block", 0.45, 0.0),
                  ("green bowl", 0.6, 0.2))
    options = AlignLine(AlignLineConfig(modes=("ordered",))).goal_options(table)
    assert {option.goal["mode"] for option in options} == {"ordered", "behind", "front"}
