"""Find, validate and build components by name.

Components are registered by entry point, built-in ones exactly like plugins, so a
package installed next to fmrobot adds components without touching it. Entry points
are loaded only when their name is asked for, which keeps `import fmrobot` cheap.

A component is a class with an optional nested pydantic model `Config`; it is built as
`cls(config, **dependencies)`. A config node names its component by `name` (looked up
in the group's entry points) or by `_target_` (an importable class, never a function).

Configs from untrusted sources: with FMROBOT_UNTRUSTED_CONFIG=1 in the environment, a
`_target_` may only name classes in fmrobot, sims, the modules that installed packages
register as fmrobot entry points, and module prefixes listed (comma-separated) in
FMROBOT_TRUSTED_TARGETS. The switch is an environment variable, not a config key, so
the config it guards against cannot turn it off.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from fmrobot.errors import ConfigError, UnknownComponentError, one_line, shown
from fmrobot.interfaces import SourceCheck

#: config group -> entry-point group
GROUPS: dict[str, str] = {
    "task": "fmrobot.tasks",
    "env": "fmrobot.envs",
    "perception": "fmrobot.perceptors",
    "planner": "fmrobot.planners",
    "policy": "fmrobot.policies",
    "safety": "fmrobot.shields",
    "executor": "fmrobot.executors",
    "llm": "fmrobot.llms",
    "responder": "fmrobot.responders",
    "success_detector": "fmrobot.success_detectors",
    "fault": "fmrobot.faults",
    "robot": "fmrobot.robots",
}

#: Methods a component of each group must have (fmrobot/interfaces.py), checked before it is built.
REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "env": ("reset_episode", "observe", "apply", "evaluate", "close"),
    "perception": ("perceive",),
    "planner": ("plan", "replan"),
    "policy": ("reset", "act", "status", "failure_reason"),
    "safety": ("check",),
    "executor": ("run",),
    "llm": ("score", "generate"),
    "responder": ("respond",),
    "success_detector": ("judge",),
    "robot": ("load", "command", "state"),
}

#: Entry-point group through which plugin packages add a folder to Hydra's search path.
CONFIG_PATH_GROUP = "fmrobot.configs"

#: Set to 1 (or true/yes/on) to restrict `_target_` to the allow-list (configs from untrusted sources).
UNTRUSTED_ENV = "FMROBOT_UNTRUSTED_CONFIG"
#: Extra module prefixes for the allow-list, comma-separated ("my_pkg,other_pkg.planners").
TRUSTED_ENV = "FMROBOT_TRUSTED_TARGETS"
#: Packages whose classes are always allowed.
BUILTIN_TRUSTED = ("fmrobot", "sims")


def _entry_points(group: str) -> dict[str, EntryPoint]:
    if group not in GROUPS:
        raise ConfigError(f"unknown component group {group!r}; groups: {', '.join(GROUPS)}")
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUPS[group]):
        found.setdefault(ep.name, ep)  # first on sys.path wins, as for imports
    return found


def available(group: str) -> list[str]:
    """Names registered in `group` by every installed package."""
    return sorted(_entry_points(group))


def load(group: str, name: str) -> type:
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise UnknownComponentError(
            f"unknown {group} {shown(name)}; installed: {known} (entry-point group {GROUPS[group]})"
        )
    try:
        return eps[name].load()
    except Exception as error:
        raise ConfigError(
            f"{group} {shown(name)} is registered as {eps[name].value!r} but failed to load: "
            f"{type(error).__name__}: {one_line(str(error), 200)}"
        ) from error


def untrusted_configs() -> bool:
    """Whether configs come from an untrusted source (FMROBOT_UNTRUSTED_CONFIG), so `_target_` is restricted."""
    return os.environ.get(UNTRUSTED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def trusted_modules() -> tuple[str, ...]:
    """Module prefixes a `_target_` may name when configs are untrusted: fmrobot, sims, every module an
    installed package registers as an fmrobot entry point, and the prefixes in FMROBOT_TRUSTED_TARGETS."""
    found = set(BUILTIN_TRUSTED)
    for group in (*GROUPS.values(), CONFIG_PATH_GROUP):
        found.update(ep.module for ep in entry_points(group=group) if ep.module)
    found.update(p.strip() for p in os.environ.get(TRUSTED_ENV, "").split(",") if p.strip())
    # Only the outermost prefixes: fmrobot covers fmrobot.planning.scripted.
    return tuple(sorted(p for p in found if not _within(p, tuple(found - {p}))))


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def import_target(path: str) -> type:
    """Import `package.module.Name` (a `_target_`): a class, from the allow-list when configs are untrusted."""
    module_name, _, attr = path.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in path.split(".")):
        raise ConfigError(f"_target_ {shown(path)} is not a dotted path like 'my_pkg.module.MyClass'")
    allowed = trusted_modules() if untrusted_configs() else None
    if allowed is not None and not _within(module_name, allowed):
        # Checked before importing: importing a module runs its code.
        raise ConfigError(f"_target_ {shown(path)} is outside the allow-list for untrusted configs "
                          f"({UNTRUSTED_ENV} is set): {', '.join(allowed)}; add a module prefix to {TRUSTED_ENV} "
                          "to trust it")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raised while it ran
        raise ConfigError(f"_target_ {shown(path)}: cannot import module {shown(module_name)} "
                          f"({type(error).__name__}: {one_line(str(error), 200)})") from error
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"_target_ {shown(path)}: module {shown(module_name)} has no attribute {shown(attr)}") from None
    if not isinstance(target, type):
        # A function or other callable would run with arguments taken from the config.
        raise ConfigError(f"_target_ {shown(path)} is a {type(target).__name__}, not a class; "
                          "a _target_ names a component class")
    if allowed is not None and not _within(target.__module__, allowed):
        raise ConfigError(f"_target_ {shown(path)} is the class {target.__module__}.{target.__qualname__}, "
                          f"defined outside the allow-list for untrusted configs: {', '.join(allowed)}")
    return target


@dataclass(frozen=True)
class Resolved:
    """A component class with its validated config, not yet built."""

    group: str
    name: str
    cls: type
    config: BaseModel | None

    def build(self, **dependencies: Any) -> Any:
        if self.config is None:
            return self.cls(**dependencies)
        return self.cls(self.config, **dependencies)


def resolve(group: str, node: Mapping[str, Any] | None, check_sources: bool = True) -> Resolved:
    """Look up the component a config node names and validate its options; with `check_sources`, also
    that what it loads from (a model hub) can be had here (`check_sources` classmethod, if it has one)."""
    if node is None:
        raise ConfigError(f"no {group} configured; choose one of: {', '.join(available(group))}")
    if not isinstance(node, Mapping):
        raise ConfigError(f"the {group} config must be a mapping with `name` (one of: {', '.join(available(group))}) "
                          f"or `_target_`, got {shown(node, 80)}")
    options = dict(node)
    target = options.pop("_target_", None)
    name = options.pop("name", None)
    if target is not None:
        cls = import_target(str(target))
        label = str(target)
    elif name is not None:
        cls = load(group, str(name))
        label = str(name)
    else:
        raise ConfigError(
            f"the {group} config needs `name` (one of: {', '.join(available(group))}) or `_target_`"
        )
    missing = [m for m in REQUIRED_METHODS.get(group, ()) if not callable(getattr(cls, m, None))]
    if missing:
        # Caught here, a wrong class is one line now instead of an AttributeError mid-episode.
        raise ConfigError(f"{group} {shown(label)} ({cls.__module__}.{cls.__qualname__}) is not a {group} "
                          f"component: it has no {', '.join(missing)} (a {group} needs "
                          f"{', '.join(REQUIRED_METHODS[group])})")
    config = validate_options(group, label, cls, options)
    if check_sources and isinstance(cls, SourceCheck) and config is not None:
        # Components that load from elsewhere (a model hub) say now, in seconds, when they cannot.
        cls.check_sources(config)
    return Resolved(group=group, name=label, cls=cls, config=config)


def validate_options(group: str, name: str, cls: type, options: Mapping[str, Any]) -> BaseModel | None:
    model = getattr(cls, "Config", None)
    if model is None:
        if options:
            got = ", ".join(shown(k, 40) for k in options)
            raise ConfigError(f"{group} {shown(name)} takes no options, got: {got}")
        return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"{group} {shown(name)}: {cls.__name__}.Config must be a pydantic model")
    try:
        return model.model_validate(dict(options))
    except ValidationError as error:
        raise ConfigError(
            f"invalid {group} config for {shown(name)}: {describe_errors(error)}; {describe_fields(model)}") from None


#: Validation errors listed in one message; the rest are counted.
SHOWN_ERRORS = 5


def describe_errors(error: ValidationError) -> str:
    parts = []
    items = error.errors()
    for item in items[:SHOWN_ERRORS]:
        # Locations can hold the user's own keys and messages the user's values: both kept to one short line.
        where = ".".join(p if isinstance(p, str) and p.isidentifier() and len(p) <= 40 else shown(p, 40)
                         for p in item.get("loc", ())) or "value"
        message = one_line(str(item.get("msg", "invalid")), 500)  # room for a list of what exists
        if item.get("type") == "extra_forbidden":
            message = "not an option"
        value = item.get("input")
        if item.get("type") not in ("missing", "extra_forbidden") and value is not None:
            message += f" (got {shown(value, 80)})"
        parts.append(f"{where}: {message}")
    if len(items) > SHOWN_ERRORS:
        parts.append(f"and {len(items) - SHOWN_ERRORS} more")
    return "; ".join(parts)


def describe_fields(model: type[BaseModel]) -> str:
    fields = []
    for field_name, info in model.model_fields.items():
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
        default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
        if len(default) > 40:  # nested models: the field name and type say enough
            default = default[:37] + "..."
        fields.append(f"{field_name}: {annotation} = {default}")
    return "options are " + ", ".join(fields) if fields else "it takes no options"


def config_search_path() -> list[str]:
    """`pkg://` folders that installed plugins add to Hydra's config search path."""
    paths = []
    for ep in sorted(entry_points(group=CONFIG_PATH_GROUP), key=lambda e: e.name):
        paths.append(f"pkg://{ep.value}")
    return paths
