"""The video camera's own copy of the world: cheap to render, never seen by the stack.

A video frame rendered in the simulation's world costs 70-100 ms here, almost all of it
the robot's detailed visual meshes (9 MB of OBJ for the Panda). The video only has to
show what happens, so it renders a mirror: a second PyBullet client holding one
visual-only body per link of every simulated body, where a link's heavy meshes are
replaced by its collision meshes (coarse, but the same shape and place). During the
episode only the link poses are recorded (well under a millisecond a frame); frames
are rendered from them when the video is asked for. The simulation's world, and so
every perception camera, is left untouched.

The copy renders with the tiny renderer: the fastest here for this scene (3-6 ms a
frame, where the EGL plugin's software llvmpipe costs some 25 ms a frame even for it),
and the only choice anyway while the simulation's client holds the one EGL context a
process may have.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from sims.cameras import Camera

#: A visual mesh file larger than this is drawn with the link's collision shapes instead.
HEAVY_MESH_BYTES = 100_000

_SHAPE_KINDS = (pb.GEOM_BOX, pb.GEOM_SPHERE, pb.GEOM_CYLINDER, pb.GEOM_CAPSULE, pb.GEOM_MESH)


@dataclass(frozen=True)
class _Shape:
    kind: int
    dims: tuple[float, ...]
    filename: str
    position: tuple[float, float, float]  # in the link frame
    orientation: tuple[float, float, float, float]
    rgba: tuple[float, float, float, float]


_mesh_extents: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # OBJ file -> vertex (min, max), read once


def _obj_extent(filename: str) -> tuple[np.ndarray, np.ndarray] | None:
    if filename not in _mesh_extents:
        try:
            with open(filename, "rb") as handle:
                rows = [line.split()[1:4] for line in handle if line.startswith(b"v ")]
            vertices = np.asarray(rows, dtype=float)
        except (OSError, ValueError):
            return None
        if vertices.ndim != 2 or len(vertices) == 0:
            return None
        _mesh_extents[filename] = (vertices.min(axis=0), vertices.max(axis=0))
    return _mesh_extents[filename]


_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)


def _corners(shape: _Shape) -> np.ndarray | None:
    """The 8 corners (in the link frame) of a box holding the shape; None if its size is unknown."""
    d = shape.dims
    centre = np.zeros(3)
    if shape.kind == pb.GEOM_BOX:
        half = np.asarray(d[:3], dtype=float) / 2
    elif shape.kind == pb.GEOM_SPHERE:
        half = np.full(3, d[0])
    elif shape.kind in (pb.GEOM_CYLINDER, pb.GEOM_CAPSULE):  # (length, radius), along z
        half = np.array([d[1], d[1], d[0] / 2 + (d[1] if shape.kind == pb.GEOM_CAPSULE else 0.0)])
    elif shape.kind == pb.GEOM_MESH and (extent := _obj_extent(shape.filename)) is not None:
        scale = np.asarray(d[:3], dtype=float)
        lo, hi = np.minimum(extent[0] * scale, extent[1] * scale), np.maximum(extent[0] * scale, extent[1] * scale)
        centre, half = (lo + hi) / 2, (hi - lo) / 2
    else:
        return None
    rotation = np.asarray(pb.getMatrixFromQuaternion(shape.orientation)).reshape(3, 3)
    return np.asarray(shape.position) + (centre + _SIGNS * half) @ rotation.T


def _quaternion_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (n, 3) by unit quaternions q (n, 4) given as x, y, z, w."""
    u, w = q[:, :3], q[:, 3:4]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def _heavy(filename: str) -> bool:
    try:
        return os.path.getsize(filename) > HEAVY_MESH_BYTES
    except OSError:
        return False


def _link_shapes(client: int, body: int, link: int, visuals: list) -> list[_Shape]:
    """The shapes the video draws for one link: its visuals, but its collision shapes (coloured
    like the visual) in place of heavy visual meshes."""
    shapes: list[_Shape] = []
    coarse: list[_Shape] | None = None  # the link's collision shapes, once a heavy mesh asked for them
    for visual in visuals:
        kind, dims, rgba = visual[2], tuple(visual[3]), tuple(visual[7])
        # Only a mesh's file name is meaningful; other shapes may carry stray bytes there.
        filename = visual[4].decode(errors="replace") if kind == pb.GEOM_MESH else ""
        if kind == pb.GEOM_MESH and _heavy(filename):
            if coarse is None:
                coarse = _collision_shapes(client, body, link, rgba)
                shapes.extend(coarse)
            if coarse:
                continue
        if kind in _SHAPE_KINDS:
            shapes.append(_Shape(kind, dims, filename, tuple(visual[5]), tuple(visual[6]), rgba))
    return shapes


def _collision_shapes(client: int, body: int, link: int, rgba) -> list[_Shape]:
    # Collision frames are given relative to the link's centre of mass; visuals to the link frame.
    if link == -1:
        com = pb.getDynamicsInfo(body, -1, physicsClientId=client)[3:5]
    else:
        com = pb.getLinkState(body, link, physicsClientId=client)[2:4]
    shapes = []
    for data in pb.getCollisionShapeData(body, link, physicsClientId=client):
        kind, dims = data[2], tuple(data[3])
        filename = data[4].decode(errors="replace") if kind == pb.GEOM_MESH else ""
        if kind not in _SHAPE_KINDS or (kind == pb.GEOM_MESH and not os.path.isfile(filename)):
            return []  # a shape the video cannot draw: keep the link's own visual
        position, orientation = pb.multiplyTransforms(com[0], com[1], data[5], data[6])
        shapes.append(_Shape(kind, dims, filename, tuple(position), tuple(orientation), rgba))
    return shapes


def _visual_shape(client: int, shapes: list[_Shape]) -> int:
    kwargs: dict[str, list] = {"shapeTypes": [], "radii": [], "halfExtents": [], "lengths": [], "fileNames": [],
                               "meshScales": [], "rgbaColors": [], "visualFramePositions": [],
                               "visualFrameOrientations": []}
    for s in shapes:
        kwargs["shapeTypes"].append(s.kind)
        kwargs["halfExtents"].append([d / 2 for d in s.dims] if s.kind == pb.GEOM_BOX else [0.0, 0.0, 0.0])
        # Cylinder and capsule dims are (length, radius); a sphere's are (radius, ...).
        kwargs["radii"].append(s.dims[1] if s.kind in (pb.GEOM_CYLINDER, pb.GEOM_CAPSULE)
                               else s.dims[0] if s.kind == pb.GEOM_SPHERE else 0.0)
        kwargs["lengths"].append(s.dims[0] if s.kind in (pb.GEOM_CYLINDER, pb.GEOM_CAPSULE) else 0.0)
        kwargs["fileNames"].append(s.filename)
        kwargs["meshScales"].append(list(s.dims) if s.kind == pb.GEOM_MESH else [1.0, 1.0, 1.0])
        kwargs["rgbaColors"].append(list(s.rgba))
        kwargs["visualFramePositions"].append(list(s.position))
        kwargs["visualFrameOrientations"].append(list(s.orientation))
    return pb.createVisualShapeArray(physicsClientId=client, **kwargs)


#: A part that moves less than this (metres, quaternion components) in a whole episode is drawn
#: once, into the background: objects at rest still jitter by micrometres.
STILL = 1e-4

#: What shows where nothing is: the sky colour of PyBullet's OpenGL renderers (the tiny renderer
#: clears to white, against which the white Panda is hard to see).
SKY = np.array([178, 178, 204], dtype=np.uint8)

#: Where a part not drawn in a render is put: beyond any camera's far plane.
_AWAY = np.array([0.0, 0.0, -1000.0, 0.0, 0.0, 0.0, 1.0])


class VideoScene:
    """Records the poses of a world's links and renders them, later, through the video camera.

    Rendering an episode's frames at once lets the parts that never moved (the table, the
    robot's base, objects nobody touched) be drawn once, into a background with depth;
    each frame then draws only the moving parts and keeps, per pixel, the nearer of the
    two. With a z-buffer and opaque shapes that is the same image as drawing everything.
    """

    def __init__(self, camera: Camera):
        self.camera = camera
        self.client = pb.connect(pb.DIRECT)
        self.source = -1
        self._parts: list[tuple[int, int]] = []  # (body, link) of the source world, link -1: base
        self._base_from_com: dict[int, tuple] = {}
        self._mirrors: list[int] = []  # the video client's body per part, -1: nothing to draw
        self._corners: list[tuple[int, np.ndarray | None]] = []  # (part, its shape's box corners in the link frame)
        self._built = False

    def watch(self, source: int) -> None:
        """Follow the bodies now in the `source` client (call once an episode's scene is built)."""
        self.source = source
        bodies = [pb.getBodyUniqueId(i, physicsClientId=source) for i in range(pb.getNumBodies(physicsClientId=source))]
        self._parts = [(body, link) for body in bodies
                       for link in range(-1, pb.getNumJoints(body, physicsClientId=source))]
        # A base's pose is reported at its centre of mass; its shapes are placed from its link frame.
        self._base_from_com = {body: pb.invertTransform(*pb.getDynamicsInfo(body, -1, physicsClientId=source)[3:5])
                               for body in bodies}
        self._built = False

    def capture(self) -> np.ndarray:
        """The world pose (x, y, z, qx, qy, qz, qw) of every watched link frame, now."""
        c = self.source
        poses = np.empty((len(self._parts), 7))
        by_body: dict[int, list[int]] = {}
        for i, (body, link) in enumerate(self._parts):
            if link == -1:
                com = pb.getBasePositionAndOrientation(body, physicsClientId=c)
                poses[i, :3], poses[i, 3:] = pb.multiplyTransforms(*com, *self._base_from_com[body])
            else:
                by_body.setdefault(body, []).append(i)
        for body, rows in by_body.items():
            states = pb.getLinkStates(body, [self._parts[i][1] for i in rows], computeForwardKinematics=True,
                                      physicsClientId=c)
            for i, state in zip(rows, states):
                poses[i, :3], poses[i, 3:] = state[4], state[5]
        return poses

    def render(self, poses: np.ndarray) -> np.ndarray:
        """The video camera's RGB image of the world as it was when `poses` were captured."""
        self._build()
        rgb, depth = self._draw(poses)
        rgb[depth >= 1.0] = SKY
        return rgb

    def render_all(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """One image per captured pose set, the still parts drawn once into a shared background."""
        if not frames:
            return []
        self._build()
        stacked = np.stack(frames)
        still = np.all(np.abs(stacked - stacked[0]).max(axis=0) < STILL, axis=1)
        back_rgb, back_depth = self._draw(np.where(still[:, None], stacked[0], _AWAY))
        back_rgb[back_depth >= 1.0] = SKY
        self._drop(still)  # what is in the background costs each frame's render nothing more
        images: list[np.ndarray] = []
        for k, poses in enumerate(stacked):
            if k and np.array_equal(poses, stacked[k - 1]):
                images.append(images[-1])  # nothing moved since the last frame (a pause, a settled grasp)
                continue
            moving = np.where(still[:, None], _AWAY, poses)
            window = self._window(moving, ~still)
            if window is None:
                images.append(back_rgb.copy())
                continue
            u0, v0, u1, v1 = window
            rgb, depth = self._draw(moving, window)
            image = back_rgb.copy()
            inside = (slice(v0, v1), slice(u0, u1))
            image[inside] = np.where((depth < back_depth[inside])[..., None], rgb, back_rgb[inside])
            images.append(image)
        return images

    def _window(self, poses: np.ndarray, moving: np.ndarray) -> tuple[int, int, int, int] | None:
        """The pixel rectangle (u0, v0, u1, v1) the moving parts can cover at `poses`; None if
        they are all out of view. Rendering only that much is most of what keeps a frame cheap."""
        boxes = [(i, corners) for i, corners in self._corners if moving[i]]
        intrinsics = self.camera.intrinsics
        full = (0, 0, intrinsics.width, intrinsics.height)
        if not boxes:
            return None
        if any(corners is None for _, corners in boxes):
            return full
        rows = np.repeat([i for i, _ in boxes], 8)
        points = poses[rows, :3] + _quaternion_rotate(poses[rows, 3:], np.concatenate([c for _, c in boxes]))
        pose = self.camera.extrinsics
        local = (points - np.asarray(pose.position)) @ pose.rotation_matrix()
        if np.any(local[:, 2] <= self.camera.config.near):
            return full  # something reaches behind the near plane: no safe rectangle
        u = intrinsics.fx * local[:, 0] / local[:, 2] + intrinsics.cx
        v = intrinsics.fy * local[:, 1] / local[:, 2] + intrinsics.cy
        u0, v0 = max(int(np.floor(u.min())) - 1, 0), max(int(np.floor(v.min())) - 1, 0)
        u1 = min(int(np.ceil(u.max())) + 2, intrinsics.width)
        v1 = min(int(np.ceil(v.max())) + 2, intrinsics.height)
        return (u0, v0, u1, v1) if u0 < u1 and v0 < v1 else None

    def _draw(self, poses: np.ndarray, window: tuple[int, int, int, int] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        c = self.client
        for body, pose in zip(self._mirrors, poses):
            if body >= 0:
                pb.resetBasePositionAndOrientation(body, pose[:3], pose[3:], physicsClientId=c)
        return self.camera.render_rgb_depth(c, pb.ER_TINY_RENDERER, window)

    def _drop(self, parts: np.ndarray) -> None:
        """Remove the mirrors of `parts` (a mask) until the next build."""
        for i in np.flatnonzero(parts):
            if self._mirrors[i] >= 0:
                pb.removeBody(self._mirrors[i], physicsClientId=self.client)
                self._mirrors[i] = -1
        self._built = False

    def _build(self) -> None:
        """One visual-only body per watched link that has something to draw."""
        if self._built:
            return
        if self.source < 0:
            raise RuntimeError("the video scene watches no world yet: call watch(client) first")
        c, source = self.client, self.source
        pb.resetSimulation(physicsClientId=c)
        visuals: dict[tuple[int, int], list] = {}
        for body in dict.fromkeys(body for body, _ in self._parts):
            for visual in pb.getVisualShapeData(body, physicsClientId=source):
                visuals.setdefault((body, visual[1]), []).append(visual)
        self._mirrors, self._corners = [], []
        for body, link in self._parts:
            shapes = _link_shapes(source, body, link, visuals.get((body, link), []))
            self._corners.extend((len(self._mirrors), _corners(shape)) for shape in shapes)
            self._mirrors.append(pb.createMultiBody(0.0, -1, _visual_shape(c, shapes), physicsClientId=c)
                                 if shapes else -1)
        self._built = True

    def close(self) -> None:
        if self.client >= 0:
            pb.disconnect(physicsClientId=self.client)
            self.client = -1
