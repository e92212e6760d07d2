"""Universal Robots UR5e with a Robotiq 2F-85 gripper (URDFs and meshes from `airo-models`).

airo-models ships the arm and the gripper as separate URDFs with relative mesh paths. We
join them (gripper base on the arm's tool flange), add a grasp frame between the finger
pads, and write the result once into a cache folder keyed by the package version and the
content, so PyBullet can load it by path.

The 2F-85 is a four-bar linkage: one motor turns the knuckles, and the finger pads stay
parallel while they swing closed on an arc (they sink 1.4 cm toward the object over the
stroke). The URDF says so with <mimic> tags, which PyBullet ignores, and its kinematic
tree cannot hold the linkage's closed loop; pads carried by servo-followed revolute joints
tilt under a squeeze and let the object wobble. So the pads that touch things slide across
on prismatic joints, which keep them exactly parallel, from one carriage that slides along
the approach axis and follows the linkage's arc; the linkage's own links are turned to
match, so the hand looks, reaches and sweeps like the real one. The pads grip as the
Panda's fingers do: position control with a force limit per pad, the two geared together.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import os
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pybullet as pb

from sims.robots.base import Robot, RobotConfig

GRIPPER_PREFIX = "gripper_"
GRASP_LINK = "grasp_frame"
# Along the gripper's approach axis, from its mounting face. The pads' far ends sweep from
# 0.149 m (open) to 0.163 m (closed) because the fingers swing on their knuckles; at 0.155 m
# the fingertips sit about 7 mm below the frame when closed on a 4 cm object, as the Panda's.
GRASP_DEPTH = 0.155
ARM_RGBA = "0.76 0.78 0.8 1"
PAD_SIZE = (0.022, 0.00635, 0.0375)  # the URDF's pad box; its y is across the closing direction
PAD_MASS = 0.03  # kg: pad plus the finger tip that carries it
CLOSED_ANGLE = 0.8  # knuckle angle at which the pads meet (the URDF's limit)
SIDES = ("left", "right")
# The gear that keeps the pads symmetric: stiffer than the Panda's (0.1, 50 N), because a pair shifted
# sideways would also be an arc position the real linkage never takes.
SYMMETRY_ERP, SYMMETRY_FORCE = 0.5, 500.0
# The gear that keeps the carriage on the arc: it carries what the pads hold and their grip's reaction.
ARC_ERP, ARC_FORCE = 0.9, 200.0
LINKAGE_TORQUE = 5.0  # N m: turns the linkage's links, which carry no load, to match the pads
# Links without an <inertial> get 1 kg in PyBullet; frames that only name a pose weigh nothing.
_TINY_INERTIAL = {
    "mass": {"@value": "0.001"},
    "inertia": {"@ixx": "1e-7", "@ixy": "0", "@ixz": "0", "@iyy": "1e-7", "@iyz": "0", "@izz": "1e-7"},
}
# PyBullet collides with a mesh's convex hull, and the inner finger's hull fills the hollow of the
# real part: it reaches 3 cm outward along the whole pad, so the open fingers would reach 7.5 cm
# from the centre. Only the thick end at the finger joint (z -0.006..0.014 in the inner finger's
# frame, behind the pad plane) keeps a box; the 7 mm blade that carries the pad is part of the pad.
_INNER_FINGER_COLLISION = {
    "origin": {"@xyz": "0 -0.0064 0.004", "@rpy": "0 0 0"},
    "geometry": {"box": {"@size": "0.015 0.0248 0.02"}},
}
# An object squeezed into the 6.35 mm pad box by more than half its thickness would be pushed out
# sideways (box-box contact picks the shallowest axis); a box from the pad face to the blade's back
# face (13.3 mm) keeps the push along the closing direction. The pad frame's y points outward.
PAD_COLLISION_DEPTH = 0.0133


class Linkage(NamedTuple):
    """Where a pad is for a knuckle angle, from the gripper URDF's joint origins.

    In the frame of the gripper's `base_link_inertia`, both fingers close along y. A pad sits
    `pivot` + R(q) `knuckle` + `tip` (y, z parts) from its finger's knuckle axis; the inner
    finger turns back by q, so only the knuckle vector turns.
    """

    pivot: tuple[float, float]  # right knuckle axis (y, z); the left is mirrored
    knuckle: tuple[float, float]  # knuckle axis to inner finger axis, at q = 0
    tip: tuple[float, float]  # inner finger axis to pad centre

    def pad(self, q):
        """(y, z) of the right pad's centre for knuckle angle(s) q."""
        c, s = np.cos(q), np.sin(q)
        ky, kz = self.knuckle
        return (self.pivot[0] + ky * c - kz * s + self.tip[0], self.pivot[1] + ky * s + kz * c + self.tip[1])

    def slide(self, q):
        """How far each pad has moved toward the centre at knuckle angle q."""
        return self.pad(0.0)[0] - self.pad(q)[0]

    def lift(self, q):
        """How far each pad has moved along the approach axis at knuckle angle q."""
        return self.pad(q)[1] - self.pad(0.0)[1]

    def width(self, slide) -> float:
        """Gap between the pad faces when each pad has slid `slide` inward."""
        return 2 * (self.pad(0.0)[0] - slide) - PAD_SIZE[1]


def _as_list(node) -> list:
    return node if isinstance(node, list) else ([] if node is None else [node])


def _xyz(joint: dict) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in joint["origin"]["@xyz"].split())
    return x, y, z


def _airo():
    try:
        import airo_models
        from airo_models import urdf as airo_urdf
    except ImportError:
        raise ImportError(
            "robot=ur5e_robotiq needs the airo-models package for its URDFs and meshes; "
            "install it with `pip install airo-models` (or reinstall fmrobot)"
        ) from None
    return airo_models, airo_urdf


def _linkage_from(gripper: dict) -> Linkage:
    joints = {j["@name"]: j for j in _as_list(gripper["joint"])}
    names = ("right_outer_knuckle_joint", "right_outer_finger_joint", "right_inner_finger_joint",
             "right_inner_finger_pad_joint")
    missing = [n for n in names if n not in joints]
    if missing:
        raise ValueError(f"the Robotiq 2F-85 URDF lacks joints {missing}; has {sorted(joints)}")
    # The model below assumes the right finger's chain lies in the y-z plane and turns about x.
    for name in names:
        joint = joints[name]
        rpy = [float(v) for v in joint["origin"].get("@rpy", "0 0 0").split()]
        axis = [float(a) for a in joint.get("axis", {}).get("@xyz", "1 0 0").split()]
        turns_about_x = joint["@type"] == "fixed" or axis == [1, 0, 0]
        if any(abs(v) > 1e-9 for v in rpy) or abs(_xyz(joint)[0]) > 1e-9 or not turns_about_x:
            raise ValueError(f"the Robotiq 2F-85 URDF's joint {name} is not the planar linkage this model expects")
    pivot, outer, inner, pad = (_xyz(joints[n]) for n in names)
    return Linkage(pivot=pivot[1:], knuckle=(outer[1] + inner[1], outer[2] + inner[2]), tip=pad[1:])


@functools.cache
def linkage() -> Linkage:
    airo_models, airo_urdf = _airo()
    return _linkage_from(airo_urdf.read_urdf(airo_models.get_urdf_path("robotiq_2f_85"))["robot"])


def _box(size, xyz="0 0 0", rpy="0 0 0") -> dict:
    return {"origin": {"@xyz": xyz, "@rpy": rpy}, "geometry": {"box": {"@size": " ".join(f"{v:.6f}" for v in size)}}}


def _inertial(mass: float, size) -> dict:
    x, y, z = size
    return {"mass": {"@value": f"{mass}"}, "inertia": {
        "@ixx": f"{mass * (y * y + z * z) / 12:.3e}", "@ixy": "0", "@ixz": "0",
        "@iyy": f"{mass * (x * x + z * z) / 12:.3e}", "@iyz": "0", "@izz": f"{mass * (x * x + y * y) / 12:.3e}"}}


def _pad_parts(geometry: Linkage) -> tuple[list[dict], list[dict]]:
    """A carriage sliding along the approach axis, and on it one pad per side sliding across.

    One carriage for both pads, as the real fingers share one actuator: the pads are always level
    with each other, so a held object cannot be rolled between them by one pad rising.
    """
    carriage = f"{GRIPPER_PREFIX}pad_carriage"
    links = [{"@name": carriage, "inertial": copy.deepcopy(_TINY_INERTIAL)}]
    joints = [
        {"@name": f"{GRIPPER_PREFIX}pad_lift", "@type": "prismatic", "origin": {"@xyz": "0 0 0", "@rpy": "0 0 0"},
         "parent": {"@link": GRIPPER_PREFIX + "base_link_inertia"}, "child": {"@link": carriage},
         "axis": {"@xyz": "0 0 1"},  # positive: out toward the object, as the fingers swing closed
         "limit": {"@lower": "0", "@upper": f"{float(geometry.lift(CLOSED_ANGLE)):.6f}", "@effort": "1000",
                   "@velocity": "1"}},
    ]
    y, z = geometry.pad(0.0)
    face = PAD_SIZE[1] / 2
    for side in SIDES:
        pad = f"{GRIPPER_PREFIX}{side}_pad"
        # Pad frames as the URDF's: y points away from the other pad (the left finger is turned by pi).
        origin_y, yaw = (y, 0.0) if side == "right" else (-y, math.pi)
        collision = _box((PAD_SIZE[0], PAD_COLLISION_DEPTH, PAD_SIZE[2]),
                         xyz=f"0 {PAD_COLLISION_DEPTH / 2 - face:.6f} 0")
        visual = {**_box(PAD_SIZE), "material": {"@name": "pad", "color": {"@rgba": "0.9 0.9 0.9 1"}}}
        links.append({"@name": pad, "inertial": _inertial(PAD_MASS, PAD_SIZE), "visual": visual,
                      "collision": collision})
        joints.append(
            {"@name": f"{pad}_slide", "@type": "prismatic",
             "origin": {"@xyz": f"0 {origin_y:.6f} {z:.6f}", "@rpy": f"0 0 {yaw}"},
             "parent": {"@link": carriage}, "child": {"@link": pad},
             "axis": {"@xyz": "0 -1 0"},  # positive: toward the other pad
             "limit": {"@lower": "0", "@upper": f"{float(geometry.slide(CLOSED_ANGLE)):.6f}", "@effort": "1000",
                       "@velocity": "1"}})
    return links, joints


def combined_urdf_text() -> str:
    """The UR5e with the 2F-85 on its flange and a grasp frame, as URDF text."""
    airo_models, airo_urdf = _airo()
    documents = []
    for name in ("ur5e", "robotiq_2f_85"):
        path = airo_models.get_urdf_path(name)
        document = airo_urdf.read_urdf(path)
        airo_urdf.make_paths_absolute(document, path)
        # PyBullet ignores these; dropping them keeps the cached file honest about what it models.
        for key in ("transmission", "mimic"):
            airo_urdf.delete_key(document, key)
        robot = document["robot"]
        for key in [k for k in robot if k.startswith("drake:")]:
            del robot[key]
        documents.append(document)
    arm, gripper = documents[0]["robot"], documents[1]["robot"]
    geometry = _linkage_from(gripper)
    # The arm's meshes colour their parts through several .mtl materials, of which PyBullet keeps
    # one (black for most links); one light grey reads as the real arm and shows up in camera images.
    for link in _as_list(arm.get("link")):
        for visual in _as_list(link.get("visual")):
            visual.setdefault("material", {"@name": "ur_grey", "color": {"@rgba": ARM_RGBA}})

    for link in _as_list(gripper.get("link")):
        if link["@name"].endswith("inner_finger"):
            link["collision"] = copy.deepcopy(_INNER_FINGER_COLLISION)
        elif link["@name"].endswith("inner_finger_pad"):
            # The linkage's pad frames stay (empty); the pads that grip are the prismatic ones.
            link.pop("collision", None)
            link.pop("visual", None)
    pad_links, pad_joints = _pad_parts(geometry)

    # Both files name a link `base_link`: prefix the gripper's names.
    gripper_links = _as_list(gripper.get("link"))
    gripper_joints = _as_list(gripper.get("joint"))
    for link in gripper_links:
        link["@name"] = GRIPPER_PREFIX + link["@name"]
    for joint in gripper_joints:
        joint["@name"] = GRIPPER_PREFIX + joint["@name"]
        joint["parent"]["@link"] = GRIPPER_PREFIX + joint["parent"]["@link"]
        joint["child"]["@link"] = GRIPPER_PREFIX + joint["child"]["@link"]

    links = _as_list(arm.get("link")) + gripper_links + pad_links + [{"@name": GRASP_LINK}]
    joints = _as_list(arm.get("joint")) + gripper_joints + pad_joints + [
        # tool0 has z out of the flange, as the gripper's base_link has z out through the fingers.
        {"@name": "tool0_to_gripper", "@type": "fixed", "origin": {"@xyz": "0 0 0", "@rpy": "0 0 0"},
         "parent": {"@link": "tool0"}, "child": {"@link": GRIPPER_PREFIX + "base_link"}},
        # The gripper closes along its x; a quarter turn makes the grasp frame close along y as the
        # Panda's does, so the same top-down orientation means the same grasp on both robots.
        {"@name": "gripper_to_grasp_frame", "@type": "fixed",
         "origin": {"@xyz": f"0 0 {GRASP_DEPTH}", "@rpy": f"0 0 {math.pi / 2}"},
         "parent": {"@link": GRIPPER_PREFIX + "base_link"}, "child": {"@link": GRASP_LINK}},
    ]
    for link in links:
        link.setdefault("inertial", copy.deepcopy(_TINY_INERTIAL))
    arm["link"], arm["joint"] = links, joints
    arm["@name"] = "ur5e_robotiq_2f_85"
    return airo_urdf.dict_to_xml_str(documents[0])


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "fmrobot" / "robots"


@functools.cache
def combined_urdf_path() -> str:
    """Write the combined URDF once per content; concurrent workers may race, so write atomically."""
    text = combined_urdf_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = cache_dir()
    path = folder / f"ur5e_robotiq-airo_models{version('airo-models')}-{digest}.urdf"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as handle:
            handle.write(text)
        os.replace(handle.name, path)
    return str(path)


class UR5eRobotiqConfig(RobotConfig):
    # 5 cm in front of the Panda's spot: the whole workspace stays reachable from table height up
    # to the scripted home height at any gripper yaw, and home_joints are solved for this base.
    base_position: tuple[float, float, float] = (0.05, 0.0, 0.625)


class UR5eRobotiq(Robot):
    Config = UR5eRobotiqConfig
    ee_link_name = GRASP_LINK
    # Elbow up, gripper pointing down (exactly TOP_DOWN) at the scripted policy's home (0.38, 0, 1.03)
    # with the base at (0.05, 0, table height); the pan is turned by the arm's sideways wrist offset.
    home_joints = (-0.4158, -1.9937, 1.7106, -1.2877, -1.5708, 2.7258)
    max_gripper_width = 0.085  # the 2F-85's rated stroke

    @property
    def urdf(self) -> str:  # type: ignore[override]
        return combined_urdf_path()

    def setup_gripper(self, links: dict[str, int]) -> None:
        c = self.client
        geometry = linkage()
        # Lookup tables over the knuckle angle: pad slide -> knuckle angle and pad lift.
        angles = np.linspace(0.0, CLOSED_ANGLE, 161)
        self._slides, self._angles, self._lifts = geometry.slide(angles), angles, geometry.lift(angles)
        self._slopes = np.gradient(self._lifts, self._slides)
        self._open_width = geometry.width(0.0)
        by_joint = {
            pb.getJointInfo(self.body_id, j, physicsClientId=c)[1].decode(): j
            for j in range(pb.getNumJoints(self.body_id, physicsClientId=c))
        }
        self.slides = [by_joint[f"{GRIPPER_PREFIX}{side}_pad_slide"] for side in SIDES]
        self.lift = by_joint[f"{GRIPPER_PREFIX}pad_lift"]
        self.pads = [links[f"{GRIPPER_PREFIX}{side}_pad"] for side in SIDES]
        # Linkage joints, turned to match the pads: (joint, sign of the knuckle angle).
        self.linkage = [(by_joint[GRIPPER_PREFIX + name], sign) for name, sign in (
            ("finger_joint", 1.0), ("right_outer_knuckle_joint", 1.0),
            ("left_inner_knuckle_joint", 1.0), ("right_inner_knuckle_joint", 1.0),
            ("left_inner_finger_joint", -1.0), ("right_inner_finger_joint", -1.0),
        )]
        # One motor drives both fingers of the real gripper: a gear keeps the pads symmetric, so
        # both reach a centred object together and neither shoves it aside.
        gear = pb.createConstraint(
            self.body_id, self.slides[0], self.body_id, self.slides[1], jointType=pb.JOINT_GEAR,
            jointAxis=[1, 0, 0], parentFramePosition=[0, 0, 0], childFramePosition=[0, 0, 0], physicsClientId=c,
        )
        pb.changeConstraint(gear, gearRatio=-1, erp=SYMMETRY_ERP, maxForce=SYMMETRY_FORCE, physicsClientId=c)
        # The carriage follows the pads' slide at every physics step through a gear whose ratio and
        # offset linearize the arc about the current slide (updated with every command).
        self._arc = pb.createConstraint(
            self.body_id, self.lift, self.body_id, self.slides[0], jointType=pb.JOINT_GEAR, jointAxis=[1, 0, 0],
            parentFramePosition=[0, 0, 0], childFramePosition=[0, 0, 0], physicsClientId=c,
        )
        pb.setJointMotorControl2(self.body_id, self.lift, pb.VELOCITY_CONTROL, force=0.0, physicsClientId=c)
        for pad in self.pads:
            pb.changeDynamics(self.body_id, pad, lateralFriction=1.0, spinningFriction=0.01, physicsClientId=c)

    def reset_gripper(self) -> None:
        c = self.client
        for joint in (*self.slides, self.lift, *(j for j, _ in self.linkage)):
            pb.resetJointState(self.body_id, joint, 0.0, physicsClientId=c)
        self.command_gripper(0.0)

    def command_gripper(self, closure: float) -> None:
        c = self.client
        # Closure is a fraction of the stroke, as for the Panda: 0.5 asks for half the rated width.
        width = (1.0 - closure) * self.max_gripper_width
        target = min(max((self._open_width - width) / 2, 0.0), float(self._slides[-1]))
        force = self.config.gripper_force
        pb.setJointMotorControlArray(
            self.body_id, self.slides, pb.POSITION_CONTROL, targetPositions=[target, target],
            forces=[force, force], physicsClientId=c,
        )
        slide = pb.getJointState(self.body_id, self.slides[0], physicsClientId=c)[0]
        lift = float(np.interp(slide, self._slides, self._lifts))
        slope = float(np.interp(slide, self._slides, self._slopes))
        # The gear holds  lift + ratio * slide = target;  here  lift = (lift - slope * slide) + slope * slide.
        pb.changeConstraint(self._arc, gearRatio=-slope, relativePositionTarget=lift - slope * slide, erp=ARC_ERP,
                            maxForce=ARC_FORCE, physicsClientId=c)
        angle = float(np.interp(slide, self._slides, self._angles))
        pb.setJointMotorControlArray(
            self.body_id, [j for j, _ in self.linkage], pb.POSITION_CONTROL,
            targetPositions=[sign * angle for _, sign in self.linkage],
            forces=[LINKAGE_TORQUE] * len(self.linkage), physicsClientId=c,
        )

    def gripper_width(self) -> float:
        slides = pb.getJointStates(self.body_id, self.slides, physicsClientId=self.client)
        width = self._open_width - slides[0][0] - slides[1][0]
        # The URDF opens a millimetre past the rated stroke.
        return min(max(width, 0.0), self.max_gripper_width)
