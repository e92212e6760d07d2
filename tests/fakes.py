"""Fakes and helpers in one place: scripted components that fail on cue, config composition."""

from __future__ import annotations

from typing import Sequence

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.types import Action, Observation, SceneDescription, SkillCall, SkillStatus


def compose_config(overrides: Sequence[str]) -> dict:
    """Compose the packaged Hydra config with overrides, resolved to plain containers."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module("fmrobot.configs", version_base="1.3"):
        cfg = compose("run", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


class FlakyPolicy(ScriptedPolicy):
    """The scripted policy, except that the first `failures` skill calls fail at once."""

    def __init__(self, failures: int = 1):
        super().__init__()
        self.failures_left = failures
        self.calls: list[str] = []
        self._failing = False

    def reset(self, call: SkillCall, scene: SceneDescription, obs: Observation) -> None:
        self.calls.append(str(call))
        self._failing = self.failures_left > 0
        if self._failing:
            self.failures_left -= 1
            return
        super().reset(call, scene, obs)

    def status(self, obs: Observation) -> SkillStatus:
        return SkillStatus.FAILURE if self._failing else super().status(obs)

    def act(self, obs: Observation) -> Action:
        return super().act(obs)

    def failure_reason(self) -> str:
        return "injected failure" if self._failing else super().failure_reason()
