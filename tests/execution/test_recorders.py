"""Several recorders watch one episode: each is told everything, and perceptions go to those that take them."""

from __future__ import annotations

from fmrobot.execution.recorders import RecorderTee, watching
from fmrobot.interfaces import PerceptionRecorder


class Calls:
    """An episode recorder that notes each call it gets."""

    def __init__(self, log: list[str], name: str):
        self.log, self.name = log, name

    def begin(self, episode, obs):
        self.log.append(f"{self.name}.begin")

    def skill_started(self, call, spec, scene, obs):
        self.log.append(f"{self.name}.skill_started")

    def step(self, obs, action):
        self.log.append(f"{self.name}.step")

    def skill_ended(self, call, obs, status):
        self.log.append(f"{self.name}.skill_ended")

    def end(self, result):
        self.log.append(f"{self.name}.end")


class Looking(Calls):
    def perceived(self, obs, scene):
        self.log.append(f"{self.name}.perceived")


def test_a_tee_tells_every_recorder_in_order_and_perceptions_only_to_those_that_take_them():
    log: list[str] = []
    plain, looking = Calls(log, "plain"), Looking(log, "looking")
    assert watching(None, None) is None and watching(plain, None) is plain
    tee = watching(plain, looking)
    assert isinstance(tee, RecorderTee) and isinstance(tee, PerceptionRecorder)
    tee.begin(None, None)
    tee.perceived(None, None)
    tee.skill_started(None, None, None, None)
    tee.step(None, None)
    tee.skill_ended(None, None, None)
    tee.end(None)
    assert log == ["plain.begin", "looking.begin", "looking.perceived", "plain.skill_started", "looking.skill_started",
                   "plain.step", "looking.step", "plain.skill_ended", "looking.skill_ended", "plain.end",
                   "looking.end"]
