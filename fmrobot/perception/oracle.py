"""Oracle perception: the simulator's segmentation mask, lifted through the depth camera.

Labels come from the simulator (that is the privilege); positions and sizes do not:
they are measured from the rendered depth like any detector's, so oracle results
carry the same lifting errors later detectors will have.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.perception.lifting import backproject, box_of_mask, lift
from fmrobot.types import Observation, SceneDescription


class OracleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_points: int = Field(default=20, ge=1)  # fewer visible pixels than this: not perceived
    cameras: tuple[str, ...] | None = None  # frames to use; all when None


class OraclePerceptor:
    Config = OracleConfig
    needs_images = True

    def __init__(self, config: OracleConfig | None = None):
        self.config = config or OracleConfig()

    def perceive(self, obs: Observation, queries: Sequence[str] = ()) -> SceneDescription:
        frames = [f for f in obs.frames if self.config.cameras is None or f.name in self.config.cameras]
        if not frames:
            raise ValueError("oracle perception needs camera frames; the observation has none")
        points: dict[int, list[np.ndarray]] = {}
        boxes: dict[int, tuple[str, tuple[float, float, float, float]]] = {}
        for frame in frames:
            if frame.segmentation is None:
                raise ValueError(f"camera {frame.name!r} has no segmentation mask; oracle perception needs one")
            segmentation = np.asarray(frame.segmentation)
            present = np.unique(segmentation)
            for body_id in obs.segmentation_labels:
                if body_id not in present:
                    continue
                mask = segmentation == body_id
                world = backproject(frame, mask)
                if len(world):
                    points.setdefault(body_id, []).append(world)
                    box = box_of_mask(mask)
                    if box is not None and body_id not in boxes:
                        boxes[body_id] = (frame.name, box)
        objects = []
        for body_id, label in obs.segmentation_labels.items():
            if body_id not in points:
                continue
            cloud = np.concatenate(points[body_id])
            if len(cloud) < self.config.min_points:
                continue
            camera, box = boxes.get(body_id, (None, None))
            objects.append(lift(cloud, label, 1.0, box_2d=box, camera=camera))
        objects.sort(key=lambda o: o.label)
        return SceneDescription(objects=tuple(objects), source="oracle")
