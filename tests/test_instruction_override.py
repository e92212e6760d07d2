"""A user's own instruction, and a goal to judge it by: through the env, the gymnasium API,
the Python API (Runner) and the command line."""

import json
import subprocess
import sys

import pytest

from fmrobot.errors import ConfigError
from fmrobot.stack import build_runner
from sims.env import TabletopEnv
from tests.fakes import compose_config


@pytest.fixture(scope="module")
def env():
    env = TabletopEnv(task="pick_place")
    yield env
    env.close()


def positions(env):
    return {label: tuple(round(float(v), 4) for v in env.world.position(label)) for label in env.world.bodies}


def test_an_instruction_replaces_the_generated_one_and_keeps_the_seeds_scene(env):
    generated, _ = env.reset_episode(3)
    scene = positions(env)
    given, _ = env.reset_episode(3, instruction="could you tidy up a little")
    assert given.instruction == "could you tidy up a little" != generated.instruction
    assert given.given_instruction and not given.given_goal and not generated.given_instruction
    assert positions(env) == scene
    assert given.goal == generated.goal and given.oracle_plan == generated.oracle_plan


def test_a_given_goal_is_what_the_episode_is_judged_and_solved_by(env):
    seed_episode, _ = env.reset_episode(4)
    blocks = sorted(label for label in env.world.bodies if label.endswith("block"))
    other = next(b for b in blocks if b != seed_episode.goal["block"])
    episode, _ = env.reset_episode(4, instruction=f"put the {other} in the {seed_episode.goal['bowl']}",
                                   goal={"block": other})
    assert episode.given_goal and episode.goal["block"] == other and episode.goal["bowl"] == seed_episode.goal["bowl"]
    assert episode.oracle_plan.steps[0].args["object"] == other
    assert env.evaluate()["success"] is False  # nothing moved yet: judged by the given goal's predicates


def test_a_bad_goal_says_what_the_goal_takes_and_what_the_scene_holds(env):
    with pytest.raises(ValueError, match=r"invalid goal for PickPlaceGoal: colour: .*fields: block, bowl, unsaid"):
        env.reset_episode(0, goal={"colour": "red"})
    with pytest.raises(ValueError, match=r"the goal names .* not in this scene; the scene holds: "):
        env.reset_episode(0, goal={"block": next(v for v in env.task.spec().vocabulary
                                                  if v.endswith("block") and v not in env.world.bodies)})


def test_the_gymnasium_reset_takes_instruction_and_goal_options(env):
    _, info = env.reset(seed=2, options={"instruction": "move a block"})
    assert info["instruction"] == "move a block" and info["seed"] == 2 and "block" in info["goal"]
    with pytest.raises(ValueError, match="unknown reset option.*'speed'.*options are: instruction, goal"):
        env.reset(seed=2, options={"speed": 1})


def oracle_runner(*overrides):
    return build_runner(compose_config(["task=pick_place", "perception=oracle", "planner=oracle", "video=none",
                                        *overrides]))


def test_the_runner_judges_a_free_instruction_by_the_seeds_task_goal_and_a_given_goal_by_itself():
    runner = oracle_runner()
    try:
        free = runner.run_episode(1, instruction="please do the usual").result
        assert free.instruction == "please do the usual" and free.given_instruction and free.judged_by == "task"
        assert free.success and free.goal["block"]
        other = next(label for label in runner.env.world.bodies
                     if label.endswith("block") and label != free.goal["block"])
        given = runner.run_episode(1, instruction=f"put the {other} in the {free.goal['bowl']}",
                                   goal={"block": other}).result
        assert given.judged_by == "given" and given.goal["block"] == other and given.success
    finally:
        runner.env.close()


def test_a_goal_the_scene_cannot_hold_is_a_config_error_naming_the_seed():
    runner = oracle_runner()
    try:
        with pytest.raises(ConfigError, match="seed 0: invalid goal for PickPlaceGoal"):
            runner.run_episode(0, instruction="x", goal={"bowl": 3})
    finally:
        runner.env.close()


@pytest.mark.slow
def test_the_command_line_takes_an_instruction_and_says_what_it_was_judged_by(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fmrobot.run", "task=sort_by_color", "perception=oracle",
                           "planner=oracle", "video=none", "episodes=2",
                           "instruction=put every block away where it belongs", f"hydra.run.dir={tmp_path}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [e["instruction"] for e in results["episodes"]] == ["put every block away where it belongs"] * 2
    assert all(e["given_instruction"] and e["judged_by"] == "task" and e["goal"]["moves"]
               for e in results["episodes"])
    assert results["summary"]["given_instruction"] is True
    assert "your instruction was judged by each seed's task goal" in done.stdout
