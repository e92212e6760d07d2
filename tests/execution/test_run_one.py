"""run_one: a crashed episode still leaves its record and the trace up to the crash."""

from __future__ import annotations

import json

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.execution import RunJob, run_one
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.planning.oracle import OraclePlanner
from fmrobot.runner import Runner
from fmrobot.safety.basic import BasicShield


class BrokenPolicy(ScriptedPolicy):
    """Raises an unexpected error (a bug, not a skill failure) a few steps into the first skill."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def act(self, obs):
        self.steps += 1
        if self.steps > 3:
            raise RuntimeError("policy bug")
        return super().act(obs)


def test_a_crash_writes_a_record_and_the_trace_so_far(pick_place_env, tmp_path):
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=OraclePlanner(),
                    policy=BrokenPolicy(), shield=BasicShield())
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(4,))
    result = run_one(runner, job, 4)
    assert result.failure_reason == "crashed: RuntimeError: policy bug" and not result.success
    assert result.trace_file == "traces/seed_000004.jsonl"
    events = [json.loads(line) for line in (tmp_path / result.trace_file).read_text().splitlines()]
    assert [e["event"] for e in events[:2]] == ["reset", "perception"] and events[0]["seed"] == 4
    assert events[-1] == {"event": "crash", "error": "RuntimeError: policy bug"}


def test_a_finished_episode_writes_its_whole_trace(pick_place_env, tmp_path):
    runner = Runner(env=pick_place_env, perceptor=OraclePerceptor(), planner=OraclePlanner(),
                    policy=ScriptedPolicy(), shield=BasicShield())
    job = RunJob(config={"task": {"name": "pick_place"}}, run_dir=str(tmp_path), seeds=(5,))
    result = run_one(runner, job, 5)
    events = [json.loads(line) for line in (tmp_path / result.trace_file).read_text().splitlines()]
    assert events[0]["seed"] == 5 and events[-1]["event"] == "result"
