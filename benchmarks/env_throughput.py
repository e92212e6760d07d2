"""Env step throughput against raw PyBullet stepping the same scene, side by side.

The arm follows a circle of end-effector targets over the pick_place scene. Each round
resets the same episode, then times (order alternating between rounds):
  raw         - a hand-written PyBullet loop making the same motion: the joint targets the
                env's IK produced (recorded once, outside the timing) are sent with
                setJointMotorControlArray, then stepSimulation x substeps;
  step        - the gymnasium `env.step(array)`: IK every control step, dict observation,
                success predicates;
  apply       - the typed `env.apply(Action)` the fmrobot runner uses, same targets;
  raw static  - stepSimulation only with the arm holding still (for reference: a moving
                arm costs the physics engine more than a resting one).
Throughput is physics steps per wall second; the ratios are env over raw, median of the
rounds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import pybullet as pb

from benchmarks import common
from fmrobot.types import Action
from sims.env import TabletopEnv


def targets(steps: int) -> list[np.ndarray]:
    out = []
    for k in range(steps):
        angle = 2 * math.pi * k / steps
        out.append(np.array([0.5 + 0.1 * math.cos(angle), 0.1 * math.sin(angle), 0.8, 1, 0, 0, 0, 0.0],
                            dtype=np.float32))
    return out


def record_joint_targets(env: TabletopEnv, path: list[np.ndarray], seed: int) -> list[list[float]]:
    env.reset(seed=seed)
    recorded = []
    for action in path:
        env.step(action)
        recorded.append(list(env.robot.joint_targets))
    return recorded


def time_raw(env: TabletopEnv, joint_targets: list[list[float]], gripper: list[float]) -> float:
    client, body, substeps = env.world.client, env.robot.body_id, env.substeps
    arm, forces, fingers = env.robot.arm_joints, env.robot.forces, env.robot.fingers
    finger_forces = [env.robot.config.gripper_force] * len(fingers)
    start = time.perf_counter()
    for targets in joint_targets:
        pb.setJointMotorControlArray(body, arm, pb.POSITION_CONTROL, targetPositions=targets, forces=forces,
                                     physicsClientId=client)
        pb.setJointMotorControlArray(body, fingers, pb.POSITION_CONTROL, targetPositions=gripper,
                                     forces=finger_forces, physicsClientId=client)
        for _ in range(substeps):
            pb.stepSimulation(physicsClientId=client)
    return len(joint_targets) * substeps / (time.perf_counter() - start)


def time_static(env: TabletopEnv, steps: int) -> float:
    client, n = env.world.client, steps * env.substeps
    start = time.perf_counter()
    for _ in range(n):
        pb.stepSimulation(physicsClientId=client)
    return n / (time.perf_counter() - start)


def time_step(env: TabletopEnv, path: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for action in path:
        env.step(action)
    return len(path) * env.substeps / (time.perf_counter() - start)


def time_apply(env: TabletopEnv, path: list[np.ndarray]) -> float:
    actions = [Action.from_array(a) for a in path]  # built outside the timed loop, as a policy would
    start = time.perf_counter()
    for action in actions:
        env.apply(action)
    return len(actions) * env.substeps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200, help="control steps per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/env_throughput.json")
    args = parser.parse_args()

    env = TabletopEnv(task="pick_place")
    path = targets(args.steps)
    joint_targets = record_joint_targets(env, path, args.seed)
    open_fingers = [env.robot.max_gripper_width / 2] * 2
    timers = {"raw": lambda: time_raw(env, joint_targets, open_fingers), "step": lambda: time_step(env, path),
              "apply": lambda: time_apply(env, path), "raw static": lambda: time_static(env, args.steps)}
    rates: dict[str, list[float]] = {name: [] for name in timers}
    ratios: dict[str, list[float]] = {"step": [], "apply": []}
    for round_index in range(args.rounds):
        order = list(timers) if round_index % 2 == 0 else list(reversed(timers))
        measured = {}
        for name in order:
            env.reset(seed=args.seed)
            measured[name] = timers[name]()
            rates[name].append(measured[name])
        for name in ratios:
            ratios[name].append(measured[name] / measured["raw"])
    env.close()

    rows = [[name, statistics.median(values), min(values), max(values)] for name, values in rates.items()]
    print(f"physics steps per second, {args.rounds} rounds x {args.steps} control steps "
          f"({env.substeps} physics steps each), pick_place seed {args.seed}")
    print(common.table(["loop", "median steps/s", "min", "max"], rows))
    ratio_rows = [[f"{name} / raw", statistics.median(v), min(v), max(v)] for name, v in ratios.items()]
    print(common.table(["ratio", "median", "min", "max"], ratio_rows))
    saved = common.save(args.out, {
        "rounds": args.rounds, "control_steps": args.steps, "substeps": env.substeps, "seed": args.seed,
        "steps_per_second": rates, "ratios": ratios,
        "median_ratio": {name: statistics.median(v) for name, v in ratios.items()},
    })
    print(f"saved {saved}")


if __name__ == "__main__":
    main()
