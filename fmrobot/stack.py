"""Assemble a runnable stack from a composed config: validate everything, then build.

All component configs are validated before the first component is built, so a typo in
the last group fails in milliseconds instead of after a simulator has loaded.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fmrobot import registry
from fmrobot.errors import ConfigError, shown
from fmrobot.interfaces import FaultInjection, UsesLanguageModel
from fmrobot.runner import Runner, RunnerConfig

#: Config groups that name a component, in build order.
COMPONENT_GROUPS = ("task", "env", "perception", "planner", "policy", "safety", "executor")
#: What a fault may break (fmrobot/faults/__init__.py).
FAULT_TARGETS = ("none", "perception", "language_model", "environment")


class VideoSettings(BaseModel):
    """The `video` group: which episodes get an MP4, and whether perception is drawn into it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    episodes: Literal["none", "first", "all"] = "first"
    annotate: bool = False  # each perception's boxes, labels and scores, drawn into the frames after it
    fps: float | None = Field(default=None, gt=0, le=1000)  # frames per simulated second; None: the env's rate


class RecordSettings(BaseModel):
    """`record`: what else each episode writes besides its trace and video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rerun: bool = False  # a Rerun recording per episode: rerun/seed_<seed>.rrd (fmrobot/viz/rerun_recording.py)

    @field_validator("rerun")
    @classmethod
    def _sdk_installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("rerun") is None:  # finds it without importing it
            raise ValueError("record.rerun=true needs rerun-sdk, which is not installed: pip install 'fmrobot[viz]'")
        return value


class RunSettings(BaseModel):
    """The top-level settings of `python -m fmrobot.run` besides the component groups."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0, le=2**31 - 1)  # numpy seeds and trace names stay in range
    episodes: int = Field(default=1, ge=1, le=1_000_000)
    video: VideoSettings = VideoSettings()
    annotate: bool = False  # save each perception's image with boxes, labels and scores
    record: RecordSettings = RecordSettings()
    runner: RunnerConfig = RunnerConfig()
    # Free text instead of the task's generated instruction; the scene stays each seed's.
    instruction: str | None = Field(default=None, min_length=1, max_length=2000)
    # Goal fields (the task's goal model) to judge by; None: the task's goal for each seed.
    goal: dict[str, Any] | None = None
    # Into a run directory that holds a run of this config: continue it (false: start over beside it).
    resume: bool = True
    allow_crashes: bool = False  # true: a run whose episodes crashed still exits 0

    @field_validator("video", mode="before")
    @classmethod
    def _video_shorthand(cls, value: Any) -> Any:
        # Configs built in code may still say video="first": the same as the group option.
        return {"episodes": value} if isinstance(value, str) else value

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "RunSettings":
        known = {k: config[k] for k in cls.model_fields if k in config}
        try:
            return cls.model_validate(known)
        except ValidationError as error:
            raise ConfigError(f"invalid run settings: {registry.describe_errors(error)}") from None

    def video_seeds(self) -> frozenset[int]:
        if self.video.episodes == "all":
            return frozenset(range(self.seed, self.seed + self.episodes))
        return frozenset({self.seed}) if self.video.episodes == "first" else frozenset()


#: Top-level keys of `python -m fmrobot.run`'s config besides the component groups.
RUN_KEYS = frozenset({*RunSettings.model_fields, "robot", "llm", "responder", "success_detector", "level",
                      "fault"})


def check_run_keys(config: Mapping[str, Any]) -> None:
    """A key the run does not know (`+episode=5`, a typo of `episodes`) would be ignored in silence."""
    unknown = sorted(str(k) for k in config if k not in RUN_KEYS and k not in COMPONENT_GROUPS)
    if unknown:
        from fmrobot.hints import did_you_mean

        known = sorted({*RUN_KEYS, *COMPONENT_GROUPS})
        raise ConfigError(f"unknown top-level config key(s) {', '.join(shown(k, 60) for k in unknown[:5])}"
                          f"{did_you_mean(unknown[0], known)} (the run knows: {', '.join(known)})")


def _needs_llm(planner_cls: type) -> bool:
    return isinstance(planner_cls, UsesLanguageModel) and bool(planner_cls.needs_llm)


def resolve_components(config: Mapping[str, Any]) -> dict[str, registry.Resolved]:
    resolved = {}
    for group in COMPONENT_GROUPS:
        if group not in config:
            raise ConfigError(f"the run config has no `{group}` group; choose one of: {', '.join(registry.available(group))}")
        resolved[group] = registry.resolve(group, config[group])
    resolved["fault"] = resolve_fault(config)
    if config.get("llm") is not None and _needs_llm(resolved["planner"].cls):
        resolved["llm"] = registry.resolve("llm", config["llm"])  # its options, and that its model can load here
    return resolved


def resolve_fault(config: Mapping[str, Any]) -> registry.Resolved:
    """The `fault` group, validated (no group: no fault); a fault of a part the stack lacks fails here."""
    fault = registry.resolve("fault", config.get("fault") or {"name": "none"})
    target = getattr(fault.cls, "target", None)
    if target not in FAULT_TARGETS:
        raise ConfigError(f"fault {fault.name!r} has target {target!r}; "
                          f"a fault breaks one of: {', '.join(FAULT_TARGETS)}")
    if target == "language_model" and "planner" in config:
        planner = registry.resolve("planner", config["planner"])
        if not _needs_llm(planner.cls):
            raise ConfigError(f"fault {fault.name!r} breaks the language model, but planner {planner.name!r} "
                              "uses none; choose a planner that does (planner=llm_scoring or planner=llm_structured)")
    return fault


def build_planner(planner: registry.Resolved, config: Mapping[str, Any], fault: Any = None) -> Any:
    """The planner, with a language model built from the `llm` group if it asks for one (broken by
    `fault` when that is a language-model fault)."""
    if not _needs_llm(planner.cls):
        return planner.build()
    if config.get("llm") is None:
        raise ConfigError(f"planner {planner.name!r} needs a language model; choose one with llm=<name> "
                          f"({', '.join(registry.available('llm'))})")
    llm = registry.resolve("llm", config["llm"]).build()
    if fault is not None and fault.target == "language_model":
        llm = fault.wrap(llm)
    return planner.build(llm=llm)


def build_success_detector(detector: registry.Resolved, config: Mapping[str, Any], planner: Any) -> Any:
    """The success detector. One that needs a language model shares the planner's (one model loaded, broken
    by the same fault), or gets its own from the `llm` group when the planner uses none. None for
    `success_detector=none`: the runner then skips the step entirely (no detection time in results)."""
    from fmrobot.success_detection import NoSuccessDetector

    if detector.cls is NoSuccessDetector:
        detector.build()  # its config is checked all the same
        return None
    if not _needs_llm(detector.cls):
        return detector.build()
    llm = getattr(planner, "llm", None) if _needs_llm(type(planner)) else None
    if llm is None:
        if config.get("llm") is None:
            raise ConfigError(f"success detector {detector.name!r} needs a language model; choose one with "
                              f"llm=<name> ({', '.join(registry.available('llm'))})")
        llm = registry.resolve("llm", config["llm"]).build()
    return detector.build(llm=llm)


def build_env(config: Mapping[str, Any], task_resolved: registry.Resolved | None = None,
              env_resolved: registry.Resolved | None = None) -> Any:
    """The environment (with its task) the `task`, `env` and `robot` groups describe."""
    task = (task_resolved or registry.resolve("task", config["task"])).build()
    try:
        return (env_resolved or registry.resolve("env", config["env"])).build(task=task, robot=config.get("robot"))
    except ValidationError as error:
        raise ConfigError(f"invalid env or robot config: {registry.describe_errors(error)}") from None
    except ValueError as error:
        raise ConfigError(f"could not build the env: {error}") from None


def build_runner(config: Mapping[str, Any]) -> Runner:
    settings = RunSettings.from_config(config)
    parts = resolve_components(config)
    if config.get("llm") is not None and _needs_llm(parts["planner"].cls):
        # Validated now, before the env is built; a planner without one never imports a language model.
        registry.resolve("llm", config["llm"])
    responder = registry.resolve("responder", config["responder"]) if config.get("responder") else None
    detector = registry.resolve("success_detector", config["success_detector"]) if config.get("success_detector") \
        else None
    env = build_env(config, parts["task"], parts["env"])
    try:
        set_video_fps = getattr(env, "set_video_fps", None)  # envs without it record at their own rate
        if settings.video.fps is not None and set_video_fps is not None:
            try:
                set_video_fps(settings.video.fps)
            except ValueError as error:
                raise ConfigError(f"invalid video.fps: {error}") from None
        if settings.video.annotate and not all(hasattr(env, a) for a in ("video_frame_steps", "video_camera")):
            raise ConfigError(f"video.annotate=true needs an env that tells each video frame's step and camera "
                              f"(video_frame_steps, video_camera); env {parts['env'].name!r} does not")
        fault = parts["fault"].build()
        perceptor = parts["perception"].build()
        if fault.target == "environment":
            if not isinstance(env, FaultInjection):
                raise ConfigError(f"fault {parts['fault'].name!r} breaks the simulated world, but env "
                                  f"{parts['env'].name!r} takes no faults (it has no inject_fault method)")
            env.inject_fault(fault)
        elif fault.target != "none":
            from fmrobot.faults import EpisodeFaults

            env = EpisodeFaults(env, fault)  # seeds the fault per episode and hands its events to the runner
            if fault.target == "perception":
                perceptor = fault.wrap(perceptor)
        planner = build_planner(parts["planner"], config, fault)
        return Runner(
            env=env,
            perceptor=perceptor,
            planner=planner,
            policy=parts["policy"].build(),
            shield=parts["safety"].build(),
            responder=responder.build() if responder else None,
            config=settings.runner,
            video_annotate=settings.video.annotate,
            success_detector=build_success_detector(detector, config, planner) if detector else None,
        )
    except BaseException:
        env.close()
        raise
