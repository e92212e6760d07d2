"""Perception faults: objects missing from the scene, or seen in the wrong place.

Both corrupt what the perceptor reports, never the world, so the stack's own recovery
(re-perceive and replan after a failed step) is what gets exercised.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field

from fmrobot.faults import Fault, FaultConfig
from fmrobot.interfaces import NeedsImages, Perceptor
from fmrobot.types import Observation, SceneDescription


class FaultyPerceptor:
    """A perceptor whose every scene passes through a perception fault."""

    def __init__(self, inner: Perceptor, fault: "PerceptionFault"):
        self.inner, self.fault = inner, fault
        self.needs_images = bool(inner.needs_images) if isinstance(inner, NeedsImages) else True

    def perceive(self, obs: Observation, queries: Sequence[str]) -> SceneDescription:
        return self.fault.corrupt(self.inner.perceive(obs, queries), obs.step)


class PerceptionFault(Fault):
    target = "perception"

    def wrap(self, perceptor: Perceptor) -> FaultyPerceptor:
        return FaultyPerceptor(perceptor, self)

    def corrupt(self, scene: SceneDescription, step: int) -> SceneDescription:
        raise NotImplementedError


class DropoutConfig(FaultConfig):
    probability: float = Field(default=0.3, ge=0.0, le=1.0)  # each object, each time the scene is perceived


class PerceptionDropout(PerceptionFault):
    """Each perceived object goes missing with `probability`, drawn anew at every look."""

    Config = DropoutConfig
    name = "perception_dropout"
    config: DropoutConfig

    def corrupt(self, scene: SceneDescription, step: int) -> SceneDescription:
        if not scene.objects:
            return scene
        dropped = self.rng.random(len(scene.objects)) < self.config.probability
        for thing, gone in zip(scene.objects, dropped):
            if gone:
                self.record(f"perception dropped the {thing.label}", step)
        return scene.model_copy(update={"objects": tuple(o for o, gone in zip(scene.objects, dropped) if not gone)})


class NoiseConfig(FaultConfig):
    position_std: float = Field(default=0.02, ge=0.0, le=0.5)  # metres, per axis, on every object's position
    vertical: bool = False  # also perturb heights (a grasp height off by centimetres crushes or misses)


class PerceptionNoise(PerceptionFault):
    """Gaussian noise on every perceived position, drawn anew at every look."""

    Config = NoiseConfig
    name = "perception_noise"
    config: NoiseConfig

    def corrupt(self, scene: SceneDescription, step: int) -> SceneDescription:
        if not scene.objects or self.config.position_std == 0.0:
            return scene
        noise = self.rng.normal(0.0, self.config.position_std, (len(scene.objects), 3))
        if not self.config.vertical:
            noise[:, 2] = 0.0
        worst = float(np.linalg.norm(noise, axis=1).max())
        self.record(f"perceived positions off by up to {worst * 100:.1f} cm", step)
        objects = tuple(o.model_copy(update={"position": tuple(float(v) for v in np.add(o.position, n))})
                        for o, n in zip(scene.objects, noise))
        return scene.model_copy(update={"objects": objects})
