"""Labelled object crops from randomized tabletop renders, for training perception.

    python -m sims.datasets.perception_crops --out data/crops --scenes 1500 --seed 0 \
        --exclude purple:bowl --exclude orange:block

Every scene varies what a deployed camera would see vary: object colours (jittered
around each named colour), sizes and poses, blocks dropped into bowls, random-shape
distractors, the table's tint, the arm's posture, the light and the camera pose. Each
visible object is saved as a region around its ground-truth box (with room to jitter
the crop), so the training code crops exactly as the perceptor does at run time.
Excluded colour-shape pairs never appear, to measure compositional generalization.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pybullet as pb
import pybullet_data
from PIL import Image

from sims.cameras import Camera, CameraConfig
from sims.objects import COLORS, create_block, create_bowl
from sims.robots.base import RobotConfig
from sims.robots.panda import Panda
from sims.tasks.base import sample_placements
from sims.world import TABLE_TOP_Z, World, quiet_stdout

SHAPES = ("block", "bowl")
BASE_CAMERA = CameraConfig()
REGION_MARGIN = 0.5  # region = ground-truth box grown by this fraction of its size on each side


def jittered_rgba(rng: np.random.Generator, color: str, jitter: float = 0.05) -> list[float]:
    rgb = np.clip(np.asarray(COLORS[color]) + rng.normal(0.0, jitter, 3), 0.0, 1.0)
    return [*rgb.tolist(), 1.0]


def _combos(exclude: set[tuple[str, str]]) -> dict[str, list[str]]:
    return {shape: [c for c in COLORS if (c, shape) not in exclude] for shape in SHAPES}


def build_scene(world: World, robot: Panda, rng: np.random.Generator,
                exclude: set[tuple[str, str]]) -> dict[int, dict]:
    """Populate a fresh world; return body id -> label record."""
    client = world.client
    world.reset()
    robot.load()
    home = np.asarray(robot.home_joints) + rng.normal(0.0, 0.25, len(robot.home_joints))
    for joint, q in zip(robot.arm_joints, home):
        pb.resetJointState(robot.body_id, joint, float(q), physicsClientId=client)
    robot._hold(home.tolist())
    tint = rng.uniform(0.75, 1.0, 3)
    pb.changeVisualShape(world.table_id, -1, rgbaColor=[*tint.tolist(), 1.0], physicsClientId=client)

    allowed = _combos(exclude)
    n_blocks, n_bowls, n_blobs = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(0, 4))
    block_colors = rng.choice(allowed["block"], size=min(n_blocks, len(allowed["block"])), replace=False)
    bowl_colors = rng.choice(allowed["bowl"], size=min(n_bowls, len(allowed["bowl"])), replace=False)
    block_sizes = rng.uniform(0.035, 0.05, len(block_colors))
    bowl_radii = rng.uniform(0.06, 0.09, len(bowl_colors))
    blob_scales = rng.uniform(0.8, 1.4, n_blobs)
    while True:  # a crowded draw that does not fit loses distractors first, then blocks
        radii = [r + 0.01 for r in bowl_radii] + [s * 0.75 for s in block_sizes] + [0.04 * s for s in blob_scales]
        try:
            spots = sample_placements(rng, radii, (0.3, 0.75), (-0.32, 0.32), gap=0.01, tries=300)
            break
        except ValueError:
            if len(blob_scales):
                blob_scales = blob_scales[:-1]
            elif len(block_colors) > 1:
                block_colors, block_sizes = block_colors[:-1], block_sizes[:-1]
            else:
                bowl_colors, bowl_radii = bowl_colors[:-1], bowl_radii[:-1]
    records: dict[int, dict] = {}
    bowl_spots = spots[: len(bowl_colors)]
    for color, radius, (x, y) in zip(bowl_colors, bowl_radii, bowl_spots):
        body = create_bowl(client, str(color), float(radius), float(rng.uniform(0.04, 0.06)), (x, y, TABLE_TOP_Z))
        pb.changeVisualShape(body, -1, rgbaColor=jittered_rgba(rng, str(color)), physicsClientId=client)
        records[body] = {"kind": "object", "color": str(color), "shape": "bowl"}
    for i, (color, size) in enumerate(zip(block_colors, block_sizes)):
        x, y = spots[len(bowl_colors) + i]
        z = TABLE_TOP_Z + size / 2
        if bowl_spots and rng.random() < 0.15:  # some blocks start in a bowl, as after a place
            x, y = bowl_spots[int(rng.integers(len(bowl_spots)))]
            z += 0.06
        body = create_block(client, str(color), float(size), 0.05, (x, y, z), float(rng.uniform(-math.pi, math.pi)))
        pb.changeVisualShape(body, -1, rgbaColor=jittered_rgba(rng, str(color)), physicsClientId=client)
        records[body] = {"kind": "object", "color": str(color), "shape": "block"}
    for i, scale in enumerate(blob_scales):
        x, y = spots[len(bowl_colors) + len(block_colors) + i]
        color = str(rng.choice(list(COLORS)))
        shape = str(rng.choice(DISTRACTOR_SHAPES))
        body = create_distractor(client, rng, shape, float(scale), (x, y))
        pb.changeVisualShape(body, -1, rgbaColor=jittered_rgba(rng, color), physicsClientId=client)
        records[body] = {"kind": "distractor", "color": color, "shape": shape}
    world.step(90)
    records[robot.body_id] = {"kind": "robot"}
    records[world.table_id] = {"kind": "table"}
    return records


#: Distractors come in every colour, so that colour and shape vary independently in training.
DISTRACTOR_SHAPES = ("object", "object", "cylinder", "ball")


def create_distractor(client: int, rng: np.random.Generator, shape: str, scale: float, xy) -> int:
    """A random-mesh object from pybullet_data ("object"), a cylinder or a ball."""
    x, y = xy
    if shape == "object":
        k = int(rng.integers(1000))
        urdf = f"{pybullet_data.getDataPath()}/random_urdfs/{k:03d}/{k:03d}.urdf"
        return pb.loadURDF(urdf, (x, y, TABLE_TOP_Z + 0.05), globalScaling=scale, physicsClientId=client)
    radius = 0.02 * scale
    if shape == "cylinder":
        height = float(rng.uniform(0.04, 0.07))
        collision = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=client)
        visual = pb.createVisualShape(pb.GEOM_CYLINDER, radius=radius, length=height, physicsClientId=client)
        z = TABLE_TOP_Z + height / 2
    else:
        collision = pb.createCollisionShape(pb.GEOM_SPHERE, radius=radius, physicsClientId=client)
        visual = pb.createVisualShape(pb.GEOM_SPHERE, radius=radius, physicsClientId=client)
        z = TABLE_TOP_Z + radius
    body = pb.createMultiBody(0.05, collision, visual, (x, y, z), physicsClientId=client)
    pb.changeDynamics(body, -1, rollingFriction=0.01, spinningFriction=0.01, physicsClientId=client)
    return body


def random_camera(rng: np.random.Generator) -> CameraConfig:
    eye = np.asarray(BASE_CAMERA.eye) + rng.uniform([-0.12, -0.25, -0.15], [0.12, 0.25, 0.15])
    target = np.asarray(BASE_CAMERA.target) + rng.uniform([-0.06, -0.06, 0.0], [0.06, 0.06, 0.03])
    return BASE_CAMERA.model_copy(update={"eye": tuple(eye.tolist()), "target": tuple(target.tolist()),
                                          "fov_deg": float(rng.uniform(45.0, 55.0))})


def random_lighting(rng: np.random.Generator) -> dict:
    azimuth, elevation = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 1.4)
    return {
        "lightDirection": [math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                           math.sin(elevation)],
        "lightAmbientCoeff": float(rng.uniform(0.45, 0.75)),
        "lightDiffuseCoeff": float(rng.uniform(0.3, 0.6)),
        "lightSpecularCoeff": float(rng.uniform(0.0, 0.1)),
    }


def region_of(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    mx, my = int(math.ceil((x1 - x0) * REGION_MARGIN)), int(math.ceil((y1 - y0) * REGION_MARGIN))
    return max(0, x0 - mx), max(0, y0 - my), min(shape[1], x1 + mx), min(shape[0], y1 + my)


def crops_of_view(rgb: np.ndarray, seg: np.ndarray, records: dict[int, dict], rng: np.random.Generator,
                  min_pixels: int = 30) -> list[tuple[np.ndarray, dict]]:
    out = []
    for body_id, record in records.items():
        if record["kind"] == "table":
            continue
        mask = seg == body_id
        if mask.sum() < (200 if record["kind"] == "robot" else min_pixels):
            continue
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        if record["kind"] == "robot":  # a patch of the arm the size of an object, not the whole arm
            ys, xs = np.nonzero(mask)
            pick = int(rng.integers(len(ys)))
            half = int(rng.integers(12, 30))
            x, y = int(xs[pick]), int(ys[pick])
            box = (max(0, x - half), max(0, y - half), x + half, y + half)
        out.append((box, dict(record)))
    # Empty table patches of object size.
    table = seg == next(b for b, r in records.items() if r["kind"] == "table")
    ys, xs = np.nonzero(table)
    for _ in range(2):
        pick = int(rng.integers(len(ys)))
        half = int(rng.integers(10, 28))
        x, y = int(xs[pick]), int(ys[pick])
        box = (max(0, x - half), max(0, y - half), x + half, y + half)
        if table[box[1]:box[3], box[0]:box[2]].mean() > 0.95:
            out.append((box, {"kind": "table"}))
    result = []
    for box, record in out:
        region = region_of(box, seg.shape)
        crop = rgb[region[1]:region[3], region[0]:region[2]]
        record["box"] = [int(box[0] - region[0]), int(box[1] - region[1]), int(box[2] - region[0]),
                         int(box[3] - region[1])]
        result.append((crop, record))
    return result


def generate(out: Path, scenes: int, seed: int, exclude: set[tuple[str, str]], views: int = 2) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    world = World(renderer="auto")
    robot = Panda(world.client, RobotConfig())
    counts: dict[str, int] = {}
    index = 0
    with (out / "labels.jsonl").open("w") as labels:
        for scene in range(scenes):
            rng = np.random.default_rng([seed, scene])
            records = build_scene(world, robot, rng, exclude)
            for view in range(views):
                camera = Camera(random_camera(rng))
                c = camera.config
                with quiet_stdout():
                    _, _, rgba, _, seg = pb.getCameraImage(
                        c.width, c.height, camera.view, camera.projection, renderer=world.render_flag,
                        physicsClientId=world.client, **random_lighting(rng))
                rgb = np.asarray(rgba, np.uint8).reshape(c.height, c.width, 4)[..., :3]
                seg = np.asarray(seg, np.int32).reshape(c.height, c.width)
                for crop, record in crops_of_view(rgb, seg, records, rng):
                    name = f"{index:06d}.png"
                    Image.fromarray(np.ascontiguousarray(crop)).save(out / "images" / name)
                    labels.write(json.dumps({"file": name, "scene": scene, "view": view, **record}) + "\n")
                    key = record["kind"] if record["kind"] != "object" else f"{record['color']} {record['shape']}"
                    counts[key] = counts.get(key, 0) + 1
                    index += 1
    world.close()
    meta = {"scenes": scenes, "views": views, "seed": seed, "exclude": sorted(f"{c}:{s}" for c, s in exclude),
            "colors": {k: list(v) for k, v in COLORS.items()}, "shapes": list(SHAPES), "crops": index,
            "counts": dict(sorted(counts.items()))}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def parse_pair(text: str) -> tuple[str, str]:
    color, _, shape = text.partition(":")
    if color not in COLORS or shape not in SHAPES:
        raise argparse.ArgumentTypeError(f"expected colour:shape with colour in {list(COLORS)} and shape in {SHAPES}")
    return color, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=1500)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", type=parse_pair, action="append", default=[],
                        help="colour:shape pair that never appears (repeatable)")
    args = parser.parse_args()
    meta = generate(args.out, args.scenes, args.seed, set(args.exclude), args.views)
    print(f"{meta['crops']} crops from {args.scenes} scenes x {args.views} views -> {args.out}")


if __name__ == "__main__":
    main()
