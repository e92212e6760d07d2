"""Draw what perception saw: boxes, labels and scores over the camera image."""

from __future__ import annotations

import numpy as np

from fmrobot.types import CameraFrame, SceneDescription


def draw_scene(frame: CameraFrame, scene: SceneDescription) -> np.ndarray:
    """The frame's RGB with every object detected in it boxed and labelled (label, score)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame.rgb))
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        if obj.box_2d is None or (obj.camera is not None and obj.camera != frame.name):
            continue
        x0, y0, x1, y1 = obj.box_2d
        draw.rectangle((x0, y0, x1, y1), outline=(255, 255, 255), width=2)
        text = f"{obj.label} {obj.score:.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), text)
        lift = bottom - top + 2
        draw.rectangle((x0, y0 - lift, x0 + right - left + 4, y0), fill=(0, 0, 0))
        draw.text((x0 + 2, y0 - lift), text, fill=(255, 255, 255))
    return np.asarray(image)
