"""Success detectors (`success_detector=<name>`): after each executed skill, a component looks at the
scene and says whether the step achieved its intent, as Inner Monologue's success detector does.

The runner (fmrobot/runner.py, `_detect`) asks the detector after every skill that moved the
robot, records its verdict beside the status the policy reported from simulator state (trace
`detection` events and `EpisodeResult.detector`), and turns a "no" on a step the policy
finished into a failed step, which the planner gets as feedback and replans after.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from fmrobot.types import Observation, SkillCall, SkillSpec, SuccessVerdict


class NoSuccessDetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSuccessDetector:
    """No detector: success is judged by the simulator's predicates alone (the default)."""

    Config = NoSuccessDetectorConfig
    needs_images = False

    def __init__(self, config: NoSuccessDetectorConfig | None = None):
        self.config = config or NoSuccessDetectorConfig()

    def judge(self, instruction: str, call: SkillCall, spec: SkillSpec, obs: Observation) -> SuccessVerdict | None:
        return None
