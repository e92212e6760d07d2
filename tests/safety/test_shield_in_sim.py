"""The shield between planner and simulator: what it refuses, repairs, and where that is recorded."""

import pytest

from fmrobot.execution import RunJob, run_one
from fmrobot.stack import build_runner
from tests.fakes import compose_config


@pytest.fixture
def stack():
    """Build a runner from overrides; every env built is closed after the test."""
    runners = []

    def build(*overrides):
        runner = build_runner(compose_config(["perception=oracle", "video=none", *overrides]))
        runners.append(runner)
        return runner

    yield build
    for runner in runners:
        runner.env.close()


def hazards(request, unsafe, shield, planner="scripted"):
    return ("task=hazards", f"task.request={request}", f"task.unsafe={str(unsafe).lower()}", f"safety={shield}",
            f"planner={planner}")


def test_unsafe_request_runs_without_the_shield_and_is_refused_with_it(stack, tmp_path):
    unshielded = stack(*hazards("fragile", True, "none")).run_episode(0).result
    assert not unshielded.predicates["safe"] and not unshielded.predicates["fragile_intact"]

    runner = stack(*hazards("fragile", True, "basic"))
    job = RunJob(config={"task": {"name": "hazards"}}, run_dir=str(tmp_path), seeds=(0,))
    result = run_one(runner, job, 0)
    # Refusing is what this episode asks for: a success, with the refusal and its reason in the result.
    assert result.predicates["safe"] and result.success and result.env_steps == 0
    assert [v.rule for v in result.safety.refusals][:1] == ["fragile"]
    assert "glass vase is fragile" in result.safety.refusals[0].reason
    trace = (tmp_path / result.trace_file).read_text()
    assert '"event": "safety"' in trace and "is fragile" in trace  # the reason is in the trace too


def test_a_motion_that_leaves_the_workspace_is_stopped_before_it_runs(stack):
    unshielded = stack(*hazards("off_table", True, "none")).run_episode(1).result
    assert not unshielded.predicates["on_table"]
    result = stack(*hazards("off_table", True, "basic")).run_episode(1).result
    assert result.predicates["safe"] and result.success
    assert {v.rule for v in result.safety.refusals} == {"workspace_bounds"}
    assert "end-effector target" in result.safety.refusals[0].reason
    control = stack(*hazards("off_table", False, "basic")).run_episode(1).result
    assert control.success and control.safety.refusals == ()  # the same scene, asked for the other side


def test_after_a_refused_place_the_held_block_is_not_dropped_into_the_hazard_zone(stack):
    # Seed 5: the place beyond the edge is refused with the block in hand; the replanned pick
    # opened the gripper where it was, and the block fell into the hazard zone below.
    result = stack(*hazards("off_table", True, "basic")).run_episode(5).result
    assert result.predicates["safe"], result.failure_reason
    assert "release" in {v.rule for v in result.safety.refusals}


def test_safe_controls_run_with_the_shield_on_and_nothing_refused(stack):
    for request in ("fragile", "keep_out", "off_table"):
        result = stack(*hazards(request, False, "basic")).run_episode(0).result
        assert result.success, (request, result.failure_reason)
        assert result.safety.refusals == ()


def test_collision_probe_sees_the_vase_in_the_grippers_way(stack):
    env = stack(*hazards("fragile", False, "basic")).env
    env.reset_episode(0)
    vase = env.world.position("glass vase")
    orientation = (1.0, 0.0, 0.0, 0.0)  # pointing down
    # The open fingers (8 cm apart) would straddle the 6 cm vase; the hand above them would not.
    above, into = (vase[0], vase[1], vase[2] + 0.3), (vase[0], vase[1], vase[2])
    hit = env.sweep(above, into, orientation, margin=0.0, ignore=())
    assert hit is not None and hit.label == "glass vase" and hit.distance <= 0.0
    assert env.sweep(above, (vase[0], vase[1], vase[2] + 0.28), orientation, margin=0.0, ignore=()) is None
    assert env.sweep(above, into, orientation, margin=0.0, ignore=("glass vase",)) is None
    assert env.sweep(above, into, orientation, margin=0.0, ignore=(), only=("*block*",)) is None
    # Beside the vase, 20 cm away, the path is clear; with a 25 cm margin it is not.
    aside = (vase[0] + 0.2, vase[1], vase[2])
    assert env.sweep((aside[0], aside[1], aside[2] + 0.2), aside, orientation, margin=0.0, ignore=()) is None
    assert env.sweep((aside[0], aside[1], aside[2] + 0.2), aside, orientation, margin=0.25, ignore=()) is not None


def test_a_policy_faster_than_the_limit_is_slowed_and_the_repairs_counted(stack):
    runner = stack("task=pick_place", "planner=oracle", "safety=basic", "policy.speed=1.5")
    result = runner.run_episode(0).result
    assert result.success and result.safety.repairs.get("max_ee_speed", 0) > 10
    unlimited = stack("task=pick_place", "planner=oracle", "safety=basic", "policy.speed=1.5",
                      "safety.max_ee_speed=null").run_episode(0).result
    assert unlimited.safety.repairs == {}
    assert unlimited.env_steps < result.env_steps  # the limit really slowed the motion


def test_strict_shield_refuses_touching_anything_the_call_does_not_name(stack):
    # Seed 4 of pick_place: the open fingers brush the rim of the brown bowl beside the cyan block.
    basic = stack("task=pick_place", "planner=oracle", "safety=basic").run_episode(4).result
    assert basic.success and basic.safety.refusals == ()
    strict = stack("task=pick_place", "planner=oracle", "safety=strict").run_episode(4).result
    assert any(v.rule == "collision" and "brown bowl" in v.reason for v in strict.safety.refusals)
