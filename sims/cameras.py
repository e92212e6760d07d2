"""Fixed RGB-D cameras: PyBullet renders in, typed `CameraFrame`s with metric depth out."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pybullet as pb
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import CameraFrame, CameraIntrinsics, Pose, quaternion_from_matrix


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "front"
    eye: tuple[float, float, float] = (1.15, 0.0, 1.3)
    target: tuple[float, float, float] = (0.5, 0.0, 0.625)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_deg: float = Field(default=50.0, gt=1.0, lt=170.0)  # vertical field of view
    width: int = Field(default=640, gt=0, le=4096)
    height: int = Field(default=480, gt=0, le=4096)
    near: float = Field(default=0.05, gt=0.0)
    far: float = Field(default=4.0, gt=0.0)


class Camera:
    def __init__(self, config: CameraConfig):
        self.config = c = config
        self.view = pb.computeViewMatrix(c.eye, c.target, c.up)
        self.projection = pb.computeProjectionMatrixFOV(c.fov_deg, c.width / c.height, c.near, c.far)
        focal = c.height / (2.0 * math.tan(math.radians(c.fov_deg) / 2.0))
        # Pixel centres sit at half-integers in OpenGL's NDC, hence (size - 1) / 2.
        self.intrinsics = CameraIntrinsics(
            width=c.width, height=c.height, fx=focal, fy=focal, cx=(c.width - 1) / 2, cy=(c.height - 1) / 2
        )
        self.extrinsics = look_at_pose(c.eye, c.target, c.up)

    def jittered(self, rng: np.random.Generator, amount: float) -> "Camera":
        """This camera with its eye and target each moved up to `amount` metres (domain randomization).

        The frames it renders carry the moved pose, so perception lifts depth with the pose
        the camera really had, as with a calibrated camera that was bumped and recalibrated.
        """
        c = self.config
        eye = tuple(float(v) for v in np.add(c.eye, rng.uniform(-amount, amount, 3)))
        target = tuple(float(v) for v in np.add(c.target, rng.uniform(-amount, amount, 3)))
        return Camera(c.model_copy(update={"eye": eye, "target": target}))

    def render(self, client: int, renderer: int, segmentation: bool = True,
               light: Mapping[str, Any] | None = None) -> CameraFrame:
        c = self.config
        flags = 0 if segmentation else pb.ER_NO_SEGMENTATION_MASK
        _, _, rgba, zbuffer, seg = pb.getCameraImage(
            c.width, c.height, self.view, self.projection, renderer=renderer, flags=flags, physicsClientId=client,
            **(light or {}),
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(c.height, c.width, 4)[..., :3]
        zbuffer = np.asarray(zbuffer, dtype=np.float32).reshape(c.height, c.width)
        depth = (c.far * c.near / (c.far - (c.far - c.near) * zbuffer)).astype(np.float32)
        mask = np.asarray(seg, dtype=np.int32).reshape(c.height, c.width) if segmentation else None
        return CameraFrame(
            name=c.name, rgb=rgb, depth=depth, segmentation=mask,
            intrinsics=self.intrinsics, extrinsics=self.extrinsics,
        )

    def render_rgb(self, client: int, renderer: int) -> np.ndarray:
        c = self.config
        _, _, rgba, _, _ = pb.getCameraImage(
            c.width, c.height, self.view, self.projection, renderer=renderer,
            flags=pb.ER_NO_SEGMENTATION_MASK, physicsClientId=client,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(c.height, c.width, 4)[..., :3].copy()

    def render_rgb_depth(self, client: int, renderer: int, window: tuple[int, int, int, int] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """RGB and the raw z-buffer (0 near .. 1 far: enough to tell which of two renders is nearer),
        of the whole image or only of its pixel rectangle `window` (u0, v0, u1, v1)."""
        c = self.config
        u0, v0, u1, v1 = window or (0, 0, c.width, c.height)
        width, height = u1 - u0, v1 - v0
        _, _, rgba, zbuffer, _ = pb.getCameraImage(
            width, height, self.view, self._window_projection(u0, v0, width, height), renderer=renderer,
            flags=pb.ER_NO_SEGMENTATION_MASK, physicsClientId=client,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()
        return rgb, np.asarray(zbuffer, dtype=np.float32).reshape(height, width)

    def _window_projection(self, u0: int, v0: int, width: int, height: int) -> list[float]:
        """The projection that maps the pixel rectangle onto a whole image of its own size: the
        same rays as the full image, so the pixels come out the same."""
        c = self.config
        if (u0, v0, width, height) == (0, 0, c.width, c.height):
            return list(self.projection)
        sx, sy = c.width / width, c.height / height
        xc = -1.0 + (2 * u0 + width) / c.width  # the window's centre in normalized device coordinates
        yc = 1.0 - (2 * v0 + height) / c.height  # (rows run down, NDC y up)
        shift = np.array([[sx, 0, 0, -xc * sx], [0, sy, 0, -yc * sy], [0, 0, 1, 0], [0, 0, 0, 1]])
        full = np.asarray(self.projection, dtype=float).reshape(4, 4).T  # pybullet lists column-major
        return (shift @ full).T.reshape(-1).tolist()


def look_at_pose(eye, target, up) -> Pose:
    """Camera-to-world pose with OpenCV axes (x right, y down, z along the view)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("camera `up` is parallel to the viewing direction")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward], axis=1)
    return Pose(position=tuple(eye.tolist()), orientation=quaternion_from_matrix(rotation))
