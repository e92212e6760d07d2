"""Several episode recorders watching one episode: demonstrations and a Rerun recording at once."""

from __future__ import annotations

from fmrobot.interfaces import EpisodeRecorder, PerceptionRecorder
from fmrobot.types import (
    Action,
    EpisodeResult,
    EpisodeSpec,
    Observation,
    SceneDescription,
    SkillCall,
    SkillSpec,
    SkillStatus,
)


class RecorderTee:
    """Tells each of its recorders everything, in the order they were given; `perceived` goes to those
    that take it (PerceptionRecorder)."""

    def __init__(self, *recorders: EpisodeRecorder):
        self.recorders = recorders

    def begin(self, episode: EpisodeSpec, obs: Observation) -> None:
        for recorder in self.recorders:
            recorder.begin(episode, obs)

    def perceived(self, obs: Observation, scene: SceneDescription) -> None:
        for recorder in self.recorders:
            if isinstance(recorder, PerceptionRecorder):
                recorder.perceived(obs, scene)

    def skill_started(self, call: SkillCall, spec: SkillSpec, scene: SceneDescription, obs: Observation) -> None:
        for recorder in self.recorders:
            recorder.skill_started(call, spec, scene, obs)

    def step(self, obs: Observation, action: Action) -> None:
        for recorder in self.recorders:
            recorder.step(obs, action)

    def skill_ended(self, call: SkillCall, obs: Observation, status: SkillStatus) -> None:
        for recorder in self.recorders:
            recorder.skill_ended(call, obs, status)

    def end(self, result: EpisodeResult) -> None:
        for recorder in self.recorders:
            recorder.end(result)


def watching(*recorders: EpisodeRecorder | None) -> EpisodeRecorder | None:
    """The recorder to hand the runner: None for none, the one itself, or a tee of several."""
    present = [r for r in recorders if r is not None]
    if len(present) <= 1:
        return present[0] if present else None
    return RecorderTee(*present)
