import numpy as np
import pybullet as pb
import pytest

from sims.tasks.push_to_zone import TEMPLATES, PushToZone, PushToZoneConfig
from sims.world import TABLE_TOP_Z


@pytest.fixture(scope="module")
def push_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="push_to_zone")
    yield env
    env.close()


def _put(env, label: str, x: float, y: float, z: float | None = None) -> None:
    body = env.world.body(label)
    z = TABLE_TOP_Z + body.height / 2 + 0.001 if z is None else z
    pb.resetBasePositionAndOrientation(body.body_id, (x, y, z), (0, 0, 0, 1), physicsClientId=env.world.client)
    pb.resetBaseVelocity(body.body_id, (0, 0, 0), (0, 0, 0), physicsClientId=env.world.client)


def test_the_block_starts_off_the_zone_within_pushing_range_and_the_plan_is_one_push(push_env):
    config = push_env.task.config
    for seed in range(5):
        episode, _ = push_env.reset_episode(seed)
        goal = push_env._goal
        bodies = push_env.world.bodies
        assert bodies[goal.block].kind == "block" and bodies[goal.zone].kind == "zone"
        kinds = [b.kind for b in bodies.values()]
        assert kinds.count("zone") == 2 and kinds.count("block") == 2
        assert episode.instruction in {t.format(block=goal.block, zone=goal.zone) for t in TEMPLATES}
        distance = np.linalg.norm(push_env.world.position(goal.block)[:2] - push_env.world.position(goal.zone)[:2])
        assert config.min_push - 0.01 <= distance <= config.max_push + 0.01
        assert [(s.skill, dict(s.args)) for s in episode.oracle_plan.steps] == [
            ("push", {"object": goal.block, "target": goal.zone})]
        assert set(bodies) <= set(episode.task.vocabulary)


def test_success_is_false_at_the_start(push_env):
    push_env.reset_episode(3)
    predicates = push_env.evaluate()
    assert predicates["success"] is False and predicates["block_in_zone"] is False
    assert predicates["block_on_table"] and predicates["released"]


def test_only_a_block_resting_on_the_table_over_the_zone_counts(push_env):
    env = push_env
    env.reset_episode(4)
    goal = env._goal
    zone = env.world.position(goal.zone)
    half = env.world.body(goal.zone).size / 2
    _put(env, goal.block, zone[0] + half + 0.01, zone[1])  # just past the zone's edge
    env.world.step(240)
    assert not env.evaluate()["block_in_zone"]
    _put(env, goal.block, zone[0] + half - 0.01, zone[1])  # just inside it
    env.world.step(240)
    predicates = env.evaluate()
    assert predicates["block_in_zone"] and predicates["success"], predicates
    # The zone is paper-flat: the block rests on the table through it.
    assert env.world.position(goal.block)[2] == pytest.approx(TABLE_TOP_Z + 0.02, abs=0.002)
    # Carried over the zone and set down on another block: over the zone, but not pushed there.
    other = next(label for label, b in env.world.bodies.items() if b.kind == "block" and label != goal.block)
    _put(env, other, zone[0], zone[1])
    _put(env, goal.block, zone[0], zone[1], TABLE_TOP_Z + 0.061)
    env.world.step(240)
    predicates = env.evaluate()
    assert predicates["block_in_zone"] and not predicates["block_on_table"] and not predicates["success"]


def test_bad_configs_fail_with_what_was_expected():
    with pytest.raises(ValueError, match="min_push .* must be below max_push"):
        PushToZoneConfig(min_push=0.3, max_push=0.2)
    with pytest.raises(ValueError, match="keep the block off the zone"):
        PushToZoneConfig(min_push=0.08)
    with pytest.raises(ValueError, match="unknown colours"):
        PushToZoneConfig(colors=("red", "chartreuse", "blue", "green"))
    with pytest.raises(ValueError, match="need 4 distinct colours"):
        PushToZoneConfig(colors=("red", "blue", "green"))
    from sims.world import World

    crowded = PushToZone(PushToZoneConfig(num_blocks=4, num_zones=3, zone_size=0.2, min_push=0.2, max_push=0.3,
                                         layout_restarts=5))
    world = World(renderer="tiny")
    try:
        world.reset()
        with pytest.raises(ValueError, match="no layout of 3 zones and 4 blocks with a clear push"):
            crowded.setup(world, np.random.default_rng(0))
    finally:
        world.close()
