"""What a command-line mistake most likely meant: "did you mean ..." for unknown groups, options and keys.

Hydra's own hints mislead here: for `planer=llm_scoring` it suggests appending
`+planer=...`, which the run then refuses as an unknown key, and for a misspelt option
of a component it suggests a `+` that the component's Config refuses. These hints name
the closest existing names instead: groups and top-level keys, a group's options
(including installed components that ship no yaml, which only `<group>.name=` selects),
and a component's config keys.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable, Mapping, Sequence

from fmrobot import registry

NOT_IN_STRUCT = re.compile(r"Could not override '([^']+)'.*Key '([^']+)' is not in struct", re.DOTALL)
MISSING_OPTION = re.compile(r"Could not find '([^'/]+)/([^']+)'")


def closest(name: str, candidates: Iterable[str], count: int = 3) -> list[str]:
    """The candidates closest to `name` (typos, a missing or extra letter, another case)."""
    candidates = sorted(set(candidates))
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.7)
    return [lowered[m] for m in matches]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    matches = closest(name, candidates)
    return f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""


def yamlless_components(group: str, options: Sequence[str]) -> list[str]:
    """Installed components of `group` that ship no yaml (so `group=<name>` cannot select them)."""
    if group not in registry.GROUPS:
        return []
    try:
        installed = registry.available(group)
    except Exception:  # a broken plugin must not turn a hint into a traceback
        return []
    return [name for name in installed if name not in options]


def missing_option_hint(group: str, option: str, options: Sequence[str]) -> str:
    """For `group=option` with no such yaml: the closest options, and components selectable by name only."""
    hint = did_you_mean(option, options)
    bare = yamlless_components(group, options)
    if bare:
        forms = ", ".join(f"{group}.name={name}" for name in bare)
        hint += f"; installed without a yaml (select by name, with the Config's defaults): {forms}"
    return hint


def unknown_key_hint(path: str, key: str, config: Mapping[str, Any], groups: Sequence[str]) -> str:
    """For an override of a key that does not exist: what exists there, and the closest names."""
    parent_path, _, _ = path.rpartition(".")
    node: Any = config
    for part in parent_path.split(".") if parent_path else []:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        return ""
    keys = [str(k) for k in node]
    if not parent_path:  # top level: groups are chosen as `group=option`, keys set as `key=value`
        return f"{did_you_mean(key, [*keys, *groups])} (a run's groups and keys: {', '.join(sorted(set(keys)))})"
    name = node.get("name")
    what = f"{parent_path} ({name})" if isinstance(name, str) and parent_path in registry.GROUPS else parent_path
    matches = [f"{parent_path}.{m}" for m in closest(key, keys)]
    meant = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
    return f"{meant} ({what} has: {', '.join(keys)})"


def hint_for(message: str, config_name: str, overrides: Sequence[str]) -> str | None:
    """A better line for Hydra's error `message` about the command line, or None to keep Hydra's."""
    found = NOT_IN_STRUCT.search(message)
    if found:
        path, key = found.groups()
        config = _compose_without(config_name, overrides, path)
        if config is None:
            return None
        groups = _groups(config_name)
        return f"unknown config key {path!r}{unknown_key_hint(path, key, config, groups)}"
    found = MISSING_OPTION.search(message)
    if found:
        group, option = found.groups()
        options = _options(config_name, group)
        if options is None:
            return None
        return (f"no option {option!r} in group {group!r}{missing_option_hint(group, option, options)}; "
                f"options: {', '.join(options) or 'none'}")
    return None


def _compose_without(config_name: str, overrides: Sequence[str], path: str) -> dict[str, Any] | None:
    """The config the command line would give without the override of `path` (plain, unresolved)."""
    from omegaconf import OmegaConf

    from fmrobot.compose import compose

    kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != path]
    try:
        config = OmegaConf.to_container(compose(config_name, kept), resolve=False)
    except Exception:  # another mistake on the line: Hydra's own message stands
        return None
    assert isinstance(config, dict)
    config.pop("hydra", None)
    return config


def _groups(config_name: str) -> list[str]:
    from fmrobot.compose import config_groups

    return list(config_groups(config_name))


def _options(config_name: str, group: str) -> list[str] | None:
    from fmrobot.compose import group_options

    try:
        return group_options(config_name, group)
    except Exception:
        return None
