import numpy as np
import pybullet as pb
import pytest

from sims.tasks.towers_of_hanoi import (
    ZONE_THICKNESS,
    TowersOfHanoi,
    TowersOfHanoiConfig,
    TowersOfHanoiGoal,
    hanoi_moves,
)
from sims.world import TABLE_TOP_Z


@pytest.fixture(scope="module")
def hanoi_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="towers_of_hanoi")
    yield env
    env.close()


def _stack_on(env, zone, order):
    """Teleport blocks into a tower in `order` (bottom first) on `zone` and let it settle."""
    world = env.world
    x, y, _ = world.position(zone)
    z = TABLE_TOP_Z + ZONE_THICKNESS
    for label in order:
        body = world.body(label)
        pb.resetBasePositionAndOrientation(body.body_id, (x, y, z + body.height / 2 + 0.001), (0, 0, 0, 1),
                                           physicsClientId=world.client)
        z += body.height + 0.001
    world.step(480)


@pytest.mark.parametrize("blocks", [2, 3, 4])
def test_the_oracle_plan_keeps_the_rule_and_ends_with_the_tower_on_the_target(blocks):
    sizes = (0.055, 0.045, 0.035, 0.025)[:blocks]
    task = TowersOfHanoi(TowersOfHanoiConfig(sizes=sizes))
    size_of = {f"b{i}": s for i, s in enumerate(sizes)}
    goal = TowersOfHanoiGoal(source="red zone", target="blue zone", spare="green zone", tower=tuple(size_of))
    plan = task.oracle_plan(goal)
    assert len(plan.steps) == 2 * (2 ** blocks - 1) == 2 * len(hanoi_moves(blocks, 0, 1, 2))
    stacks = {"red zone": list(size_of), "blue zone": [], "green zone": []}
    where = {label: "red zone" for label in size_of}
    for pick, place in zip(plan.steps[::2], plan.steps[1::2]):
        block, onto = pick.args["object"], place.args["target"]
        zone = where[block]
        assert stacks[zone][-1] == block  # only a top block is picked
        stacks[zone].pop()
        dest = onto if onto in stacks else where[onto]
        assert onto == (stacks[dest][-1] if stacks[dest] else dest)  # onto the top block, or the empty zone
        assert not stacks[dest] or size_of[stacks[dest][-1]] > size_of[block]  # never on a smaller one
        stacks[dest].append(block)
        where[block] = dest
    assert stacks == {"red zone": [], "blue zone": list(size_of), "green zone": []}


def test_the_tower_starts_stacked_on_the_source_and_success_is_false(hanoi_env):
    for seed in range(3):
        hanoi_env.reset_episode(seed)
        goal = hanoi_env._goal
        world = hanoi_env.world
        assert goal.source in hanoi_env.episode.instruction and goal.target in hanoi_env.episode.instruction
        assert goal.spare not in hanoi_env.episode.instruction
        sizes = [world.body(b).size for b in goal.tower]
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
        predicates = hanoi_env.evaluate()
        assert predicates["success"] is False and not predicates[f"{goal.tower[0]} on {goal.target}"]
        # ... while the same tower counts as built, only on the source zone.
        assert all(predicates[f"{upper} on {lower}"] for lower, upper in zip(goal.tower, goal.tower[1:]))
        assert predicates["upright"] and predicates["tower_at_rest"] and predicates["released"]


def test_zones_stand_side_by_side_inside_the_workspace(hanoi_env):
    config = hanoi_env.task.config
    for seed in range(10):
        hanoi_env.reset_episode(seed)
        centres = [hanoi_env.world.position(label)[:2] for label, body in hanoi_env.world.bodies.items()
                   if body.kind == "zone"]
        assert len(centres) == 3
        ys = sorted(float(c[1]) for c in centres)
        assert min(np.diff(ys)) >= config.zone_spacing - 1e-9
        half = config.zone_size / 2
        for x, y in centres:
            assert config.workspace_x[0] + half <= x <= config.workspace_x[1] - half
            assert config.workspace_y[0] + half <= y <= config.workspace_y[1] - half


def test_only_the_right_order_on_the_target_zone_counts(hanoi_env):
    env = hanoi_env
    env.reset_episode(4)
    goal = env._goal
    _stack_on(env, goal.target, goal.tower[::-1])  # smallest at the bottom
    predicates = env.evaluate()
    assert not predicates["success"] and not predicates[f"{goal.tower[0]} on {goal.target}"]

    env.reset_episode(4)
    _stack_on(env, goal.spare, goal.tower)  # the right tower on the wrong zone
    predicates = env.evaluate()
    assert not predicates["success"] and predicates[f"{goal.tower[1]} on {goal.tower[0]}"]

    env.reset_episode(4)
    _stack_on(env, goal.target, goal.tower)
    assert env.evaluate()["success"]


def test_bad_configs_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="shrink from the bottom"):
        TowersOfHanoiConfig(sizes=(0.03, 0.04, 0.05))
    with pytest.raises(ValueError, match="2 to 4 blocks"):
        TowersOfHanoiConfig(sizes=(0.05,))
    with pytest.raises(ValueError, match="0.02 to 0.06 m"):
        TowersOfHanoiConfig(sizes=(0.08, 0.04))
    with pytest.raises(ValueError, match="cannot hold"):
        TowersOfHanoiConfig(zone_size=0.08, sizes=(0.06, 0.04))
    with pytest.raises(ValueError, match="need 7 distinct colours, got 6"):
        TowersOfHanoiConfig(level="L2", sizes=(0.05, 0.04, 0.035, 0.03))
    with pytest.raises(ValueError, match="do not fit"):
        TowersOfHanoiConfig(workspace_y=(-0.15, 0.15))
    spec = TowersOfHanoi().spec()
    assert "red zone" in spec.vocabulary and "red block" in spec.vocabulary
    assert all(not t.plan for t in spec.templates)
