"""success_detector=vlm: a verdict per executed step from a fresh image, recorded beside the simulator's, and a
"no" fed back to the planner as a failed step (Inner Monologue)."""

from __future__ import annotations

import json

import pytest

from fmrobot import registry
from fmrobot.control.skills import PICK
from fmrobot.errors import ImagesNotSupportedError
from fmrobot.success_detection import NoSuccessDetector
from fmrobot.success_detection.vlm import VlmSuccessDetector, VlmSuccessDetectorConfig
from fmrobot.testing import synthetic_observation
from fmrobot.types import SkillCall
from tests.fakes import KeywordLM, SeeingScriptedLM

CALL = SkillCall(skill="pick", args={"object": "red block"})


def test_the_detector_judges_a_step_from_the_image_under_the_verdict_schema():
    lm = SeeingScriptedLM(["yes it worked", json.dumps({"reason": "the red block is in the gripper", "achieved": True}),
                           "maybe", '{"reason": "x"}'])
    detector = VlmSuccessDetector(VlmSuccessDetectorConfig(max_attempts=2), llm=lm)
    verdict = detector.judge("put the red block in the green bowl", CALL, PICK, synthetic_observation())
    assert verdict.achieved and verdict.reason == "the red block is in the gripper"
    asked = lm.seen[0][-1]
    assert len(asked.images) == 1 and "pick up the red block" in asked.text and "green bowl" in asked.text
    assert set(lm.schemas[0].model_json_schema()["properties"]) == {"reason", "achieved"}
    assert "no JSON object" in lm.seen[1][-1].content  # the invalid answer was re-prompted with the error
    # Two answers that never validate: no verdict rather than a guess.
    assert detector.judge("put the red block in the green bowl", CALL, PICK, synthetic_observation()) is None
    with pytest.raises(ImagesNotSupportedError, match="success detector vlm needs a language model that reads"):
        VlmSuccessDetector(llm=KeywordLM())
    assert registry.available("success_detector") == ["none", "vlm"]
    assert NoSuccessDetector().judge("x", CALL, PICK, synthetic_observation()) is None


@pytest.mark.slow
def test_a_no_is_fed_back_to_the_planner_and_every_verdict_is_recorded_beside_the_simulators(pick_place_env):
    from fmrobot.control.scripted import ScriptedPolicy
    from fmrobot.perception.oracle import OraclePerceptor
    from fmrobot.planning.vlm import VlmPlanner
    from fmrobot.runner import Runner
    from fmrobot.safety.basic import BasicShield
    from fmrobot.trace import DetectionEvent, parse_event
    from fmrobot.types import EpisodeResult, SkillStatus
    from tests.fakes import ReadingVLM

    lm = ReadingVLM(verdicts=[True, False])  # "no" on the place, though the policy reported success
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=VlmPlanner(llm=lm),
                    policy=ScriptedPolicy(), shield=BasicShield(), success_detector=VlmSuccessDetector(llm=lm))
    outcome = runner.run_episode(0)
    result = outcome.result
    plans = [text for _, text, schema in lm.calls if schema != "VerdictJSON"]
    assert len(plans) == 2 and result.replans == 1  # the "no" made the runner replan
    assert ("step 2 (place(target=" in plans[1]
            and "ended in failure: the success detector saw no success: the block is still on the table" in plans[1])
    detections = [e for e in outcome.events if isinstance(e, DetectionEvent)]
    assert [(e.call.skill, e.skill_status, e.achieved) for e in detections] == [
        ("pick", SkillStatus.SUCCESS, True), ("place", SkillStatus.SUCCESS, False),
        ("pick", SkillStatus.SUCCESS, True), ("place", SkillStatus.SUCCESS, True)]
    assert parse_event(json.loads(json.dumps(detections[0].to_json()))) == detections[0]
    assert result.success, result.failure_reason
    record = EpisodeResult.model_validate_json(result.model_dump_json()).detector  # as results.json keeps it
    assert [(c.step, c.skill_status, c.achieved) for c in record.steps] == [
        (str(e.call), e.skill_status, e.achieved) for e in detections]
    assert record.final is True and result.latency.detection > 0


@pytest.mark.slow
def test_a_detector_whose_model_fails_gives_no_verdict_and_says_why(pick_place_env):
    from fmrobot.control.scripted import ScriptedPolicy
    from fmrobot.errors import LanguageModelError
    from fmrobot.perception.oracle import OraclePerceptor
    from fmrobot.planning.scripted import ScriptedPlanner
    from fmrobot.runner import Runner
    from fmrobot.safety.basic import BasicShield
    from fmrobot.trace import DetectionEvent

    class DownVLM(SeeingScriptedLM):
        def generate(self, messages, schema=None):
            raise LanguageModelError("server at http://127.0.0.1:9 unreachable")

    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=ScriptedPlanner(),
                    policy=ScriptedPolicy(), shield=BasicShield(),
                    success_detector=VlmSuccessDetector(llm=DownVLM([])))
    outcome = runner.run_episode(0)
    assert outcome.result.success and outcome.result.replans == 0 and outcome.result.detector is None
    events = [e for e in outcome.events if isinstance(e, DetectionEvent)]
    assert len(events) == 2 and all(e.achieved is None and "unreachable" in e.reason for e in events)


@pytest.mark.slow
def test_a_run_with_the_tiny_vlm_writes_the_verdicts_to_results_and_trace(tmp_path):
    import subprocess
    import sys

    from fmrobot.llm.tiny_vlm import cached_tiny_vlm

    run_dir = tmp_path / "out"
    # A plan, not a question (which random weights may write to its length limits, past max_new_tokens):
    # the verdicts on its steps are what this test reads.
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", "task=pick_place", "perception=oracle", "planner=vlm",
         "planner.max_steps=2", "planner.ask_for_help=false", "success_detector=vlm", "llm=transformers",
         f"llm.model={cached_tiny_vlm('qwen2_vl')}", "llm.max_new_tokens=300", "video=none", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: the random model's episode failed, as expected
    (record,) = json.loads((run_dir / "results.json").read_text())["episodes"]
    trace = [json.loads(line) for line in (run_dir / record["trace_file"]).read_text().splitlines()]
    detections = [e for e in trace if e["event"] == "detection"]
    assert detections and record["detector"]["steps"] == [
        {"step": _call_text(e["call"]), "skill_status": e["skill_status"], "achieved": e["achieved"],
         "reason": e["reason"]} for e in detections if e["achieved"] is not None]
    assert record["detector"]["final"] == record["detector"]["steps"][-1]["achieved"]
    assert record["failure"] is not None or record["success"]


def _call_text(call: dict) -> str:
    return str(SkillCall(skill=call["skill"], args=call["args"]))
