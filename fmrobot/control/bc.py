"""`policy=bc`: behaviour cloning of the scripted demonstrations, an MLP from observations to action chunks.

Trained by `python -m fmrobot.train policy=bc task=pick_place` (fmrobot/control/learned/training.py);
runs through the shared chunked runtime (fmrobot/control/learned/runtime.py).
"""

from __future__ import annotations

from typing import Any

from fmrobot.data.features import ACTION_DIM, OBSERVATION_DIM
from fmrobot.control.learned.runtime import ChunkedSkillPolicy, LearnedPolicyConfig


class BcPolicy(ChunkedSkillPolicy):
    kind = "bc"

    @classmethod
    def architecture(cls, config: LearnedPolicyConfig, num_skills: int) -> dict[str, Any]:
        return {"cond_dim": config.obs_horizon * OBSERVATION_DIM + num_skills, "horizon": config.horizon,
                "action_dim": ACTION_DIM, "hidden": config.hidden, "layers": 3}

    @classmethod
    def build_networks(cls, architecture: dict[str, Any], num_skills: int):
        from fmrobot.control.learned.models import ChunkRegressor, Normalizer

        return ChunkRegressor(**architecture), Normalizer(OBSERVATION_DIM, ACTION_DIM)

    @classmethod
    def objective(cls, architecture: dict[str, Any]):
        """Mean squared error of the normalized chunk."""

        def loss(model, cond, targets, generator):
            return ((model(cond) - targets) ** 2).mean()

        return loss

    def _predict_normalized(self, cond, generator):
        return self.model(cond)
