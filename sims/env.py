"""The tabletop environment: a gymnasium env and the typed face the fmrobot runner drives.

Both faces share one world and one control step: an absolute end-effector target is
turned into joint targets by inverse kinematics and held for `physics_hz / control_hz`
physics steps. Images are rendered only when asked for (`observe(images=True)`,
`obs_mode="rgbd"`), because rendering costs far more than physics. A recorded video
costs the episode only the link poses of each frame; its frames are rendered when
asked for, in the video's own cheap copy of the scene (sims/video.py).
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import Any, Collection, Literal, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fmrobot import registry
from fmrobot.types import TOP_DOWN, Action, EpisodeSpec, Observation, Obstruction
from sims.cameras import Camera, CameraConfig
from sims.faults import PhysicsCheck, WorldFault
from sims.randomization import RandomizationConfig, add_clutter, draw_lighting, episode_rng, tint_table
from sims.robots import Robot, resolve_robot
from sims.tasks.base import Goal, Task
from sims.tasks.composition import ComposedTask
from sims.tasks.domain import TaskGoalDomain
from sims.video import VideoScene
from sims.world import TABLE_TOP_Z, Renderer, World, collision_parts, quiet_stdout


class EnvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    physics_hz: int = Field(default=240, ge=60, le=2000)
    control_hz: int = Field(default=20, ge=1, le=240)
    solver_iterations: int = Field(default=50, ge=1, le=500)
    renderer: Renderer = "auto"
    cameras: tuple[CameraConfig, ...] = (CameraConfig(),)
    video_camera: CameraConfig = CameraConfig(
        name="video", eye=(1.2, 0.7, 1.35), target=(0.4, 0.0, 0.8), width=320, height=240, fov_deg=50.0
    )
    video_every: int = Field(default=2, ge=1)  # control steps per video frame
    obs_mode: Literal["state", "rgbd"] = "state"
    settle_seconds: float = Field(default=0.25, ge=0.0)
    randomization: RandomizationConfig = RandomizationConfig()  # domain randomization (sims/randomization.py)
    # Faster than this (m/s), an object has been flung by a solver blow-up, not by the robot: SimulationError.
    max_object_speed: float = Field(default=10.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> "EnvConfig":
        if self.physics_hz % self.control_hz:
            raise ValueError(f"physics_hz ({self.physics_hz}) must be a multiple of control_hz ({self.control_hz})")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        if not self.cameras:
            raise ValueError("at least one camera is needed")
        return self


MAX_JOINT_SPEED = 20.0  # rad/s; bounds the gymnasium observation space


def load_task(name: str) -> type[Task]:
    """A task class by its registered name (entry-point group fmrobot.tasks)."""
    return registry.load("task", name)


class TabletopEnv(gym.Env):
    """A robot arm at a table with a task's objects.

    Gymnasium face: `reset(seed=)` / `step(array)` with a dict observation of robot state
    (plus the first camera's RGB-D with `obs_mode="rgbd"`), sparse reward 1 on success.
    Typed face (fmrobot's `Environment`): `reset_episode`, `observe`, `apply`, `evaluate`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    Config = EnvConfig

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | None = None,
        *,
        task: Task | str = "pick_place",
        robot: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ):
        self.config = cfg = config if isinstance(config, EnvConfig) else EnvConfig.model_validate(dict(config or {}))
        self.task: Task = load_task(task)() if isinstance(task, str) else task
        if self.task.level is not None and self.task.level.compose:
            self.task = ComposedTask(self.task)  # level L4: the task, then a clause from another family
        chosen_robot = resolve_robot(robot)
        self.robot_config = chosen_robot.config
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.render_mode = render_mode
        self.world = World(cfg.physics_hz, cfg.solver_iterations, cfg.renderer)
        self.robot: Robot = chosen_robot.cls(self.world.client, chosen_robot.config)
        self.cameras = [Camera(c) for c in cfg.cameras]
        self._episode_cameras = self.cameras  # this episode's (possibly jittered) cameras
        self._light: dict[str, Any] | None = None  # this episode's lighting; None: PyBullet's default
        self.video_camera = Camera(cfg.video_camera)
        self.substeps = cfg.physics_hz // cfg.control_hz
        self.video_every = cfg.video_every  # set_video_fps changes it
        self.video_fps = cfg.control_hz / cfg.video_every
        self.metadata = {**self.metadata, "render_fps": self.video_fps}
        self.max_steps = self.task.config.max_steps
        self._spec = self.task.spec()
        self._goal: Goal | None = None
        self._episode: EpisodeSpec | None = None
        self._steps = 0
        self._recording = False
        self._video: VideoScene | None = None  # made on the first recorded episode or render()
        self._video_watching = False  # the video scene follows this episode's bodies
        self._video_poses: list[tuple[int, np.ndarray]] = []  # (control step, link poses) per frame
        self._frames: list[np.ndarray] | None = None  # rendered from _video_poses on demand
        self._other_views: dict[CameraConfig, VideoScene] = {}  # render_recorded's mirrors, one per camera
        self._fault: WorldFault | None = None
        self._physics_check: PhysicsCheck | None = None  # made for each episode's bodies at reset
        self.observation_space = self._make_observation_space()
        lo = np.array([-1.5, -1.5, 0.0, -1, -1, -1, -1, 0], dtype=np.float32)
        hi = np.array([1.5, 1.5, 2.0, 1, 1, 1, 1, 1], dtype=np.float32)
        self.action_space = spaces.Box(lo, hi, dtype=np.float32)

    # ------------------------------------------------------------------ typed face

    def reset_episode(self, seed: int, record_video: bool = False, *, instruction: str | None = None,
                      goal: Mapping[str, Any] | None = None) -> tuple[EpisodeSpec, Observation]:
        """Start the episode of `seed`. `instruction` replaces the task's generated one (the scene
        stays the seed's); `goal` (fields of the task's goal model, merged into the seed's goal)
        is what the episode is then judged by, and what the oracle plan solves."""
        rng = np.random.default_rng(seed)
        self.world.reset()
        self.robot.load()
        self.world.robot_body_id = self.robot.body_id
        generated, self._goal = self.task.setup(self.world, rng)
        if goal is not None:
            self._goal = given_goal(self._goal, goal, self._spec.vocabulary, self.world.bodies)
        self._randomize(seed)
        self.world.step(int(self.config.settle_seconds * self.config.physics_hz))
        self._steps = 0
        self._physics_check = PhysicsCheck(self.world, self.robot.body_id, self.robot.movable_joints,
                                           self.config.max_object_speed)
        if self._fault is not None:
            self._fault.begin(self.world, seed)
        self._episode = EpisodeSpec(
            task=self._spec, seed=seed, instruction=generated if instruction is None else instruction,
            oracle_plan=self.task.oracle_plan(self._goal), goal=self._goal.model_dump(mode="json"),
            given_instruction=instruction is not None, given_goal=goal is not None,
            domain=TaskGoalDomain(self.task),
        )
        self._recording = record_video
        self._video_watching = False
        self._video_poses, self._frames = [], None
        if record_video:
            self._record_video_frame()
        return self._episode, self.observe()

    def _randomize(self, seed: int) -> None:
        """Domain randomization, from its own stream so the task's scene stays the same."""
        look = self.config.randomization
        self._episode_cameras, self._light = self.cameras, None
        if not look.active:
            return
        rng = episode_rng(seed)
        if look.table_tint != "none":
            tint_table(self.world, rng, look.table_tint)
        if look.clutter:
            add_clutter(self.world, rng, look, self.task.workspace())
        if look.lighting:
            self._light = draw_lighting(rng)
        if look.camera_jitter > 0:
            self._episode_cameras = [camera.jittered(rng, look.camera_jitter) for camera in self.cameras]

    @property
    def goal(self) -> Goal:
        """The goal the current episode is judged by (privileged), as the task's goal model."""
        if self._goal is None:
            raise RuntimeError("no episode yet: call reset_episode(seed) or reset(seed=...) first")
        return self._goal

    @property
    def episode(self) -> EpisodeSpec:
        if self._episode is None:
            raise RuntimeError("no episode yet: call reset_episode(seed) or reset(seed=...) first")
        return self._episode

    def observe(self, images: bool = False) -> Observation:
        frames = ()
        labels: dict[int, str] = {}
        if images:
            flag = self.world.render_flag
            with quiet_stdout():  # the EGL plugin reports its GL vendor on a fresh scene
                frames = tuple(camera.render(self.world.client, flag, light=self._light)
                               for camera in self._episode_cameras)
            labels = self.world.segmentation_labels()
        return Observation(
            step=self._steps,
            time=self._steps / self.config.control_hz,
            dt=1.0 / self.config.control_hz,
            robot=self.robot.state(),
            frames=frames,
            segmentation_labels=labels,
        )

    def apply(self, action: Action) -> Observation:
        self._control(action.ee_position, action.ee_orientation, action.gripper)
        return self.observe()

    def settle(self, max_seconds: float = 1.0) -> Observation:
        """Hold the robot still until every object has come to rest (or time runs out).

        Success predicates judge a scene at rest; scoring while a dropped block still
        rocks would depend on the exact frame the last skill ended.
        """
        for _ in range(int(max_seconds * self.config.control_hz)):
            if self.world.all_at_rest():
                break
            self.world.step(self.substeps)
            self._check_physics()
        self._check_physics(thorough=True)  # the world about to be judged: every pose too
        return self.observe()

    def inject_fault(self, fault: WorldFault | None) -> None:
        """Break the world on purpose from the next episode on (sims/faults.py); None: no fault."""
        self._fault = fault

    def fault_events(self) -> list[dict[str, Any]]:
        """What the injected fault did since the last call: {"fault", "effect", "step"} each."""
        return self._fault.drain_events() if self._fault is not None else []

    def evaluate(self) -> dict[str, bool]:
        if self._goal is None:
            raise RuntimeError("no episode yet: call reset_episode(seed) first")
        return self.task.predicates(self.world, self._goal)

    def sweep(self, start, end, orientation, margin: float, ignore: Collection[str] = (),
              only: Sequence[str] | None = None) -> Obstruction | None:
        """Collision queries for the safety shield (fmrobot.interfaces.CollisionProbe): the
        robot's hand and open fingers (their collision shapes) moved from `start` to `end`."""
        if only is not None:
            ignore = {*ignore, *(label for label in self.world.bodies
                                 if not any(fnmatchcase(label.lower(), p.lower()) for p in only))}
        # What the robot touches (holds, or is handling) moves with the gripper rather than standing in
        # its way: it is swept too, where it sits relative to the hand now.
        held = [label for label in self.world.bodies if self.world.touching_robot(label)]
        hand = self.robot.state().ee_pose
        parts = [*self.robot.gripper_parts, *(part for label in held for part in collision_parts(
            self.world.client, self.world.body(label).body_id, [-1], (hand.position, hand.orientation)))]
        hit = self.world.sweep_shapes(start, end, orientation, parts, margin, {*ignore, *held})
        return None if hit is None else Obstruction(label=hit[0], distance=hit[1], at=hit[2])

    def set_video_fps(self, fps: float) -> None:
        """Record a video frame every `control_hz / fps` control steps (rounded); `video_fps` then
        says the rate the frames really have. Each frame costs a few milliseconds to draw."""
        if not 0 < fps <= self.config.control_hz:
            raise ValueError(f"video fps must be above 0 and at most control_hz ({self.config.control_hz}), got {fps}")
        self.video_every = max(1, round(self.config.control_hz / fps))
        self.video_fps = self.config.control_hz / self.video_every
        self.metadata = {**self.metadata, "render_fps": self.video_fps}

    def video_frames(self) -> list[np.ndarray]:
        """The recorded episode's video, rendered now (once) from the poses recorded at each frame."""
        if self._frames is None:
            poses = [p for _, p in self._video_poses]
            self._frames = self._video_scene().render_all(poses) if poses else []
        return list(self._frames)

    def video_frame_steps(self) -> list[int]:
        """The control step each video frame shows."""
        return [step for step, _ in self._video_poses]

    def render_recorded(self, camera: CameraConfig | Mapping[str, Any]) -> list[np.ndarray]:
        """The recorded episode's frames (one per `video_frame_steps()`) seen through `camera` rather than
        the video camera: rendered now, from the same recorded poses, in a mirror scene of its own."""
        camera = camera if isinstance(camera, CameraConfig) else CameraConfig.model_validate(dict(camera))
        if camera not in self._other_views:
            self._other_views[camera] = VideoScene(Camera(camera))
        scene = self._other_views[camera]
        scene.watch(self.world.client)  # this episode's bodies, in the order the poses were captured in
        return scene.render_all([p for _, p in self._video_poses])

    def render_video_frame(self) -> np.ndarray:
        """The video camera's image of the world now."""
        scene = self._video_scene()
        return scene.render(scene.capture())

    def _video_scene(self) -> VideoScene:
        if self._video is None:
            self._video = VideoScene(self.video_camera)
        if not self._video_watching:
            self._video.watch(self.world.client)
            self._video_watching = True
        return self._video

    def _record_video_frame(self) -> None:
        self._video_poses.append((self._steps, self._video_scene().capture()))

    def _check_physics(self, thorough: bool = False) -> None:
        if self._physics_check is None:
            raise RuntimeError("no episode yet: call reset_episode(seed) first")
        self._physics_check(self._steps, thorough=thorough)

    def _control(self, position, orientation, closure: float) -> None:
        self.robot.command(position, orientation, closure)
        if self._fault is not None:
            self._fault.before_step(self.world, self._steps)
        self.world.step(self.substeps)
        self._steps += 1
        if self._fault is not None:
            self._fault.after_step(self.world, self._steps)
        self._check_physics()
        if self._goal is not None:
            self.task.watch(self.world, self._goal)
        if self._recording and self._steps % self.video_every == 0:
            self._record_video_frame()

    # ------------------------------------------------------------------ gymnasium face

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Gymnasium reset. `options` may hold "instruction" (free text instead of the task's
        generated instruction) and "goal" (goal fields the episode is judged by)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"instruction", "goal"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; options are: instruction, goal")
        episode_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        episode, _ = self.reset_episode(episode_seed, instruction=options.get("instruction"),
                                        goal=options.get("goal"))
        return self._gym_observation(), {"instruction": episode.instruction, "seed": episode_seed,
                                         "goal": dict(episode.goal)}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (8,):
            raise ValueError(f"an action has 8 entries (x, y, z, qx, qy, qz, qw, gripper), got shape {a.shape}")
        norm = math.sqrt(a[3] * a[3] + a[4] * a[4] + a[5] * a[5] + a[6] * a[6])
        # Same reading of the array as Action.from_array, without building the value object.
        orientation = (a[3] / norm, a[4] / norm, a[5] / norm, a[6] / norm) if norm > 1e-6 else TOP_DOWN
        self._control((a[0], a[1], a[2]), orientation, min(max(a[7], 0.0), 1.0))
        predicates = self.evaluate()
        terminated = predicates["success"]
        truncated = self._steps >= self.max_steps
        info = {"predicates": predicates}
        return self._gym_observation(), float(terminated), terminated, truncated, info

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_video_frame()
        return None

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None
        for scene in self._other_views.values():
            scene.close()
        self._other_views.clear()
        self.world.close()

    def _make_observation_space(self) -> spaces.Dict:
        n = len(self.robot.home_joints)
        fields: dict[str, spaces.Space] = {
            "joint_positions": spaces.Box(-2 * np.pi, 2 * np.pi, (n,), np.float32),
            "joint_velocities": spaces.Box(-MAX_JOINT_SPEED, MAX_JOINT_SPEED, (n,), np.float32),
            "ee_position": spaces.Box(-3.0, 3.0, (3,), np.float32),
            "ee_orientation": spaces.Box(-1.0, 1.0, (4,), np.float32),
            "gripper_width": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
        if self.config.obs_mode == "rgbd":
            cam = self.config.cameras[0]
            fields["rgb"] = spaces.Box(0, 255, (cam.height, cam.width, 3), np.uint8)
            fields["depth"] = spaces.Box(0.0, cam.far, (cam.height, cam.width), np.float32)
        return spaces.Dict(fields)

    def _gym_observation(self) -> dict[str, np.ndarray]:
        q, dq, position, orientation, width = self.robot.raw_state()
        obs = {
            "joint_positions": np.array(q, dtype=np.float32),
            "joint_velocities": np.array(dq, dtype=np.float32).clip(-MAX_JOINT_SPEED, MAX_JOINT_SPEED),
            "ee_position": np.array(position, dtype=np.float32).clip(-3.0, 3.0),
            "ee_orientation": np.array(orientation, dtype=np.float32).clip(-1.0, 1.0),
            "gripper_width": np.array([width], dtype=np.float32).clip(0.0, 1.0),
        }
        if self.config.obs_mode == "rgbd":
            with quiet_stdout():
                frame = self._episode_cameras[0].render(self.world.client, self.world.render_flag,
                                                        segmentation=False, light=self._light)
            obs["rgb"] = np.array(frame.rgb)
            obs["depth"] = np.clip(np.array(frame.depth), 0.0, self.config.cameras[0].far)
        return obs


def given_goal(seed_goal: Goal, fields: Mapping[str, Any], vocabulary: Sequence[str],
               bodies: Mapping[str, Any]) -> Goal:
    """The seed's goal with `fields` replaced, validated by the task's goal model; every object
    label it names must be in the scene. ValueError saying what is wrong and what exists."""
    if not isinstance(fields, Mapping):
        raise ValueError(f"a goal is a mapping of goal fields, got {type(fields).__name__}")
    model = type(seed_goal)
    try:
        goal = model.model_validate({**seed_goal.model_dump(), **dict(fields)})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "goal"
        raise ValueError(f"invalid goal for {model.__name__}: {where}: {first.get('msg')}; fields: "
                         f"{', '.join(model.model_fields)}") from None
    known = set(vocabulary)
    missing = sorted({label for label in _strings(goal.model_dump()) if label in known and label not in bodies})
    if missing:
        raise ValueError(f"the goal names {', '.join(missing)}, not in this scene; the scene holds: "
                         f"{', '.join(sorted(bodies))}")
    return goal


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def gymnasium_id(task_name: str) -> str:
    return "fmrobot/" + "".join(part.capitalize() for part in task_name.split("_")) + "-v0"


def register_gymnasium_envs() -> list[str]:
    """Register one gymnasium id per installed task (`fmrobot/PickPlace-v0`, ...).

    Called explicitly, never on import: `sims.env.register_gymnasium_envs()` then
    `gymnasium.make("fmrobot/PickPlace-v0")`.
    """
    ids = []
    for task in registry.available("task"):
        env_id = gymnasium_id(task)
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="sims.env:TabletopEnv", kwargs={"task": task})
        ids.append(env_id)
    return sorted(ids)


__all__ = ["TABLE_TOP_Z", "EnvConfig", "TabletopEnv", "gymnasium_id", "load_task", "register_gymnasium_envs"]
