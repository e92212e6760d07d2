"""Class-agnostic object proposals from one RGB-D frame.

Lift every pixel to the world, find the table as the dominant horizontal plane, keep
what stands on it inside the workspace, cut that foreground where depth jumps or the
colour changes, label connected regions, and merge regions of one colour that touch in
3-D (a bowl seen over its rim splits into wall and floor). Detectors that give 2-D
boxes reuse `foreground` to lift a box without the table behind the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import CameraFrame


class ProposalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace_x: tuple[float, float] = (0.2, 0.9)
    workspace_y: tuple[float, float] = (-0.5, 0.5)
    min_height: float = Field(default=0.004, ge=0.0)  # above the table plane: the bowl floor is 8 mm up
    max_height: float = Field(default=0.25, gt=0.0)  # taller regions (the robot) are not tabletop objects
    depth_edge: float = Field(default=0.012, gt=0.0)  # metres between neighbouring pixels' 3-D points
    color_edge: float = Field(default=0.08, gt=0.0)  # chromaticity difference between neighbours
    merge_gap: float = Field(default=0.015, ge=0.0)  # same-colour regions this close in 3-D are one object
    merge_color: float = Field(default=0.06, gt=0.0)
    min_pixels: int = Field(default=40, ge=1)
    plane_bin: float = Field(default=0.002, gt=0.0)


@dataclass
class Proposal:
    mask: np.ndarray  # (H, W) bool
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels
    points: np.ndarray  # (N, 3) world points of the masked pixels
    chroma: np.ndarray  # (3,) mean chromaticity


def world_points(frame: CameraFrame) -> np.ndarray:
    """(H, W, 3) float32 world coordinates of every pixel; NaN where depth is invalid."""
    k = frame.intrinsics
    depth = np.asarray(frame.depth, dtype=np.float32)
    u = ((np.arange(k.width) - k.cx) / k.fx).astype(np.float32)
    v = ((np.arange(k.height) - k.cy) / k.fy).astype(np.float32)
    pose = frame.extrinsics
    rotation = pose.rotation_matrix().astype(np.float32)
    # world = R @ (u d, v d, d) + t, written per axis to avoid an (H, W, 3) temporary matmul.
    world = np.empty((k.height, k.width, 3), np.float32)
    for axis in range(3):
        r = rotation[axis]
        world[..., axis] = (r[0] * u[None, :] + r[1] * v[:, None] + r[2]) * depth + np.float32(pose.position[axis])
    world[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return world


def chromaticity(rgb: np.ndarray) -> np.ndarray:
    """rgb / (r + g + b): colour without brightness, so shaded faces of one object agree."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return rgb / np.maximum(rgb.sum(axis=-1, keepdims=True), 1.0)


def table_height(points: np.ndarray, config: ProposalConfig) -> float | None:
    """Height of the dominant horizontal plane among workspace points (histogram mode)."""
    sample = points[::2, ::2]  # a quarter of the pixels pins the plane down just as well
    x, y, z = sample[..., 0], sample[..., 1], sample[..., 2]
    inside = _in_workspace(x, y, config) & np.isfinite(z)
    heights = z[inside]
    if heights.size < 100:
        return None
    low, high = np.percentile(heights, [1, 99])
    bins = max(1, int(np.ceil((high - low) / config.plane_bin)))
    counts, edges = np.histogram(heights, bins=bins, range=(low, high + 1e-9))
    best = int(np.argmax(counts))
    in_bin = heights[(heights >= edges[best]) & (heights < edges[best + 1])]
    return float(np.median(in_bin))


def foreground(frame: CameraFrame, config: ProposalConfig, points: np.ndarray | None = None,
               table_z: float | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Pixels that stand on the table inside the workspace; also the world points and table height."""
    points = world_points(frame) if points is None else points
    table_z = table_height(points, config) if table_z is None else table_z
    if table_z is None:
        return np.zeros(points.shape[:2], bool), points, None
    with np.errstate(invalid="ignore"):
        height = points[..., 2] - table_z
        mask = (height > config.min_height) & (height < config.max_height)
    mask &= _in_workspace(points[..., 0], points[..., 1], config)
    return mask, points, table_z


def propose(frame: CameraFrame, config: ProposalConfig | None = None) -> list[Proposal]:
    from scipy import ndimage

    config = config or ProposalConfig()
    full_mask, full_points, _ = foreground(frame, config)
    if not full_mask.any():
        return []
    # Work inside the foreground's bounding box: the rest of the image cannot hold objects.
    rows = np.flatnonzero(full_mask.any(axis=1))
    cols = np.flatnonzero(full_mask.any(axis=0))
    r0, r1, c0, c1 = max(rows[0] - 1, 0), rows[-1] + 2, max(cols[0] - 1, 0), cols[-1] + 2
    mask, points = full_mask[r0:r1, c0:c1], full_points[r0:r1, c0:c1]
    chroma = chromaticity(np.asarray(frame.rgb)[r0:r1, c0:c1])
    labels, count = ndimage.label(mask & ~_edges(points, chroma, config))
    if count == 0:
        return []
    # Regions, then unions of same-coloured regions that touch in 3-D.
    regions = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None:
            continue
        local = labels[region] == index
        if local.sum() < max(4, config.min_pixels // 4):
            continue
        pts = points[region][local]
        regions.append((index, chroma[region][local].mean(axis=0), pts.min(axis=0), pts.max(axis=0)))
    group = _merge(regions, config)
    relabel = np.zeros(count + 1, np.int32)
    for (index, *_), g in zip(regions, group):
        relabel[index] = g + 1
    grouped = relabel[labels]
    proposals = []
    for g, region in enumerate(ndimage.find_objects(grouped), start=1):
        if region is None:
            continue
        local = grouped[region] == g
        if local.sum() < config.min_pixels:
            continue
        member = np.zeros(full_mask.shape, bool)
        rows_slice = slice(region[0].start + r0, region[0].stop + r0)
        cols_slice = slice(region[1].start + c0, region[1].stop + c0)
        member[rows_slice, cols_slice] = local
        box = (float(cols_slice.start), float(rows_slice.start), float(cols_slice.stop), float(rows_slice.stop))
        proposals.append(Proposal(mask=member, box=box, points=points[region][local].astype(np.float64),
                                  chroma=chroma[region][local].mean(axis=0)))
    proposals.sort(key=lambda p: (p.box[1], p.box[0]))
    return proposals


def _merge(regions: list, config: ProposalConfig) -> list[int]:
    """Group index per region: same-coloured regions whose 3-D boxes (nearly) touch."""
    parent = list(range(len(regions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(regions)):
        _, ci, lo_i, hi_i = regions[i]
        for j in range(i + 1, len(regions)):
            _, cj, lo_j, hi_j = regions[j]
            gap = np.maximum(0.0, np.maximum(lo_i, lo_j) - np.minimum(hi_i, hi_j))
            if np.linalg.norm(gap) <= config.merge_gap and np.abs(ci - cj).sum() <= config.merge_color:
                parent[root(i)] = root(j)
    roots = sorted({root(i) for i in range(len(regions))})
    return [roots.index(root(i)) for i in range(len(regions))]


def _edges(points: np.ndarray, chroma: np.ndarray, config: ProposalConfig) -> np.ndarray:
    """Pixels next to a neighbour that is far away in 3-D or differently coloured."""
    edges = np.zeros(points.shape[:2], bool)
    for axis in (0, 1):
        p_delta = np.linalg.norm(np.diff(points, axis=axis), axis=-1)
        c_delta = np.abs(np.diff(chroma, axis=axis)).sum(axis=-1)
        with np.errstate(invalid="ignore"):
            cut = (p_delta > config.depth_edge) | (c_delta > config.color_edge) | ~np.isfinite(p_delta)
        if axis == 0:
            edges[1:] |= cut
            edges[:-1] |= cut
        else:
            edges[:, 1:] |= cut
            edges[:, :-1] |= cut
    return edges


def _in_workspace(x: np.ndarray, y: np.ndarray, config: ProposalConfig) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ((x >= config.workspace_x[0]) & (x <= config.workspace_x[1])
                & (y >= config.workspace_y[0]) & (y <= config.workspace_y[1]))
