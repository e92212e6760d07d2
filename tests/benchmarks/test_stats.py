"""Wilson intervals, failure-stage classification and failure attribution."""

import math

import pytest

from benchmarks.harness.stats import (
    Blame,
    attribute,
    attribution_counts,
    classify_failure,
    failure_stage,
    wilson_interval,
)


def wilson_by_formula(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    # Written out as in Wilson (1927): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    p = k / n
    root = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (p + z * z / (2 * n) - root) / (1 + z * z / n), (p + z * z / (2 * n) + root) / (1 + z * z / n)


@pytest.mark.parametrize("k,n,expected", [
    (0, 10, (0.0, 0.2775)),  # published values for the 95% Wilson interval
    (10, 10, (0.7225, 1.0)),
    (5, 10, (0.2366, 0.7634)),
    (1, 4, (0.0456, 0.6994)),
])
def test_wilson_interval_matches_known_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=1e-4) and high == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (3, 7), (49, 50), (0, 50), (17, 200)])
def test_wilson_interval_matches_the_formula_and_contains_the_rate(k, n):
    low, high = wilson_interval(k, n)
    ref_low, ref_high = wilson_by_formula(k, n)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12) and high == pytest.approx(min(1.0, ref_high), abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_interval_narrows_with_more_episodes_and_knows_nothing_without_any():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    small, large = wilson_interval(5, 10), wilson_interval(50, 100)
    assert large[1] - large[0] < small[1] - small[0]
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


@pytest.mark.parametrize("reason,stage", [
    (None, "unknown"),
    ("planning: no plan for 'put the blob in the bowl'", "planning"),
    ("no final plan after 20 planner decisions", "planning"),
    ("the planner returned an empty plan that is not final", "planning"),
    ("gave up after 2 replans; last failure: safety shield refused the plan: workspace: target outside",
     "safety"),
    ("gave up after 2 replans; last failure: pick: grasp: gripper closed on nothing at red block", "skill: pick"),
    ("gave up after 1 replans; last failure: place: descend: end effector did not reach (0.1, 0.2, 0.3)",
     "skill: place"),
    ("step budget of 800 control steps used up (pick(object='red block'): step budget of 800 control steps used up)",
     "skill: pick"),
    ("gave up after 2 replans; last failure: no object labelled 'red block' in the scene; perceived: blue block",
     "grounding"),
    ("the planner asked for help (which block?) and nobody answered", "help"),
    ("task not achieved: red_block_in_blue_bowl", "task not achieved"),
    ("crashed: RuntimeError: physics server died", "crashed"),
    ("something nobody anticipated", "other"),
])
def test_failure_reasons_are_classified_by_the_stage_they_name(reason, stage):
    assert classify_failure(reason) == stage


@pytest.mark.parametrize("failure,stage", [
    ({"stage": "planning", "kind": "language_model", "skill": None}, "planning"),
    ({"stage": "control", "kind": "replans_exhausted", "skill": "pick"}, "control: pick"),
    ({"stage": "control", "kind": "step_budget", "skill": None}, "control"),
    ({"stage": "perception", "kind": "object_not_found", "skill": "place"}, "perception"),
    ({"stage": "crash", "kind": "exception"}, "crash"),
])
def test_a_typed_failure_is_counted_by_its_stage_whatever_its_reason_says(failure, stage):
    assert failure_stage({"failure": failure, "failure_reason": "task not achieved: in_bowl"}) == stage


@pytest.mark.parametrize("reason,stage", [
    ("gave up after 2 replans; last failure: pick: grasp: gripper closed on nothing at red block", "control: pick"),
    ("gave up after 2 replans; last failure: no object labelled 'red block' in the scene; perceived: blue block",
     "perception"),
    ("task not achieved: red_block_in_blue_bowl", "task"),
    ("crashed: RuntimeError: physics server died", "crash"),
    ("planning: no plan", "planning"),
    ("something nobody anticipated", "other"),
])
def test_an_old_record_without_a_typed_failure_is_counted_by_its_reason(reason, stage):
    assert failure_stage({"success": False, "failure_reason": reason}) == stage


@pytest.mark.parametrize("perception,planner,both,blame", [
    (True, False, True, Blame.PERCEPTION),
    (False, True, True, Blame.PLANNING),
    (True, True, True, Blame.EITHER),
    (False, False, True, Blame.BOTH),
    (False, False, False, Blame.CONTROL),
    (True, False, False, Blame.PERCEPTION),  # the single fix worked; a flaky both-run does not undo that
    (None, True, True, Blame.UNKNOWN),
    (False, False, None, Blame.UNKNOWN),
])
def test_a_failed_seed_is_blamed_on_what_fixes_it(perception, planner, both, blame):
    assert attribute(perception, planner, both) is blame


def test_attribution_counts_list_every_category():
    counts = attribution_counts({1: Blame.PERCEPTION, 2: Blame.PERCEPTION, 5: Blame.CONTROL})
    assert counts == {"perception": 2, "planning": 0, "either": 0, "both": 0, "control": 1, "unknown": 0}
