"""The networks of the learned policies, small enough to train on two CPU cores in minutes.

Both read the same conditioning: the flattened observation history and a one-hot skill.
`ChunkRegressor` (behaviour cloning) maps it straight to an action chunk. `NoisePredictor`
(diffusion) predicts the noise in a noisy action chunk at a diffusion step; conditioning
and step enter every residual block through FiLM (a learned scale and shift), as in
Diffusion Policy (Chi et al., 2023), here with MLP blocks over the whole chunk instead of
a temporal U-Net: chunks are 16 steps of 7 numbers, and an MLP is several times faster
on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Normalizer(nn.Module):
    """Observations to zero mean and unit variance; actions to [-1, 1] per dimension (diffusion clips there)."""

    def __init__(self, obs_dim: int, action_dim: int):
        super().__init__()
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.register_buffer("action_low", -torch.ones(action_dim))
        self.register_buffer("action_high", torch.ones(action_dim))

    def fit(self, observations: torch.Tensor, actions: torch.Tensor) -> "Normalizer":
        obs = observations.reshape(-1, observations.shape[-1])
        act = actions.reshape(-1, actions.shape[-1])
        self.obs_mean.copy_(obs.mean(0))
        self.obs_std.copy_(obs.std(0).clamp_min(1e-3))  # constant features (a yaw never seen) stay finite
        low, high = act.min(0).values, act.max(0).values
        flat = (high - low) < 1e-4  # a dimension that never changed: keep it where it was
        self.action_low.copy_(torch.where(flat, low - 1.0, low))
        self.action_high.copy_(torch.where(flat, high + 1.0, high))
        return self

    def observations(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def actions(self, act: torch.Tensor) -> torch.Tensor:
        return 2.0 * (act - self.action_low) / (self.action_high - self.action_low) - 1.0

    def unnormalize_actions(self, act: torch.Tensor) -> torch.Tensor:
        return (act + 1.0) * 0.5 * (self.action_high - self.action_low) + self.action_low


def conditioning(normalizer: Normalizer, observations: torch.Tensor, skills: torch.Tensor,
                 num_skills: int) -> torch.Tensor:
    """(B, obs_horizon * obs_dim + num_skills): normalized history, flattened, and the skill one-hot."""
    obs = normalizer.observations(observations).flatten(1)
    return torch.cat([obs, nn.functional.one_hot(skills, num_skills).to(obs.dtype)], dim=1)


class ChunkRegressor(nn.Module):
    """Behaviour cloning: conditioning -> the whole normalized action chunk, in one pass."""

    def __init__(self, cond_dim: int, horizon: int, action_dim: int, hidden: int = 512, layers: int = 3):
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        blocks: list[nn.Module] = []
        width = cond_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.Mish()]
            width = hidden
        blocks.append(nn.Linear(width, horizon * action_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond).view(-1, self.horizon, self.action_dim)


def timestep_embedding(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps, (B,) -> (B, dim)."""
    half = dim // 2
    scale = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=steps.device) * -scale)
    angles = steps.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class _FiLMBlock(nn.Module):
    def __init__(self, width: int, cond_width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(cond_width, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.Mish(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).chunk(2, dim=1)
        return x + self.mlp(self.norm(x) * (1.0 + scale) + shift)


class NoisePredictor(nn.Module):
    """Diffusion: (noisy normalized chunk, step, conditioning) -> the noise that was added."""

    def __init__(self, cond_dim: int, horizon: int, action_dim: int, hidden: int = 512, blocks: int = 4,
                 step_dim: int = 64):
        super().__init__()
        self.horizon, self.action_dim, self.step_dim = horizon, action_dim, step_dim
        cond_width = 256
        self.cond = nn.Sequential(nn.Linear(cond_dim + step_dim, cond_width), nn.Mish(),
                                  nn.Linear(cond_width, cond_width))
        self.inp = nn.Linear(horizon * action_dim, hidden)
        self.blocks = nn.ModuleList(_FiLMBlock(hidden, cond_width) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, horizon * action_dim))

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.cond(torch.cat([cond, timestep_embedding(steps, self.step_dim)], dim=1))
        x = self.inp(noisy.flatten(1))
        for block in self.blocks:
            x = block(x, c)
        return self.out(x).view(-1, self.horizon, self.action_dim)
