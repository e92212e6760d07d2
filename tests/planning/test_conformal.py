import json

import numpy as np
import pytest

from fmrobot.errors import ConfigError
from fmrobot.planning.conformal import (
    HelpCalibration,
    conformal_threshold,
    load_calibration,
    prediction_set,
    set_statistics,
)
from fmrobot.planning.llm_scoring import LlmScoringConfig, LlmScoringPlanner
from fmrobot.testing import synthetic_context
from fmrobot.types import DetectedObject, SceneDescription


def test_threshold_is_the_finite_sample_quantile():
    values = [0.1 * k for k in range(1, 11)]  # 0.1 .. 1.0
    assert conformal_threshold(values, 0.8) == pytest.approx(0.9)  # rank ceil(11 * 0.8) = 9
    assert conformal_threshold(values, 0.5) == pytest.approx(0.6)  # rank ceil(5.5) = 6
    assert conformal_threshold(values[:3], 0.9) == 1.0  # too few examples: keep every option
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        conformal_threshold(values, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        conformal_threshold([], 0.9)


def test_sets_keep_every_option_above_the_cut_and_never_come_back_empty():
    assert prediction_set([0.1, 0.6, 0.3], threshold=0.75) == [1, 2]  # p >= 0.25
    assert prediction_set([0.1, 0.6, 0.3], threshold=0.1) == [1]  # nothing reaches 0.9: the top one stays
    stats = set_statistics([[1, 2], [0]], intended=[2, 1])
    assert stats == {"coverage": 0.5, "help_rate": 0.5, "average_set_size": 1.5, "decisions": 2}


@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_held_out_coverage_meets_the_target(coverage):
    # A model whose probabilities are right on average; labels drawn from them.
    rng = np.random.default_rng(0)

    def draw(n):
        p = rng.dirichlet(np.full(6, 0.4), size=n)
        return p, np.array([rng.choice(6, p=row) for row in p])

    p_cal, y_cal = draw(3000)
    threshold = conformal_threshold(1.0 - p_cal[np.arange(len(y_cal)), y_cal], coverage)
    p_test, y_test = draw(3000)
    stats = set_statistics([prediction_set(row, threshold) for row in p_test], y_test.tolist())
    assert abs(stats["coverage"] - coverage) < 0.03
    assert 1.0 < stats["average_set_size"] < 6.0  # informative: neither always one nor always all


def _two_block_scene() -> SceneDescription:
    def obj(label, x):
        return DetectedObject(label=label, score=1.0, position=(x, 0.0, 0.645), extent=(0.04, 0.04, 0.04), yaw=0.0)

    return SceneDescription(objects=(obj("red block", 0.4), obj("blue block", 0.5), obj("green bowl", 0.6)),
                            source="test")


class TableLM:
    """Scores continuations from a table (log-likelihoods); anything else is unlikely."""

    def __init__(self, table):
        self.table = table

    def score(self, prompt, continuations):
        return [self.table.get(c.strip(), -12.0) for c in continuations]


def _planner(tmp_path, threshold: float, table) -> LlmScoringPlanner:
    path = tmp_path / "help.json"
    path.write_text(HelpCalibration(coverage=0.9, threshold=threshold, examples=10).model_dump_json())
    config = LlmScoringConfig(calibrate=False, ask_for_help=True, help_calibration=str(path))
    return LlmScoringPlanner(config, llm=TableLM(table))


def test_planner_asks_which_block_when_the_instruction_does_not_say(tmp_path):
    planner = _planner(tmp_path, 0.6, {"pick up the red block": -1.0, "pick up the blue block": -1.2})
    decision = planner.plan("put the block in the green bowl", _two_block_scene(), synthetic_context())
    assert decision.plan is None
    assert set(decision.help.options) == {"pick up the red block", "pick up the blue block"}
    assert [c.steps[0].args["object"] for c in decision.help.choices] == \
        [o.split("the ")[1] for o in decision.help.options]
    assert "put the block in the green bowl" in decision.help.question


def test_planner_acts_without_asking_when_one_step_stands_out(tmp_path):
    planner = _planner(tmp_path, 0.6, {"pick up the red block": -0.2, "pick up the blue block": -4.0})
    decision = planner.plan("put the red block in the green bowl", _two_block_scene(), synthetic_context())
    assert decision.help is None and decision.plan.steps[0].args == {"object": "red block"}


def test_the_shipped_calibration_loads_and_records_how_it_was_made():
    shipped = load_calibration("smollm2-tabletop")
    assert 0.0 < shipped.threshold <= 1.0 and shipped.examples >= 300
    assert "benchmarks/ask_for_help.py" in shipped.made_by


def test_unknown_or_broken_calibrations_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="smollm2-tabletop"):
        load_calibration("nope")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"coverage": 2.0, "threshold": 0.5, "examples": 1}))
    with pytest.raises(ConfigError, match="not valid"):
        load_calibration(str(broken))
