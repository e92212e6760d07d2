"""Generalization levels and domain randomization: what each changes, and what it must not."""

import numpy as np
import pytest

from sims.env import EnvConfig, TabletopEnv
from sims.objects import COLORS, UNSEEN_COLORS
from sims.randomization import RandomizationConfig
from sims.tasks.pick_place import HELD_OUT_TEMPLATES, TEMPLATES, PickPlace, PickPlaceConfig
from sims.variation import LEVELS

RANDOMIZED = RandomizationConfig(lighting=True, camera_jitter=0.02, table_tint="unseen", clutter=3,
                                 clutter_split="unseen")


def _env(level=None, randomization=RandomizationConfig()):
    return TabletopEnv(EnvConfig(randomization=randomization, renderer="tiny"),
                       task=PickPlace(PickPlaceConfig(level=level)))


def _task_objects(env):
    return {label: (body.kind, body.color, tuple(np.round(env.world.position(label)[:2], 4)))
            for label, body in env.world.bodies.items() if body.kind != "clutter"}


def _fits(instruction, templates):
    from fmrobot.planning.templates import match
    from fmrobot.types import InstructionTemplate

    return any(match(InstructionTemplate(text=t, plan=()), instruction) for t in templates)


@pytest.fixture(scope="module")
def levels():
    envs = {name: _env(name) for name in (None, "L1", "L2", "L3")}
    yield envs
    for env in envs.values():
        env.close()


def test_levels_draw_colours_shapes_and_phrasings_from_their_pools(levels):
    for seed in range(6):
        seen = {name: (env.reset_episode(seed)[0], dict(env.world.bodies)) for name, env in levels.items()}
        for name, (episode, bodies) in seen.items():
            colours = {b.color for b in bodies.values()}
            movable = {b.kind for b in bodies.values() if b.kind != "bowl"}
            if name in (None, "L1"):
                assert colours <= set(COLORS) and movable == {"block"}
                assert _fits(episode.instruction, TEMPLATES)
            elif name == "L2":
                assert colours <= set(UNSEEN_COLORS) and movable == {"block"}
                assert _fits(episode.instruction, TEMPLATES)
            else:
                assert colours <= set(UNSEEN_COLORS) and movable == {"cylinder"}
                assert _fits(episode.instruction, HELD_OUT_TEMPLATES) and not _fits(episode.instruction, TEMPLATES)
            # The labels the instruction and the plan use are the ones the scene holds.
            assert all(arg in bodies for step in episode.oracle_plan.steps for arg in step.args.values())
            assert set(bodies) <= set(levels[name].task.spec().vocabulary)


def test_l2_places_objects_beyond_the_seen_workspace(levels):
    task = levels["L2"].task
    (x0, x1), (y0, y1) = task.config.workspace_x, task.config.workspace_y
    outside = 0
    for seed in range(30):
        levels["L2"].reset_episode(seed)
        for label in levels["L2"].world.bodies:
            x, y = levels["L2"].world.position(label)[:2]
            outside += not (x0 <= x <= x1 and y0 <= y <= y1)
        if outside:
            break  # one is proof enough: each reset costs ~0.1 s
    assert outside > 0  # unseen placements do occur ...
    (wx0, wx1), (wy0, wy1) = task.workspace()
    assert wx0 < x0 and wx1 > x1 and wy0 < y0 and wy1 > y1  # ... because the workspace is wider


def test_randomization_changes_the_look_but_not_the_task():
    plain, randomized = _env(), _env(randomization=RANDOMIZED)
    try:
        for seed in (0, 1, 2):
            plain_episode, _ = plain.reset_episode(seed)
            random_episode, _ = randomized.reset_episode(seed)
            assert random_episode.instruction == plain_episode.instruction
            assert _task_objects(randomized) == _task_objects(plain)
            clutter = [label for label, b in randomized.world.bodies.items() if b.kind == "clutter"]
            assert 1 <= len(clutter) <= 3
            frame_a = plain.observe(images=True).frames[0]
            frame_b = randomized.observe(images=True).frames[0]
            assert frame_a.extrinsics != frame_b.extrinsics  # the camera moved, and says so
            assert np.abs(frame_a.rgb.astype(int) - frame_b.rgb.astype(int)).mean() > 5
    finally:
        plain.close()
        randomized.close()


def test_randomization_is_reproducible_and_clutter_clears_the_task_objects():
    env = _env(randomization=RANDOMIZED)
    try:
        env.reset_episode(4)
        first = {label: tuple(env.world.position(label)) for label in env.world.bodies}
        image_first = env.observe(images=True).frames[0].rgb
        env.reset_episode(4)
        assert {label: tuple(env.world.position(label)) for label in env.world.bodies} == first
        assert np.array_equal(env.observe(images=True).frames[0].rgb, image_first)
        for seed in range(10):
            env.reset_episode(seed)
            bodies = env.world.bodies
            for label, body in bodies.items():
                if body.kind != "clutter":
                    continue
                xy = env.world.position(label)[:2]
                for other, other_body in bodies.items():
                    if other != label and other_body.kind != "clutter":
                        gap = np.hypot(*(xy - env.world.position(other)[:2]))
                        assert gap >= (body.size + other_body.size) / 2, (seed, label, other)
    finally:
        env.close()


def test_unknown_level_and_bad_randomization_fail_clearly():
    with pytest.raises(ValueError, match="L1"):
        PickPlace(PickPlaceConfig.model_construct(level="L9"))
    with pytest.raises(ValueError, match="table_tint"):
        RandomizationConfig(table_tint="plaid")
    assert set(LEVELS) == {"L1", "L2", "L3", "L4"}


def test_level_config_group_sets_task_level_and_randomization():
    from tests.fakes import compose_config

    config = compose_config(["level=L3"])
    assert config["task"]["level"] == "L3"
    assert config["env"]["randomization"]["clutter_split"] == "unseen"
    assert compose_config([])["task"].get("level") is None


def test_l4_composes_the_task_with_a_spatial_clause_judged_with_it():
    import pybullet as pb

    from sims.tasks.composition import ComposedTask
    from sims.tasks.regions import SIDE_DIRECTIONS as SIDES

    env = _env("L4")
    try:
        assert isinstance(env.task, ComposedTask)
        assert "place_next_to" in env.task.spec().skills
        for seed in range(4):
            episode, _ = env.reset_episode(seed)
            clause = env._goal.clause
            assert episode.instruction.endswith(f"the {clause.reference}") and f"put the {clause.object}" in \
                episode.instruction
            assert [s.skill for s in episode.oracle_plan.steps] == ["pick", "place", "pick", "place_next_to"]
            assert env.world.body(clause.object).color not in {
                b.color for label, b in env.world.bodies.items() if label != clause.object}
            predicates = env.evaluate()
            assert not predicates["success"] and not predicates["task_success"]
        # Put the clause's object where it belongs (and only that): the clause holds, the task does not.
        reference = env.world.position(clause.reference)
        spot = reference[:2] + (env.world.body(clause.reference).size / 2 + 0.05) * np.asarray(SIDES[clause.side])
        pb.resetBasePositionAndOrientation(env.world.body(clause.object).body_id, (*spot, 0.65), (0, 0, 0, 1),
                                           physicsClientId=env.world.client)
        env.settle(1.0)
        predicates = env.evaluate()
        assert predicates[f"{clause.object} {clause.side} of {clause.reference}"]
        assert not predicates["success"]
        # The opposite side does not count.
        opposite = reference[:2] - (env.world.body(clause.reference).size / 2 + 0.05) * np.asarray(SIDES[clause.side])
        pb.resetBasePositionAndOrientation(env.world.body(clause.object).body_id, (*opposite, 0.65), (0, 0, 0, 1),
                                           physicsClientId=env.world.client)
        env.settle(1.0)
        assert not env.evaluate()[f"{clause.object} {clause.side} of {clause.reference}"]
    finally:
        env.close()
