"""What a config may carry and make fmrobot do: no secrets, and (when untrusted) no code.

Secrets live in environment variables only. A config names the variable
(`llm.api_key_env: OPENAI_API_KEY`), never the key: results.json, Hydra's `.hydra/`
copies and datasets keep the composed config, so a key in it would be written to disk.
`check_arguments` refuses a command line that carries a secret's value before Hydra
writes anything; `check_config` refuses a composed config with a key that looks like a
secret or with a value that is a secret's (an `${oc.env:...}` interpolation resolves
into results.json), and `redact_files` scrubs the copies Hydra made before the refusal.
No message here ever shows a secret's value, only the name of its variable or key.

Configs from untrusted sources (FMROBOT_UNTRUSTED_CONFIG=1, see fmrobot/registry.py):
besides the component `_target_`s the registry checks, Hydra itself imports and calls
what its own nodes name (`hydra.callbacks`, launcher and sweeper `_target_`s, `()`
factories and handler classes in the logging configs) and sets environment variables
(`hydra.job.env_set`) before fmrobot sees the config. `check_untrusted_hydra` refuses
those unless they stay within the allow-list, Hydra's own plugins and `logging`
(fmrobot/cli.py composes the config the way the run will and calls it first).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from fmrobot import registry
from fmrobot.errors import ConfigError

#: Environment variable names that hold secrets (matched case-insensitively anywhere in the name).
SECRET_ENV_NAME = re.compile(r"API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY", re.I)
#: Config keys that would hold a secret's value (`api_key_env`, naming a variable, is fine).
SECRET_CONFIG_KEY = re.compile(
    r"(^|_)(api_?key|apikey|secret|secret_key|password|passwd|token|auth_token|access_key|private_key|"
    r"credentials?|bearer)$", re.I)
#: Shorter values are not treated as secrets: "1" or "true" would match everything.
MIN_SECRET_LENGTH = 8
REDACTED = "<redacted>"
#: Modules Hydra's own `_target_`s (default launcher and sweeper) come from.
HYDRA_CORE_PLUGINS = ("hydra._internal.core_plugins",)


def secret_env(names: Sequence[str] = ()) -> dict[str, str]:
    """name -> value of every environment variable that holds a secret: names that look like one,
    plus `names` (variables a config names, such as llm.api_key_env)."""
    found = {}
    for name, value in os.environ.items():
        if (SECRET_ENV_NAME.search(name) or name in names) and len(value.strip()) >= MIN_SECRET_LENGTH:
            found[name] = value.strip()
    return found


def check_arguments(arguments: Sequence[str]) -> None:
    """Refuse a command line that holds a secret's value, before Hydra copies it to .hydra/overrides.yaml."""
    secrets = secret_env()
    for position, argument in enumerate(arguments, start=1):
        for name, value in secrets.items():
            if value in argument:
                raise ConfigError(
                    f"command-line argument {position} holds the value of the environment variable {name}; "
                    f"fmrobot reads secrets only from the environment: name the variable instead "
                    f"(for example llm.api_key_env={name})")


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, key, value) of every leaf and node in nested dicts and lists."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, key, value
            yield from _walk(value, where)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            where = f"{path}[{index}]"
            yield where, index, value
            yield from _walk(value, where)


def named_variables(config: Mapping[str, Any]) -> list[str]:
    """Environment variables a config names as secret holders (`*_env` keys, such as llm.api_key_env)."""
    return [value for _, key, value in _walk(config)
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str) and value]


def find_secrets(config: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(path, what, secret value or None) for every place the resolved config holds a secret."""
    secrets = secret_env(named_variables(config))
    found = []
    for path, key, value in _walk(config):
        if not isinstance(value, str) or not value.strip():
            continue
        if isinstance(key, str) and SECRET_CONFIG_KEY.search(key):
            found.append((path, "has a key that looks like a secret", value))
            continue
        for name, secret in secrets.items():
            if secret in value:
                found.append((path, f"holds the value of the environment variable {name}", secret))
                break
    return found


def check_config(config: Mapping[str, Any], written: Sequence[Path] = ()) -> None:
    """Refuse a resolved config that carries a secret; first scrub it from `written` (Hydra's copies)."""
    found = find_secrets(config)
    if not found:
        return
    redact_files(written, [value for _, _, value in found if value])
    path, what, _ = found[0]
    raise ConfigError(
        f"config value {path} {what}; fmrobot takes secrets only from environment variables named in the "
        "config (for example llm.api_key_env: OPENAI_API_KEY), since the composed config is written to "
        "results.json and .hydra/")


def redact_files(paths: Sequence[Path], values: Sequence[str]) -> None:
    """Replace each of `values` in the text files `paths` (those that exist) by a placeholder."""
    values = [v for v in values if len(v) >= MIN_SECRET_LENGTH]
    for path in paths:
        if not values or not Path(path).is_file():
            continue
        text = Path(path).read_text(errors="replace")
        cleaned = text
        for value in values:
            cleaned = cleaned.replace(value, REDACTED)
        if cleaned != text:
            Path(path).write_text(cleaned)


def check_untrusted_hydra(config: Mapping[str, Any]) -> None:
    """With untrusted configs: refuse a composed config (hydra node included) whose Hydra settings
    would import or call code outside the allow-list, or set environment variables."""
    allowed = (*registry.trusted_modules(), *HYDRA_CORE_PLUGINS)
    hydra = config.get("hydra") or {}
    env_set = (hydra.get("job") or {}).get("env_set") or {}
    if env_set:
        raise ConfigError(f"hydra.job.env_set sets {', '.join(map(str, env_set))}; an untrusted config may not "
                          f"set environment variables ({registry.UNTRUSTED_ENV} is set)")
    for path, key, value in _walk(config):
        if key == "_target_" and isinstance(value, str):
            module = value.rpartition(".")[0]
            if not any(module == p or module.startswith(p + ".") for p in allowed):
                raise ConfigError(f"{path} names {value!r}, outside the allow-list for untrusted configs "
                                  f"({registry.UNTRUSTED_ENV} is set): {', '.join(allowed)}")
    for section in ("job_logging", "hydra_logging"):
        for path, key, value in _walk(hydra.get(section) or {}, f"hydra.{section}"):
            if key == "()" or (key == "class" and isinstance(value, str) and not value.startswith("logging.")):
                raise ConfigError(f"{path} makes the logging setup import {value!r}; an untrusted config may only "
                                  f"use classes from the logging module ({registry.UNTRUSTED_ENV} is set)")
