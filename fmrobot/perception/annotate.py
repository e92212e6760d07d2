"""Draw what perception saw: boxes, labels and scores over a camera image or a video."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

from fmrobot.types import (
    CameraFrame,
    CameraIntrinsics,
    DetectedObject,
    Pose,
    SceneDescription,
)


def draw_scene(frame: CameraFrame, scene: SceneDescription) -> np.ndarray:
    """The frame's RGB with every object detected in it boxed and labelled (label, score)."""
    boxes = [(obj.box_2d, obj) for obj in scene.objects
             if obj.box_2d is not None and (obj.camera is None or obj.camera == frame.name)]
    return _draw_boxes(frame.rgb, boxes)


def draw_video(frames: Sequence[np.ndarray], steps: Sequence[int], scenes: Sequence[tuple[int, SceneDescription]],
               camera: Any) -> list[np.ndarray]:
    """Each video frame with the objects of the last perception at or before its step boxed and
    labelled. Objects are placed by their 3-D position and extent, seen through `camera` (its
    `intrinsics` and `extrinsics`), so any camera's detections show in the video."""
    if len(frames) != len(steps):
        raise ValueError(f"{len(frames)} video frames but {len(steps)} frame steps")
    at = [step for step, _ in scenes]
    boxes_by_scene: dict[int, list] = {}
    out = []
    for frame, step in zip(frames, steps):
        index = bisect.bisect_right(at, step) - 1
        if index < 0:
            out.append(frame)
            continue
        if index not in boxes_by_scene:
            scene = scenes[index][1]
            boxes_by_scene[index] = [(box, obj) for obj in scene.objects
                                     if (box := project_box(obj, camera.intrinsics, camera.extrinsics)) is not None]
        out.append(_draw_boxes(frame, boxes_by_scene[index]))
    return out


def project_box(obj: DetectedObject, intrinsics: CameraIntrinsics,
                extrinsics: Pose) -> tuple[float, float, float, float] | None:
    """The pixel rectangle around an object's 3-D box seen by a camera (extrinsics: camera to
    world, OpenCV axes); None if any corner is behind the camera or the box is out of view."""
    centre, half = np.asarray(obj.position, dtype=float), 0.5 * np.asarray(obj.extent, dtype=float)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    corners = centre + signs * half
    rotation, eye = extrinsics.rotation_matrix(), np.asarray(extrinsics.position, dtype=float)
    local = (corners - eye) @ rotation  # world -> camera: R^T (p - eye), row-wise
    if np.any(local[:, 2] <= 1e-6):
        return None
    u = intrinsics.fx * local[:, 0] / local[:, 2] + intrinsics.cx
    v = intrinsics.fy * local[:, 1] / local[:, 2] + intrinsics.cy
    x0, x1 = max(float(u.min()), 0.0), min(float(u.max()), intrinsics.width - 1.0)
    y0, y1 = max(float(v.min()), 0.0), min(float(v.max()), intrinsics.height - 1.0)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _draw_boxes(rgb: np.ndarray, boxes: Sequence[tuple[tuple[float, float, float, float], DetectedObject]]) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    for (x0, y0, x1, y1), obj in boxes:
        draw.rectangle((x0, y0, x1, y1), outline=(255, 255, 255), width=2)
        text = f"{obj.label} {obj.score:.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), text)
        lift = bottom - top + 2
        draw.rectangle((x0, y0 - lift, x0 + right - left + 4, y0), fill=(0, 0, 0))
        draw.text((x0 + 2, y0 - lift), text, fill=(255, 255, 255))
    return np.asarray(image)
