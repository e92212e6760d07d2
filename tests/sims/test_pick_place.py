import numpy as np
import pytest

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.types import SkillStatus
from sims.tasks.base import sample_placements
from sims.tasks.pick_place import PickPlace, PickPlaceConfig


def test_scene_has_distinct_colours_and_the_instruction_names_objects_in_it(pick_place_env):
    for seed in range(5):
        episode, _ = pick_place_env.reset_episode(seed)
        bodies = pick_place_env.world.bodies
        colors = [b.color for b in bodies.values()]
        assert len(colors) == len(set(colors)) == 5
        goal = pick_place_env._goal
        assert goal.block in bodies and goal.bowl in bodies
        assert goal.block in episode.instruction and goal.bowl in episode.instruction
        assert [s.skill for s in episode.oracle_plan.steps] == ["pick", "place"]


def test_success_is_false_at_the_start(pick_place_env):
    pick_place_env.reset_episode(2)
    predicates = pick_place_env.evaluate()
    assert predicates["success"] is False and predicates["block_in_bowl"] is False


def test_bowl_is_a_container_a_dropped_block_stays_inside(pick_place_env):
    env = pick_place_env
    env.reset_episode(4)
    goal = env._goal
    import pybullet as pb

    bowl = env.world.position(goal.bowl)
    block = env.world.body(goal.block).body_id
    pb.resetBasePositionAndOrientation(block, (bowl[0] + 0.03, bowl[1], bowl[2] + 0.15), (0, 0, 0, 1),
                                       physicsClientId=env.world.client)
    env.world.step(480)  # two seconds: fall, bounce off the floor and walls, come to rest
    z = env.world.position(goal.block)[2]
    assert z < bowl[2] + 0.05  # below the rim: inside, not on top of the wall
    assert env.evaluate()["block_in_bowl"]


def test_grasp_is_by_friction_no_constraint_attaches_the_block(pick_place_env):
    import pybullet as pb

    env = pick_place_env
    episode, obs = env.reset_episode(0)
    scene = OraclePerceptor().perceive(env.observe(images=True))
    policy = ScriptedPolicy()
    policy.reset(episode.oracle_plan.steps[0], scene, obs)
    while policy.status(obs) is SkillStatus.RUNNING:
        obs = env.apply(policy.act(obs))
    assert policy.status(obs) is SkillStatus.SUCCESS
    goal = env._goal
    assert env.world.position(goal.block)[2] > 0.625 + 0.08  # lifted off the table
    assert env.world.touching_robot(goal.block)
    # Only the finger gear constraint exists: nothing welds the block to the hand.
    constraints = [pb.getConstraintInfo(pb.getConstraintUniqueId(i, physicsClientId=env.world.client),
                                        physicsClientId=env.world.client)
                   for i in range(pb.getNumConstraints(physicsClientId=env.world.client))]
    assert all(env.world.body(goal.block).body_id not in (c[0], c[2]) for c in constraints)


def test_placements_do_not_overlap_and_impossible_requests_fail_clearly():
    rng = np.random.default_rng(0)
    radii = [0.085, 0.085, 0.03, 0.03, 0.03]
    spots = sample_placements(rng, radii, (0.35, 0.68), (-0.26, 0.26))
    for i in range(len(spots)):
        for j in range(i):
            assert np.hypot(*np.subtract(spots[i], spots[j])) >= radii[i] + radii[j]
    with pytest.raises(ValueError, match="could not place"):
        sample_placements(rng, [0.2] * 4, (0.35, 0.68), (-0.26, 0.26), tries=50)


def test_config_needs_enough_distinct_colours():
    with pytest.raises(ValueError, match="distinct colours"):
        PickPlaceConfig(num_blocks=3, num_bowls=2, colors=("red", "green", "blue"))
    with pytest.raises(ValueError, match="unknown colours"):
        PickPlaceConfig(colors=("red", "chartreuse", "green", "blue", "cyan", "pink"))
    assert len(PickPlace().spec().vocabulary) == 20


@pytest.fixture(scope="module")
def ambiguous_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task=PickPlace(PickPlaceConfig(ambiguous=1.0)))
    yield env
    env.close()


def test_ambiguous_instructions_leave_out_one_colour_and_keep_the_same_goal(pick_place_env, ambiguous_env):
    unsaid = set()
    for seed in range(8):
        clear, _ = pick_place_env.reset_episode(seed)
        vague, _ = ambiguous_env.reset_episode(seed)
        goal = ambiguous_env._goal
        assert vague.oracle_plan == clear.oracle_plan  # same scene, same intended block and bowl
        assert goal.unsaid in ("block", "bowl")
        named = goal.block if goal.unsaid == "block" else goal.bowl
        assert named not in vague.instruction and vague.instruction == clear.instruction.replace(named, goal.unsaid)
        unsaid.add(goal.unsaid)
    assert unsaid == {"block", "bowl"}
