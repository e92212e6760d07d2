"""`policy=diffusion`: a diffusion policy over action chunks (DDPM training, DDIM sampling).

Trained by `python -m fmrobot.train policy=diffusion task=pick_place`
(fmrobot/control/learned/training.py); runs through the shared chunked runtime
(fmrobot/control/learned/runtime.py). Each prediction denoises a 16-step chunk in
`inference_steps` DDIM steps from noise drawn from a generator seeded by the situation.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fmrobot.data.features import ACTION_DIM, OBSERVATION_DIM
from fmrobot.control.learned.runtime import ChunkedSkillPolicy, LearnedPolicyConfig


class DiffusionPolicyConfig(LearnedPolicyConfig):
    train_diffusion_steps: int = Field(default=100, ge=2)  # DDPM noise levels (architecture: fixed at training)
    inference_steps: int = Field(default=10, ge=1)  # DDIM steps per predicted chunk
    # The shipped pick_place checkpoint's size (configs/policy/diffusion.yaml lists the same).
    hidden: int = Field(default=384, ge=8)
    blocks: int = Field(default=3, ge=1)


class DiffusionPolicy(ChunkedSkillPolicy):
    kind = "diffusion"
    Config = DiffusionPolicyConfig

    def __init__(self, config: DiffusionPolicyConfig | None = None, checkpoint: dict[str, Any] | None = None):
        super().__init__(config, checkpoint)
        from fmrobot.control.learned.noise_schedule import NoiseSchedule

        self.schedule = NoiseSchedule(int(self.architecture_info["train_diffusion_steps"]))
        if self.config.inference_steps > self.schedule.train_steps:
            from fmrobot.errors import ConfigError

            raise ConfigError(f"policy.inference_steps={self.config.inference_steps} exceeds the "
                              f"{self.schedule.train_steps} noise levels the checkpoint was trained with")

    @classmethod
    def architecture(cls, config: DiffusionPolicyConfig, num_skills: int) -> dict[str, Any]:
        return {"cond_dim": config.obs_horizon * OBSERVATION_DIM + num_skills, "horizon": config.horizon,
                "action_dim": ACTION_DIM, "hidden": config.hidden, "blocks": config.blocks,
                "train_diffusion_steps": config.train_diffusion_steps}

    @classmethod
    def build_networks(cls, architecture: dict[str, Any], num_skills: int):
        from fmrobot.control.learned.models import NoisePredictor, Normalizer

        network = {k: v for k, v in architecture.items() if k != "train_diffusion_steps"}
        return NoisePredictor(**network), Normalizer(OBSERVATION_DIM, ACTION_DIM)

    @classmethod
    def objective(cls, architecture: dict[str, Any]):
        """Noise-prediction error at a random noise level per sample (DDPM)."""
        import torch

        from fmrobot.control.learned.noise_schedule import NoiseSchedule

        schedule = NoiseSchedule(int(architecture["train_diffusion_steps"]))

        def loss(model, cond, clean, generator):
            noise = torch.randn(clean.shape, generator=generator)
            steps = torch.randint(0, schedule.train_steps, (clean.shape[0],), generator=generator)
            return ((model(schedule.add_noise(clean, noise, steps), steps, cond) - noise) ** 2).mean()

        return loss

    def _predict_normalized(self, cond, generator):
        return self.schedule.sample(lambda x, t: self.model(x, t, cond), (1, self.horizon, ACTION_DIM),
                                    self.config.inference_steps, generator)
