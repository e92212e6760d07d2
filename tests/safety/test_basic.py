import pytest

from fmrobot.safety.basic import BasicShield, BasicShieldConfig, NoShield
from fmrobot.safety.rules import Bounds
from fmrobot.testing import check_shield, synthetic_context


def test_plan_inside_the_workspace_is_allowed():
    verdict = check_shield(BasicShield())
    assert verdict.allowed and verdict.plan == synthetic_context().oracle_plan


def test_object_outside_the_workspace_is_refused_with_the_reason():
    shield = BasicShield(BasicShieldConfig(workspace=Bounds(x=(0.5, 0.9), y=(-0.5, 0.5), z=(0.5, 1.2))))
    verdict = check_shield(shield)
    assert not verdict.allowed and verdict.plan is None
    assert [v.step_index for v in verdict.violations] == [0]  # the red block at x = 0.45
    assert "red block" in verdict.violations[0].reason and "outside the workspace" in verdict.violations[0].reason


def test_no_shield_allows_everything():
    assert check_shield(NoShield()).allowed


def test_bounds_must_be_ordered():
    with pytest.raises(ValueError, match="low < high"):
        Bounds(x=(1.0, 0.0), y=(0, 1), z=(0, 1))
