"""A PyBullet world: one physics client, its renderer, and the labelled bodies in it.

The world knows nothing about tasks or the autonomy stack. Tasks populate it through
`add_block` / `add_bowl`; the environment steps it and renders its cameras.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
from dataclasses import dataclass
from typing import Collection, Iterator, Literal

import numpy as np
import pybullet as pb
import pybullet_data

from sims import objects

log = logging.getLogger(__name__)

TABLE_TOP_Z = 0.625  # height of pybullet_data's table/table.urdf top surface
TABLE_CENTER = (0.5, 0.0, 0.0)
TABLE_HALF_EXTENTS = (0.75, 0.5)

Renderer = Literal["auto", "egl", "tiny"]


@contextlib.contextmanager
def quiet_stdout(stream: int = 1) -> Iterator[None]:
    """Silence C-level prints on a file descriptor (the EGL plugin reports GL vendor
    strings on stdout), which Python-level redirection cannot catch."""
    try:
        saved = os.dup(stream)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), stream)
        yield
    finally:
        os.dup2(saved, stream)
        os.close(saved)


@dataclass
class Body:
    """A labelled object in the world."""

    body_id: int
    label: str
    kind: str  # "block" | "bowl" | ...
    color: str
    size: float  # block edge or bowl outer diameter, metres
    height: float


def _load_triton_first() -> None:
    """Import triton, if installed, before Mesa's software renderer loads.

    Both bring their own LLVM. With Mesa's (llvmpipe, behind the EGL plugin) loaded first,
    importing triton's native module crashes the process, and torch imports triton
    lazily (torchvision.ops -> torch._dynamo), e.g. when a CLIP perceptor loads after the
    environment. In the other order both work. Costs about 0.25 s, once per process.
    """
    if importlib.util.find_spec("triton") is not None:
        try:
            importlib.import_module("triton")
        except Exception:  # a broken triton is torch's problem, not the renderer's
            log.debug("triton failed to import", exc_info=True)


# Two physics clients with the EGL plugin in one process crash PyBullet (a segfault once
# they render different image sizes), so one world at a time owns it; others in the same
# process render with the tiny renderer. Worker processes each get their own.
_egl_owner: "World | None" = None


@dataclass(frozen=True)
class ShapePart:
    """One collision shape of a body, posed in some frame (for queries at poses not yet reached)."""

    kind: int  # pybullet GEOM_* type
    dims: tuple[float, ...]  # as getCollisionShapeData gives them (box: full extents; mesh: scale)
    filename: str
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]


_QUERY_KINDS = (pb.GEOM_BOX, pb.GEOM_SPHERE, pb.GEOM_CYLINDER, pb.GEOM_CAPSULE, pb.GEOM_MESH)


def collision_parts(client: int, body_id: int, links, frame) -> list[ShapePart]:
    """The collision shapes of a body's `links` (-1: its base), posed in `frame` (position, orientation)."""
    to_frame = pb.invertTransform(*frame)
    parts = []
    for link in links:
        if link == -1:
            origin = pb.getBasePositionAndOrientation(body_id, physicsClientId=client)
        else:  # shape poses are given relative to the link's centre of mass, getLinkState's [0], [1]
            origin = pb.getLinkState(body_id, link, computeForwardKinematics=True, physicsClientId=client)[:2]
        for shape in pb.getCollisionShapeData(body_id, link, physicsClientId=client):
            kind, dims, filename, local_pos, local_orn = shape[2], shape[3], shape[4], shape[5], shape[6]
            if kind not in _QUERY_KINDS:
                continue
            pose = pb.multiplyTransforms(*to_frame, *pb.multiplyTransforms(*origin, local_pos, local_orn))
            parts.append(ShapePart(kind=kind, dims=tuple(dims), filename=filename.decode() if kind == pb.GEOM_MESH else "",
                                   position=pose[0], orientation=pose[1]))
    return parts


class World:
    """One PyBullet physics client in DIRECT mode.

    The renderer is chosen once, at connection: the EGL plugin must be loaded before any
    body exists, and it survives `resetSimulation`.
    """

    def __init__(self, physics_hz: int = 240, solver_iterations: int = 50, renderer: Renderer = "auto"):
        global _egl_owner
        self.physics_hz = physics_hz
        self.solver_iterations = solver_iterations
        if renderer == "egl" and _egl_owner is not None:
            raise RuntimeError(
                "renderer='egl' was asked for, but another world in this process already renders with EGL "
                "(PyBullet crashes with two); close it first or use renderer='auto' or 'tiny'"
            )
        self.client = pb.connect(pb.DIRECT)
        self._egl_plugin: int | None = None
        self.renderer_name = "tiny"
        if renderer == "egl" or (renderer == "auto" and _egl_owner is None):
            self._egl_plugin = self._load_egl()
            if self._egl_plugin is None and renderer == "egl":
                self.close()
                raise RuntimeError("renderer='egl' was asked for but the EGL renderer plugin did not load")
            if self._egl_plugin is not None:
                self.renderer_name = "egl"
                _egl_owner = self
        self.bodies: dict[str, Body] = {}
        self.table_id = -1
        self.robot_body_id = -1
        self._query_shapes: dict[tuple, int] = {}  # collision shapes for queries, per reset

    def _load_egl(self) -> int | None:
        spec = importlib.util.find_spec("eglRenderer")
        if spec is None or spec.origin is None:
            return None
        _load_triton_first()
        with quiet_stdout(1), quiet_stdout(2):
            plugin = pb.loadPlugin(spec.origin, "_eglRendererPlugin", physicsClientId=self.client)
        if plugin < 0:
            log.warning("the EGL renderer plugin did not load; rendering with the (slower) tiny renderer")
            return None
        return plugin

    @property
    def render_flag(self) -> int:
        return pb.ER_BULLET_HARDWARE_OPENGL if self.renderer_name == "egl" else pb.ER_TINY_RENDERER

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Empty the world and load the table; deterministic for what follows."""
        c = self.client
        with quiet_stdout():  # the EGL plugin reports on every reset
            pb.resetSimulation(physicsClientId=c)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=1.0 / self.physics_hz,
            numSolverIterations=self.solver_iterations,
            deterministicOverlappingPairs=1,
            physicsClientId=c,
        )
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        self.table_id = pb.loadURDF(
            "table/table.urdf",
            TABLE_CENTER,
            useFixedBase=True,
            flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
            physicsClientId=c,
        )
        self.bodies = {}
        self.robot_body_id = -1
        self._query_shapes = {}  # resetSimulation removed them

    def close(self) -> None:
        global _egl_owner
        if self.client < 0:
            return
        if _egl_owner is self:
            _egl_owner = None
        with quiet_stdout():
            if self._egl_plugin is not None:
                pb.unloadPlugin(self._egl_plugin, physicsClientId=self.client)
                self._egl_plugin = None
            pb.disconnect(physicsClientId=self.client)
        self.client = -1

    def step(self, count: int = 1) -> None:
        c = self.client
        for _ in range(count):
            pb.stepSimulation(physicsClientId=c)

    # ------------------------------------------------------------------ objects

    def add_block(self, label: str, color: str, position: tuple[float, float], yaw: float, size: float = 0.04,
                  mass: float = 0.05) -> Body:
        body_id = objects.create_block(self.client, color, size, mass, (*position, TABLE_TOP_Z + size / 2), yaw)
        return self._register(Body(body_id, label, "block", color, size, size))

    def add_bowl(self, label: str, color: str, position: tuple[float, float], radius: float = 0.075,
                 height: float = 0.05) -> Body:
        body_id = objects.create_bowl(self.client, color, radius, height, (*position, TABLE_TOP_Z))
        return self._register(Body(body_id, label, "bowl", color, 2 * radius, height))

    def add_cylinder(self, label: str, color: str, position: tuple[float, float], size: float = 0.04,
                     height: float = 0.04, mass: float = 0.05) -> Body:
        """An upright cylinder of diameter `size`: grasped like a block, but round."""
        body_id = objects.create_cylinder(self.client, color, size / 2, height, mass,
                                          (*position, TABLE_TOP_Z + height / 2))
        return self._register(Body(body_id, label, "cylinder", color, size, height))

    def add_zone(self, label: str, color: str, position: tuple[float, float], size: float = 0.12,
                 solid: bool = True) -> Body:
        """A flat coloured square on the table that objects are put into or pushed to.

        `solid=False` lets objects slide over it as over paper: its 2 mm slab is a step that a
        pushed block snags on and tips over. It renders either way, so perception sees it.
        """
        thickness = 0.002
        body_id = objects.create_zone(self.client, color, size, (*position, TABLE_TOP_Z + thickness / 2), thickness)
        if not solid:
            pb.setCollisionFilterGroupMask(body_id, -1, 0, 0, physicsClientId=self.client)
        return self._register(Body(body_id, label, "zone", color, size, thickness))

    def add_tray(self, label: str, position: tuple[float, float], size: float = 0.24, color: str = "") -> Body:
        """pybullet_data's tray (a flat box with sloped walls), scaled to `size` across, static."""
        scale = size / 0.6  # traybox.urdf is 0.6 m across at scale 1
        body_id = pb.loadURDF("tray/traybox.urdf", (*position, TABLE_TOP_Z), useFixedBase=True,
                              globalScaling=scale, flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
                              physicsClientId=self.client)
        if color:
            objects.set_color(self.client, body_id, color)
        # Walls reach 0.059 + 0.075 * cos(0.575) above the base at scale 1.
        return self._register(Body(body_id, label, "tray", color, size, 0.12 * scale))

    def add_mesh_object(self, label: str, urdf: str, position: tuple[float, float], yaw: float,
                        size: float = 0.05, color: str = "", kind: str = "object") -> Body:
        """A mesh object from a URDF (e.g. pybullet_data's random_urdfs), scaled so that its
        footprint is at most `size` across and resting on the table."""
        c = self.client
        orientation = pb.getQuaternionFromEuler([0, 0, yaw])
        body_id = pb.loadURDF(urdf, (*position, TABLE_TOP_Z + 0.2), orientation, physicsClientId=c)
        lo, hi = pb.getAABB(body_id, physicsClientId=c)
        footprint = max(hi[0] - lo[0], hi[1] - lo[1])
        if footprint > size:
            pb.removeBody(body_id, physicsClientId=c)
            body_id = pb.loadURDF(urdf, (*position, TABLE_TOP_Z + 0.2), orientation,
                                  globalScaling=size / footprint, physicsClientId=c)
            lo, hi = pb.getAABB(body_id, physicsClientId=c)
        base, _ = pb.getBasePositionAndOrientation(body_id, physicsClientId=c)
        # Rest the lowest point 1 mm above the table so the object does not start inside it.
        pb.resetBasePositionAndOrientation(body_id, (position[0], position[1], base[2] - lo[2] + TABLE_TOP_Z + 0.001),
                                           orientation, physicsClientId=c)
        if color:
            objects.set_color(c, body_id, color)
        return self._register(Body(body_id, label, kind, color, max(hi[0] - lo[0], hi[1] - lo[1]), hi[2] - lo[2]))

    def _register(self, body: Body) -> Body:
        if body.label in self.bodies:
            raise ValueError(f"two objects labelled {body.label!r} in one scene")
        self.bodies[body.label] = body
        return body

    def body(self, label: str) -> Body:
        try:
            return self.bodies[label]
        except KeyError:
            raise KeyError(f"no object {label!r}; objects: {sorted(self.bodies)}") from None

    def position(self, label: str) -> np.ndarray:
        pos, _ = pb.getBasePositionAndOrientation(self.body(label).body_id, physicsClientId=self.client)
        return np.asarray(pos)

    def yaw(self, label: str) -> float:
        _, orn = pb.getBasePositionAndOrientation(self.body(label).body_id, physicsClientId=self.client)
        return pb.getEulerFromQuaternion(orn)[2]

    def velocity(self, label: str) -> tuple[float, float]:
        """Linear (m/s) and angular (rad/s) speed of a body."""
        lin, ang = pb.getBaseVelocity(self.body(label).body_id, physicsClientId=self.client)
        return float(np.linalg.norm(lin)), float(np.linalg.norm(ang))

    def all_at_rest(self, linear: float = 0.01, angular: float = 0.2) -> bool:
        return all(
            lin < linear and ang < angular for lin, ang in (self.velocity(label) for label in self.bodies)
        )

    def in_contact(self, label: str, other_body_id: int) -> bool:
        return bool(
            pb.getContactPoints(self.body(label).body_id, other_body_id, physicsClientId=self.client)
        )

    def touching_robot(self, label: str) -> bool:
        return self.robot_body_id >= 0 and self.in_contact(label, self.robot_body_id)

    def touching(self, label: str) -> set[str]:
        """Labels of what touches the object now ("robot" for the robot), the table aside."""
        names = {body.body_id: body.label for body in self.bodies.values()}
        names[self.robot_body_id] = "robot"
        contacts = pb.getContactPoints(bodyA=self.body(label).body_id, physicsClientId=self.client)
        return {names.get(c[2], f"body {c[2]}") for c in contacts if c[2] != self.table_id}

    def segmentation_labels(self) -> dict[int, str]:
        return {body.body_id: body.label for body in self.bodies.values()}

    def upright(self, label: str, tolerance_deg: float = 20.0) -> bool:
        _, orn = pb.getBasePositionAndOrientation(self.body(label).body_id, physicsClientId=self.client)
        z_axis = np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 2]
        return bool(abs(z_axis[2]) >= math.cos(math.radians(tolerance_deg)))

    # ------------------------------------------------------------------ collision queries

    def sweep_shapes(self, start, end, orientation, parts, margin: float, ignore: Collection[str] = (),
                     spacing: float = 0.01) -> tuple[str, float, tuple[float, float, float]] | None:
        """(label, distance, end-effector point) of the nearest object within `margin` of the
        `parts` (posed in the end-effector frame) carried in a straight line from `start` to
        `end` at `orientation`; None if nothing is that close.

        The path is sampled every `spacing` metres. The table, the robot and objects in `ignore`
        are not obstructions.
        """
        c = self.client
        candidates = [b for label, b in self.bodies.items() if label not in ignore]
        if not candidates or not parts:
            return None
        shapes = [(self._query_shape(part), part) for part in parts]
        a, b = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
        samples = max(1, int(math.ceil(float(np.linalg.norm(b - a)) / spacing)))
        reach = 0.25 + margin  # a gripper is smaller than this around its end-effector point
        low, high = np.minimum(a, b) - reach, np.maximum(a, b) + reach
        nearby = []
        for body in candidates:  # most bodies are far from this short path: skip them cheaply
            lo, hi = pb.getAABB(body.body_id, physicsClientId=c)
            if np.all(np.asarray(hi) >= low) and np.all(np.asarray(lo) <= high):
                nearby.append(body)
        nearest: tuple[str, float, tuple[float, float, float]] | None = None
        for i in range(samples + 1):
            point = (a + (b - a) * (i / samples)).tolist()
            for shape, part in shapes:
                position, turn = pb.multiplyTransforms(point, orientation, part.position, part.orientation)
                for body in nearby:
                    for hit in pb.getClosestPoints(bodyA=-1, bodyB=body.body_id, distance=margin,
                                                   collisionShapeA=shape, collisionShapePositionA=position,
                                                   collisionShapeOrientationA=turn, physicsClientId=c):
                        if nearest is None or hit[8] < nearest[1]:
                            nearest = (body.label, float(hit[8]), tuple(point))
        return nearest

    def _query_shape(self, part) -> int:
        """The part's collision shape for queries, made once per reset (resetSimulation removes it)."""
        key = (part.kind, part.dims, part.filename)
        if key not in self._query_shapes:
            c = self.client
            if part.kind == pb.GEOM_MESH:
                shape = pb.createCollisionShape(pb.GEOM_MESH, fileName=part.filename, meshScale=list(part.dims),
                                                physicsClientId=c)
            elif part.kind == pb.GEOM_BOX:
                shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[d / 2 for d in part.dims], physicsClientId=c)
            elif part.kind == pb.GEOM_SPHERE:
                shape = pb.createCollisionShape(pb.GEOM_SPHERE, radius=part.dims[0], physicsClientId=c)
            else:  # cylinder, capsule: dims are (height, radius, ...)
                shape = pb.createCollisionShape(part.kind, radius=part.dims[1], height=part.dims[0], physicsClientId=c)
            self._query_shapes[key] = shape
        return self._query_shapes[key]
