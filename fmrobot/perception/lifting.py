"""From pixels to the world: depth back-projection and 3-D object extents.

Every perceptor that finds objects in images (segmentation masks, detector boxes,
RGB-D proposals) lifts them to the world frame here, through the frame's own camera
model, so that all of them report positions the same way.
"""

from __future__ import annotations

import numpy as np

from fmrobot.types import CameraFrame, DetectedObject

_ANGLES = np.deg2rad(np.arange(0.0, 90.0, 1.0))


def backproject(frame: CameraFrame, mask: np.ndarray, max_depth: float | None = None) -> np.ndarray:
    """World coordinates (N, 3) of the masked pixels with a valid depth."""
    rows, cols = np.nonzero(mask)
    depth = np.asarray(frame.depth)[rows, cols].astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    if max_depth is not None:
        valid &= depth < max_depth
    rows, cols, depth = rows[valid], cols[valid], depth[valid]
    k = frame.intrinsics
    camera_points = np.stack([(cols - k.cx) / k.fx * depth, (rows - k.cy) / k.fy * depth, depth], axis=1)
    pose = frame.extrinsics
    return camera_points @ pose.rotation_matrix().T + np.asarray(pose.position)


def box_of_mask(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def footprint_yaw(points: np.ndarray, top_band: float = 0.01) -> float | None:
    """Yaw of the smallest rectangle around the top layer's footprint, in [-pi/4, pi/4).

    Uses the points within `top_band` of the highest one: from an oblique camera the
    top face is the part of an object seen without perspective shortening of its sides.
    """
    if len(points) < 10:
        return None
    top = points[points[:, 2] >= points[:, 2].max() - top_band][:, :2]
    if len(top) < 10:
        return None
    top = top - top.mean(axis=0)
    cos, sin = np.cos(_ANGLES)[:, None], np.sin(_ANGLES)[:, None]
    u = top[:, 0] * cos + top[:, 1] * sin
    v = -top[:, 0] * sin + top[:, 1] * cos
    area = (u.max(axis=1) - u.min(axis=1)) * (v.max(axis=1) - v.min(axis=1))
    yaw = float(_ANGLES[int(np.argmin(area))])
    return yaw - np.pi / 2 if yaw >= np.pi / 4 else yaw


def lift(
    points: np.ndarray,
    label: str,
    score: float,
    box_2d: tuple[float, float, float, float] | None = None,
    camera: str | None = None,
    trim: float = 1.0,
) -> DetectedObject:
    """A detected object from its world points: centre and size of their trimmed extent."""
    low = np.percentile(points, trim, axis=0)
    high = np.percentile(points, 100.0 - trim, axis=0)
    return DetectedObject(
        label=label,
        score=float(np.clip(score, 0.0, 1.0)),
        position=tuple(float(v) for v in (low + high) / 2),
        extent=tuple(float(v) for v in (high - low)),
        yaw=footprint_yaw(points),
        box_2d=box_2d,
        camera=camera,
        num_points=int(len(points)),
    )
