"""The rule shield's plan and motion rules, on hand-made scenes (no simulator)."""

import pytest
from pydantic import ValidationError

from fmrobot.interfaces import ActionContext
from fmrobot.safety.basic import BasicShield, BasicShieldConfig, CollisionCheckConfig, NoShield
from fmrobot.safety.rules import Bounds, ForbiddenPair
from fmrobot.safety.zones import KeepOutZone
from fmrobot.testing import check_shield, synthetic_context, synthetic_robot_state
from fmrobot.types import (
    Action,
    DetectedObject,
    Observation,
    Obstruction,
    Plan,
    SceneDescription,
    SkillCall,
)

TABLE = 0.625


def thing(label, x, y, size=0.04, height=0.04):
    return DetectedObject(label=label, score=1.0, position=(x, y, TABLE + height / 2), extent=(size, size, height))


SCENE = SceneDescription(objects=(
    thing("red block", 0.5, 0.0), thing("blue bowl", 0.6, 0.2, 0.15, 0.05), thing("glass vase", 0.45, -0.2, 0.06, 0.12),
    thing("hazard zone", 0.65, -0.1, 0.12, 0.002), thing("green block", 0.66, -0.1),
))


def plan(*steps):
    return Plan(steps=tuple(SkillCall(skill=s, args=a) for s, a in steps))


def put(block, target, skill="place", **extra):
    return plan(("pick", {"object": block}), (skill, {"target": target, **extra}))


def rules_hit(verdict):
    return [(v.rule, v.step_index) for v in verdict.violations]


# --------------------------------------------------------------------------- plan rules


def test_plan_inside_the_workspace_is_allowed():
    verdict = check_shield(BasicShield())
    assert verdict.allowed and verdict.plan == synthetic_context().oracle_plan


def test_object_outside_the_workspace_is_refused_with_the_reason():
    shield = BasicShield(BasicShieldConfig(workspace=Bounds(x=(0.5, 0.9), y=(-0.5, 0.5), z=(0.5, 1.2))))
    verdict = check_shield(shield)
    assert not verdict.allowed and verdict.plan is None
    assert [v.step_index for v in verdict.violations] == [0]  # the red block at x = 0.45
    assert "red block" in verdict.violations[0].reason and "outside the workspace" in verdict.violations[0].reason


def test_safe_plan_passes_every_rule():
    verdict = BasicShield().check(put("red block", "blue bowl"), SCENE)
    assert verdict.allowed and not verdict.violations


def test_nothing_goes_onto_a_fragile_object_and_it_is_not_moved():
    shield = BasicShield()
    onto = shield.check(put("red block", "glass vase"), SCENE)
    assert rules_hit(onto) == [("fragile", 1)] and "fragile" in onto.violations[0].reason
    moved = shield.check(plan(("pick", {"object": "glass vase"})), SCENE)
    assert rules_hit(moved) == [("fragile", 0)]
    beside = shield.check(put("red block", "glass vase", "place_next_to", side="left"), SCENE)
    assert beside.allowed  # beside is allowed: the motion rules keep the gripper clear of it


def test_fragile_patterns_come_from_the_config():
    shield = BasicShield(BasicShieldConfig(fragile=("*bowl*",)))
    assert rules_hit(shield.check(put("red block", "blue bowl"), SCENE)) == [("fragile", 1)]
    assert shield.check(put("red block", "glass vase"), SCENE).allowed


def test_keep_out_zone_may_not_be_a_target_nor_hold_the_object_acted_on():
    shield = BasicShield()
    into = shield.check(put("red block", "hazard zone"), SCENE)
    assert rules_hit(into) == [("keep_out", 1)] and "keep-out zone" in into.violations[0].reason
    inside = shield.check(put("green block", "blue bowl"), SCENE)  # the green block lies in the hazard zone
    assert rules_hit(inside) == [("keep_out", 0)] and "lies inside" in inside.violations[0].reason


def test_keep_out_box_from_the_config():
    box = KeepOutZone(name="charger", box=Bounds(x=(0.55, 0.7), y=(0.1, 0.3), z=(0.6, 0.9)))
    shield = BasicShield(BasicShieldConfig(keep_out=(box,)))
    verdict = shield.check(put("red block", "blue bowl"), SCENE)  # the bowl at (0.6, 0.2) is in the box
    assert rules_hit(verdict) == [("keep_out", 1)] and "charger" in verdict.violations[0].reason


def test_keep_out_zone_needs_exactly_one_of_label_and_box():
    with pytest.raises(ValidationError, match="exactly one of"):
        KeepOutZone(name="nowhere")


def test_forbidden_pair_uses_the_object_the_plan_picked():
    pair = ForbiddenPair(object="red*", target="*bowl", reason="red stays out of bowls")
    shield = BasicShield(BasicShieldConfig(forbidden_pairs=(pair,)))
    refused = shield.check(put("red block", "blue bowl"), SCENE)
    assert rules_hit(refused) == [("forbidden_pair", 1)] and "red stays out of bowls" in refused.violations[0].reason
    assert shield.check(put("green block", "blue bowl"), SCENE.model_copy(update={"objects": SCENE.objects[:2] + (
        thing("green block", 0.4, 0.1),)})).allowed
    # A step-by-step planner's lone place does not say what is held: refuse rather than guess.
    assert not shield.check(plan(("place", {"target": "blue bowl"})), SCENE).allowed


def test_every_violation_of_a_plan_is_listed():
    verdict = BasicShield().check(plan(("pick", {"object": "glass vase"}), ("place", {"target": "hazard zone"})), SCENE)
    assert rules_hit(verdict) == [("keep_out", 1), ("fragile", 0)]


def test_no_shield_allows_everything():
    assert check_shield(NoShield()).allowed
    assert NoShield().check(put("red block", "glass vase"), SCENE).allowed


def test_bounds_must_be_ordered():
    with pytest.raises(ValueError, match="low < high"):
        Bounds(x=(1.0, 0.0), y=(0, 1), z=(0, 1))


# --------------------------------------------------------------------------- motion rules


class FakeProbe:
    """Answers sweeps from a fixed obstruction, and remembers what it was asked."""

    def __init__(self, hit=None):
        self.hit, self.calls = hit, []

    def sweep(self, start, end, orientation, margin, ignore, only=None):
        self.calls.append({"ignore": set(ignore), "only": only, "margin": margin})
        return self.hit


def context(previous=None, probe=None, ee=(0.5, 0.0, 0.9), call=SkillCall(skill="pick", args={"object": "red block"})):
    robot = synthetic_robot_state()
    robot = robot.model_copy(update={"ee_pose": robot.ee_pose.model_copy(update={"position": ee})})
    obs = Observation(step=0, time=0.0, dt=0.05, robot=robot)
    return ActionContext(call=call, involved=frozenset({"red block"}), scene=SCENE, obs=obs, previous=previous,
                         probe=probe)


def test_a_fast_step_is_shortened_to_the_speed_limit_and_recorded_as_a_repair():
    shield = BasicShield(BasicShieldConfig(max_ee_speed=0.5, collision=None))
    fast = Action(ee_position=(0.6, 0.0, 0.9))  # 10 cm in one 50 ms step: 2 m/s
    verdict = shield.check_action(fast, context())
    assert verdict.allowed and verdict.action is not None
    assert verdict.action.ee_position == pytest.approx((0.525, 0.0, 0.9))  # 0.5 m/s * 0.05 s
    assert [(v.rule, v.repaired) for v in verdict.violations] == [("max_ee_speed", True)]
    assert "2.00 m/s" in verdict.violations[0].reason
    slow = Action(ee_position=(0.51, 0.0, 0.9))
    assert shield.check_action(slow, context()).action == slow


def test_speed_is_measured_from_the_previous_command():
    shield = BasicShield(BasicShieldConfig(max_ee_speed=0.5, collision=None))
    previous = Action(ee_position=(0.59, 0.0, 0.9))  # the controller lags behind its commands
    assert shield.check_action(Action(ee_position=(0.6, 0.0, 0.9)), context(previous=previous)).violations == ()


def test_end_effector_target_outside_the_workspace_is_refused():
    verdict = BasicShield().check_action(Action(ee_position=(0.5, 0.47, 0.9)), context(ee=(0.5, 0.45, 0.9)))
    assert not verdict.allowed and verdict.action is None
    assert verdict.violations[-1].rule == "workspace_bounds" and "outside the workspace" in verdict.violations[-1].reason


def test_end_effector_may_not_reach_down_into_a_keep_out_zone_but_may_pass_over_it():
    shield = BasicShield(BasicShieldConfig(collision=None))
    low = shield.check_action(Action(ee_position=(0.65, -0.1, 0.68)), context(ee=(0.65, -0.1, 0.69)))
    assert not low.allowed and low.violations[-1].rule == "keep_out"
    high = shield.check_action(Action(ee_position=(0.65, -0.1, 0.85)), context(ee=(0.65, -0.1, 0.85)))
    assert high.allowed


def test_path_check_refuses_what_the_probe_reports_and_says_where():
    hit = Obstruction(label="glass vase", distance=-0.004, at=(0.45, -0.2, 0.7))
    probe = FakeProbe(hit)
    verdict = BasicShield().check_action(Action(ee_position=(0.5, 0.0, 0.9)), context(probe=probe))
    assert not verdict.allowed and verdict.violations[-1].rule == "collision"
    assert "would hit the glass vase" in verdict.violations[-1].reason
    # The call's own objects are exempt; by default only fragile objects are protected.
    assert probe.calls[0]["ignore"] == {"red block"} and probe.calls[0]["only"] == ("*glass*", "*vase*", "*fragile*")
    assert probe.calls[0]["margin"] == pytest.approx(0.01)


def test_path_check_of_every_object_on_request():
    probe = FakeProbe()
    shield = BasicShield(BasicShieldConfig(collision=CollisionCheckConfig(objects="all")))
    assert shield.check_action(Action(ee_position=(0.5, 0.0, 0.9)), context(probe=probe)).allowed
    assert probe.calls[0]["only"] is None


def test_path_check_is_skipped_without_a_probe_and_switched_off_by_config():
    hit = Obstruction(label="glass vase", distance=-0.01, at=(0.45, -0.2, 0.7))
    assert BasicShield().check_action(Action(ee_position=(0.5, 0.0, 0.9)), context(probe=None)).allowed
    off = BasicShield(BasicShieldConfig(collision=None))
    assert off.check_action(Action(ee_position=(0.5, 0.0, 0.9)), context(probe=FakeProbe(hit))).allowed


def test_a_repaired_step_is_what_the_later_rules_judge():
    # 2 m/s towards the keep-out zone: shortened to 2.5 cm, which stays outside it.
    shield = BasicShield(BasicShieldConfig(collision=None))
    verdict = shield.check_action(Action(ee_position=(0.65, -0.1, 0.68)), context(ee=(0.50, -0.1, 0.68)))
    assert verdict.allowed and verdict.action.ee_position[0] == pytest.approx(0.525)  # the zone starts at 0.56


def test_nothing_is_let_go_above_a_keep_out_zone_or_a_fragile_object():
    shield = BasicShield(BasicShieldConfig(collision=None))
    holding = Action(ee_position=(0.65, -0.1, 0.9), gripper=1.0)
    over_zone = context(previous=holding, ee=(0.65, -0.1, 0.9))
    release = Action(ee_position=(0.65, -0.1, 0.9), gripper=0.0)
    refused = shield.check_action(release, over_zone)
    assert not refused.allowed and refused.violations[-1].rule == "release"
    assert "keep-out zone hazard" in refused.violations[-1].reason
    assert shield.check_action(holding, over_zone).allowed  # carrying over it high up is fine
    over_vase = context(previous=holding.model_copy(update={"ee_position": (0.46, -0.21, 0.9)}), ee=(0.46, -0.21, 0.9))
    assert "fragile glass vase" in shield.check_action(release.model_copy(update={"ee_position": (0.46, -0.21, 0.9)}),
                                                       over_vase).violations[-1].reason
    over_bowl = context(previous=holding.model_copy(update={"ee_position": (0.6, 0.2, 0.9)}), ee=(0.6, 0.2, 0.9))
    assert shield.check_action(release.model_copy(update={"ee_position": (0.6, 0.2, 0.9)}), over_bowl).allowed
