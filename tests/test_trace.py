"""Typed trace events: traces written before the events were typed read, and the runner's trace round-trips."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.outputs import write_trace
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.planning.scripted import ScriptedPlanner
from fmrobot.runner import Runner
from fmrobot.safety.basic import BasicShield
from fmrobot.trace import (
    CrashEvent,
    DecisionEvent,
    FaultEvent,
    HelpEvent,
    HomeEvent,
    PerceptionEvent,
    PlanningErrorEvent,
    ResetEvent,
    ResultEvent,
    SafetyEvent,
    SimulationErrorEvent,
    SkillEvent,
    parse_event,
    read_trace,
    trace_json,
)
from fmrobot.types import SceneDescription, SkillStatus

# Written by the runner before its events were typed (help and a failed decision, a refused plan,
# a planning error, a crash, an injected grasp slip, a physics blow-up).
OLD_TRACES = sorted((Path(__file__).parent / "fixtures" / "traces_v1").glob("*.jsonl"))


@pytest.mark.parametrize("path", OLD_TRACES, ids=lambda p: p.stem)
def test_a_trace_written_before_the_events_were_typed_reads_and_writes_back_the_same(path):
    events = read_trace(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e.event for e in events] == [line["event"] for line in lines]
    assert trace_json(events) == lines  # same keys, same values


def test_the_old_traces_hold_every_kind_of_event_and_read_as_their_types():
    events = [e for path in OLD_TRACES for e in read_trace(path)]
    assert {type(e) for e in events} == {ResetEvent, PerceptionEvent, DecisionEvent, HelpEvent, SafetyEvent,
                                        SkillEvent, HomeEvent, PlanningErrorEvent, SimulationErrorEvent,
                                        FaultEvent, ResultEvent, CrashEvent}
    help_replan = read_trace(OLD_TRACES[0].parent / "help_replan_home.jsonl")
    failed = next(e for e in help_replan if isinstance(e, PlanningErrorEvent))
    assert failed.type == "LanguageModelError" and failed.replanning is True
    asked = next(e for e in help_replan if isinstance(e, DecisionEvent) and e.decision.help is not None)
    assert asked.decision.plan is None and len(asked.decision.help.choices) == 2
    skill = next(e for e in help_replan if isinstance(e, SkillEvent))
    assert skill.status is SkillStatus.FAILURE and skill.call.skill == "pick"
    scene = next(e for e in help_replan if isinstance(e, PerceptionEvent)).scene
    assert isinstance(scene, SceneDescription) and scene.objects


def test_fields_older_writers_left_out_stay_out_and_fault_details_are_kept():
    assert "replanning" not in PlanningErrorEvent(error="x", type="PlanningError").to_json()
    assert PlanningErrorEvent(error="x", type="E", replanning=False).to_json()["replanning"] is False
    fault = parse_event({"event": "fault", "fault": "grasp_slip", "effect": "slipped", "step": 3, "object": "cube"})
    assert isinstance(fault, FaultEvent) and fault.to_json()["object"] == "cube"
    assert "step" not in parse_event({"event": "fault", "fault": "f", "effect": "e"}).to_json()


def test_an_unknown_event_or_a_missing_field_does_not_read():
    with pytest.raises(ValidationError):
        parse_event({"event": "teleport", "where": "mars"})
    with pytest.raises(ValidationError):
        parse_event({"event": "crash"})


def test_the_runner_trace_reads_back_as_the_events_it_wrote(pick_place_env, tmp_path):
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=ScriptedPlanner(),
                    policy=ScriptedPolicy(), shield=BasicShield())
    outcome = runner.run_episode(2)
    path = write_trace(tmp_path, 2, outcome.trace)
    assert read_trace(path) == outcome.events
    assert isinstance(outcome.events[-1], ResultEvent) and outcome.events[-1].success
