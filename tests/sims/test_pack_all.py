import numpy as np
import pybullet as pb
import pytest

from sims.tasks.pack_all import TEMPLATES, TRAY, PackAll, PackAllConfig
from sims.world import TABLE_TOP_Z


@pytest.fixture(scope="module")
def pack_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="pack_all")
    yield env
    env.close()


def _put(env, label: str, x: float, y: float, z: float) -> None:
    body = env.world.body(label).body_id
    pb.resetBasePositionAndOrientation(body, (x, y, z), (0, 0, 0, 1), physicsClientId=env.world.client)
    pb.resetBaseVelocity(body, (0, 0, 0), (0, 0, 0), physicsClientId=env.world.client)


def test_objects_start_outside_the_tray_and_the_plan_packs_each_once(pack_env):
    for seed in range(5):
        episode, _ = pack_env.reset_episode(seed)
        goal = pack_env._goal
        bodies = pack_env.world.bodies
        assert bodies[TRAY].kind == "tray" and len(goal.objects) == 4
        assert episode.instruction in {t.format(shape="block") for t in TEMPLATES}
        tray, half = pack_env.world.position(TRAY)[:2], bodies[TRAY].size / 2
        for label in goal.objects:
            assert np.any(np.abs(pack_env.world.position(label)[:2] - tray) > half)  # outside the tray
        steps = episode.oracle_plan.steps
        assert [s.skill for s in steps] == ["pick", "place"] * 4
        assert sorted(s.args["object"] for s in steps[::2]) == sorted(goal.objects)
        assert all(s.args["target"] == TRAY for s in steps[1::2])
        assert set(bodies) <= set(episode.task.vocabulary)


def test_success_needs_every_object_on_the_floor_of_the_tray(pack_env):
    env = pack_env
    env.reset_episode(2)
    goal = env._goal
    assert env.evaluate()["success"] is False
    tray = env.world.position(TRAY)
    offsets = [(-0.045, -0.045), (0.045, -0.045), (-0.045, 0.045), (0.045, 0.045)]
    for label, (dx, dy) in zip(goal.objects, offsets):
        _put(env, label, tray[0] + dx, tray[1] + dy, TABLE_TOP_Z + 0.05)
    env.world.step(480)
    predicates = env.evaluate()
    assert predicates["all_in_tray"] and predicates["success"], predicates
    # One against the outside of the tray's wall is not packed.
    last = goal.objects[-1]
    _put(env, last, tray[0] + 0.145, tray[1] + 0.045, TABLE_TOP_Z + 0.021)
    env.world.step(240)
    predicates = env.evaluate()
    assert not predicates[f"{last} in tray"] and not predicates["success"], env.world.position(last)
    # Nor is one resting on top of the others, above the rim.
    _put(env, last, tray[0] - 0.045, tray[1] - 0.045, TABLE_TOP_Z + 0.1)
    env.world.step(30)
    assert not env.evaluate()[f"{last} in tray"]


def test_bad_configs_fail_with_what_was_expected():
    with pytest.raises(ValueError, match="do not fit side by side on the floor"):
        PackAllConfig(num_objects=5, tray_size=0.18, object_size=0.05)
    with pytest.raises(ValueError, match="too small for a 0.3 m tray"):
        PackAllConfig(tray_size=0.3, workspace_x=(0.35, 0.68))
    with pytest.raises(ValueError, match="need 4 distinct colours"):
        PackAllConfig(colors=("red", "blue", "green"))
    spec = PackAll(PackAllConfig(level="L3")).spec()
    assert "tray" in spec.vocabulary and all(v == "tray" or v.endswith(" cylinder") for v in spec.vocabulary)
