"""benchmarks.vlm_suite runs end to end on the tiny random VLM and says plainly what its figures are."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_the_vlm_suite_runs_on_the_tiny_random_model_and_says_so(tmp_path):
    from benchmarks import vlm_suite

    out = tmp_path / "vlm_suite.json"
    vlm_suite.main(["--tasks", "pick_place", "--episodes", "1", "--out", str(out)])
    figures = json.loads(out.read_text())
    text = out.with_suffix(".md").read_text()
    assert figures["random_tiny"] and vlm_suite.RANDOM_NOTE in text.splitlines()[2]
    plans = figures["plans"]
    assert plans["episodes"] == 1 and plans["decisions"] >= 1
    assert plans["valid_first_attempt"] == plans["decisions"]  # constrained decoding: every answer validates
    steps = figures["detector"]["steps"]
    judged = steps["true_yes"] + steps["false_yes"] + steps["false_no"] + steps["true_no"]
    assert judged == figures["episodes"][0]["detector_steps"] >= 1
    assert figures["latency_seconds"]["plan"]["count"] == plans["decisions"]
    assert figures["image_tokens"]["plan"]["mean"] > 0 and figures["environment"]["commit"]
