import numpy as np
import pybullet as pb
import pytest

from fmrobot.planning.templates import match
from sims.tasks.regions import SIDE_DIRECTIONS
from sims.tasks.spatial_placement import SpatialPlacement, SpatialPlacementConfig
from sims.world import TABLE_TOP_Z


@pytest.fixture(scope="module")
def spatial_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="spatial_placement")
    yield env
    env.close()


@pytest.fixture(scope="module")
def between_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task=SpatialPlacement(SpatialPlacementConfig(relations=("between",))))
    yield env
    env.close()


def _put(env, label: str, xy, z: float | None = None) -> None:
    body = env.world.body(label)
    z = TABLE_TOP_Z + body.height / 2 + 0.002 if z is None else z
    pb.resetBasePositionAndOrientation(body.body_id, (float(xy[0]), float(xy[1]), z), (0, 0, 0, 1),
                                       physicsClientId=env.world.client)
    pb.resetBaseVelocity(body.body_id, (0, 0, 0), (0, 0, 0), physicsClientId=env.world.client)


def _settled(env) -> dict:
    env.world.step(240)
    return env.evaluate()


def test_the_instruction_fits_a_published_template_whose_plan_is_the_oracle_plan(spatial_env):
    relations = set()
    for seed in range(12):
        episode, _ = spatial_env.reset_episode(seed)
        goal = spatial_env._goal
        relations.add(goal.relation)
        assert goal.block in episode.instruction and all(r in episode.instruction for r in goal.references)
        fits = [(t, match(t, episode.instruction)) for t in episode.task.templates]
        plans = [t.plan_for(**slots) for t, slots in fits if slots is not None]
        assert episode.oracle_plan in plans, (episode.instruction, plans)
    assert len(relations) >= 3  # the relation varies from episode to episode


def test_success_is_false_at_the_start(spatial_env):
    spatial_env.reset_episode(1)
    predicates = spatial_env.evaluate()
    assert predicates["success"] is False and predicates["block_on_table"] and predicates["released"]


def test_the_named_side_counts_but_the_opposite_side_a_diagonal_or_on_top_do_not(spatial_env):
    env = spatial_env
    for seed in range(30):
        env.reset_episode(seed)
        if env._goal.relation != "between":
            break
    goal = env._goal
    (reference,) = goal.references
    centre = env.world.position(reference)[:2]
    edge = env.world.body(reference).size / 2
    direction = np.asarray(SIDE_DIRECTIONS[goal.relation])
    across = np.array([-direction[1], direction[0]])
    _put(env, goal.block, centre + direction * (edge + 0.05))
    assert _settled(env)["success"], (goal, env.evaluate())
    _put(env, goal.block, centre - direction * (edge + 0.05))  # the opposite side
    assert not _settled(env)["relation_holds"]
    _put(env, goal.block, centre + direction * (edge + 0.05) + across * (edge + 0.06))  # diagonal
    assert not _settled(env)["relation_holds"]
    _put(env, goal.block, centre + direction * (edge + 0.25))  # far beyond it
    assert not _settled(env)["relation_holds"]
    _put(env, goal.block, centre + direction * (edge + 0.05), TABLE_TOP_Z + 0.3)  # held in the air
    predicates = env.evaluate()
    assert predicates["relation_holds"] and not predicates["block_on_table"] and not predicates["success"]


def test_between_means_on_the_line_joining_the_two_and_past_both_of_them(between_env):
    env = between_env
    env.reset_episode(0)
    goal = env._goal
    assert goal.relation == "between" and len(goal.references) == 2
    a, b = (env.world.position(r)[:2] for r in goal.references)
    _put(env, goal.block, (a + b) / 2)
    assert _settled(env)["success"], env.evaluate()
    normal = np.array([-(b - a)[1], (b - a)[0]]) / np.linalg.norm(b - a)
    _put(env, goal.block, (a + b) / 2 + normal * 0.06)  # beside the line, not on it
    assert not _settled(env)["relation_holds"]
    _put(env, goal.block, b + (b - a) / np.linalg.norm(b - a) * 0.12)  # on the line, but beyond the second
    assert not _settled(env)["relation_holds"]


def test_scripted_planner_reads_a_side_from_the_words(spatial_env):
    from fmrobot.perception.oracle import OraclePerceptor
    from fmrobot.planning.scripted import ScriptedPlanner
    from fmrobot.types import PlanningContext
    from fmrobot.control.scripted import ScriptedPolicy

    episode, _ = spatial_env.reset_episode(0)
    scene = OraclePerceptor().perceive(spatial_env.observe(images=True))
    skills = tuple(s for s in ScriptedPolicy.skills if s.name in episode.task.skills)
    decision = ScriptedPlanner().plan(episode.instruction, scene, PlanningContext(skills=skills, task=episode.task))
    assert decision.plan == episode.oracle_plan


def test_bad_configs_fail_with_what_was_expected():
    with pytest.raises(ValueError, match="relations is empty"):
        SpatialPlacementConfig(relations=())
    with pytest.raises(ValueError, match="too few for relations"):
        SpatialPlacementConfig(num_blocks=1, num_bowls=1, relations=("between",))
    with pytest.raises(ValueError, match="need that many distinct colours"):
        SpatialPlacementConfig(colors=("red", "blue", "green"))
    with pytest.raises(ValueError):
        SpatialPlacementConfig(relations=("above",))


def test_the_oracle_plan_is_one_pick_and_one_place(spatial_env):
    # With tests/sims/test_every_task.py (the oracle stack makes exactly the oracle plan's skill calls):
    # the oracle stack solves a placement in two calls.
    for seed in (0, 1):
        episode, _ = spatial_env.reset_episode(seed)
        skills = [s.skill for s in episode.oracle_plan.steps]
        assert len(skills) == 2 and skills[0] == "pick" and skills[1].startswith("place"), skills


def test_the_goal_domain_lists_every_relation_whichever_the_episode_was_drawn_from():
    # A scene drawn for "left" must not tell the planner the side: "next to the bowl" leaves it open.
    from tests.planning.goal_reading import scene

    table = scene(("red block", 0.4, 0.1), ("blue block", 0.5, -0.1), ("green bowl", 0.6, 0.2))
    options = SpatialPlacement(SpatialPlacementConfig(relations=("left",))).goal_options(table)
    relations = {option.goal["relation"] for option in options if option.goal["block"] == "red block"}
    assert relations == {"left", "right", "front", "behind", "between"}
