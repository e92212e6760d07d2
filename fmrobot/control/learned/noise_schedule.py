"""DDPM training noise and DDIM sampling (Ho et al., 2020; Song et al., 2021), with the cosine schedule.

Training adds noise at a random one of `train_steps` steps and the network learns to
predict it. Sampling runs DDIM deterministically (eta = 0) over a few evenly spaced
steps of the same schedule: 10 instead of 100 network passes per chunk.
"""

from __future__ import annotations

import math
from typing import Callable

import torch


class NoiseSchedule:
    def __init__(self, train_steps: int = 100):
        self.train_steps = train_steps
        # squared-cosine cumulative signal level (Nichol & Dhariwal, 2021), betas capped at 0.999
        t = torch.arange(train_steps + 1, dtype=torch.float64) / train_steps
        f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = (1.0 - f[1:] / f[:-1]).clamp(max=0.999)
        self.alpha_bar = torch.cumprod(1.0 - betas, dim=0).float()  # (train_steps,)

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        a = self.alpha_bar[steps].view(-1, *([1] * (clean.dim() - 1)))
        return a.sqrt() * clean + (1.0 - a).sqrt() * noise

    def sample(self, predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape: tuple[int, ...],
               inference_steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM from pure noise to a clean sample in [-1, 1]; `predict_noise(x, steps)` is the network."""
        x = torch.randn(shape, generator=generator)
        timesteps = torch.linspace(self.train_steps - 1, 0, inference_steps).round().long().tolist()
        for i, t in enumerate(timesteps):
            a_t = self.alpha_bar[t]
            a_prev = self.alpha_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.tensor(1.0)
            eps = predict_noise(x, torch.full((shape[0],), t, dtype=torch.long))
            clean = ((x - (1.0 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1.0, 1.0)
            eps = (x - a_t.sqrt() * clean) / (1.0 - a_t).sqrt()  # consistent with the clipped estimate
            x = a_prev.sqrt() * clean + (1.0 - a_prev).sqrt() * eps
        return x
