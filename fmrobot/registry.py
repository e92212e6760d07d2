"""Find, validate and build components by name.

Components are registered by entry point, built-in ones exactly like plugins, so a
package installed next to fmrobot adds components without touching it. Entry points
are loaded only when their name is asked for, which keeps `import fmrobot` cheap.

A component is a class with an optional nested pydantic model `Config`; it is built as
`cls(config, **dependencies)`. A config node names its component by `name` (looked up
in the group's entry points) or by `_target_` (any importable class).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from fmrobot.errors import ConfigError, UnknownComponentError

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
}

#: Entry-point group through which plugin packages add a folder to Hydra's search path.
CONFIG_PATH_GROUP = "fmrobot.configs"


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
            f"unknown {group} {name!r}; installed: {known} (entry-point group {GROUPS[group]})"
        )
    try:
        return eps[name].load()
    except Exception as error:
        raise ConfigError(
            f"{group} {name!r} is registered as {eps[name].value!r} but failed to load: "
            f"{type(error).__name__}: {error}"
        ) from error


def import_target(path: str) -> type:
    """Import `package.module.Name` (a `_target_`)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ConfigError(f"_target_ {path!r} is not a dotted path like 'my_pkg.module.MyClass'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"_target_ {path!r}: cannot import module {module_name!r} ({error})") from error
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"_target_ {path!r}: module {module_name!r} has no attribute {attr!r}") from None


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


def resolve(group: str, node: Mapping[str, Any] | None) -> Resolved:
    """Look up the component a config node names and validate its options."""
    if node is None:
        raise ConfigError(f"no {group} configured; choose one of: {', '.join(available(group))}")
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
    return Resolved(group=group, name=label, cls=cls, config=validate_options(group, label, cls, options))


def validate_options(group: str, name: str, cls: type, options: Mapping[str, Any]) -> BaseModel | None:
    model = getattr(cls, "Config", None)
    if model is None:
        if options:
            raise ConfigError(f"{group} {name!r} takes no options, got: {', '.join(options)}")
        return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"{group} {name!r}: {cls.__name__}.Config must be a pydantic model")
    try:
        return model.model_validate(dict(options))
    except ValidationError as error:
        raise ConfigError(f"invalid {group} config for {name!r}: {describe_errors(error)}; {describe_fields(model)}") from None


def describe_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ())) or "value"
        message = item.get("msg", "invalid")
        if item.get("type") == "extra_forbidden":
            message = "not an option"
        shown = item.get("input")
        if item.get("type") not in ("missing", "extra_forbidden") and shown is not None:
            message += f" (got {shown!r})"
        parts.append(f"{where}: {message}")
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
