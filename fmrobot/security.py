"""What a config may carry and make fmrobot do: no secrets, and (when untrusted) no code.

Secrets live in environment variables only. A config names the variable
(`llm.api_key_env: OPENAI_API_KEY`), never the key: results.json, Hydra's `.hydra/`
copies and datasets keep the composed config, so a key in it would be written to disk.
`check_arguments` refuses a command line that carries a secret's value before Hydra
writes anything; `check_config` refuses a composed config with a key that looks like a
secret or with a value that is a secret's (an `${oc.env:...}` interpolation resolves
into results.json), and the copies Hydra made before the refusal are deleted (`discard`).
No message here ever shows a secret's value, only the name of its variable or key.

Configs from untrusted sources (FMROBOT_UNTRUSTED_CONFIG=1, see fmrobot/registry.py):
besides the component `_target_`s the registry checks, Hydra itself imports and calls
what its own nodes name (`hydra.callbacks`, launcher and sweeper `_target_`s, `()`
factories and handler classes in the logging configs) and sets environment variables
(`hydra.job.env_set`) before fmrobot sees the config. `check_untrusted_hydra` refuses
those unless they stay within the allow-list, Hydra's own plugins and `logging`
(fmrobot/cli.py composes the config the way the run will and calls it first).
With untrusted configs also, before anything is written: `llm.api_key_env` may only name
a variable a backend reads (OPENAI_API_KEY) or one listed in FMROBOT_ALLOWED_KEY_ENVS,
and every path the run writes (Hydra's run, sweep and config-copy folders, its log
files, datasets, checkpoints, caches) must lie within the run root (`run_root`).

In any mode, an API key is sent only to a host the user trusts (`api_key`): loopback,
or a host name listed in FMROBOT_TRUSTED_HOSTS. A URL with credentials in it
(`http://user:key@host`) counts as a secret in a config or on the command line, and
`redact_text` blanks secrets out of what `--cfg`, `--info` and `--help` print.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from fmrobot import registry
from fmrobot.errors import ConfigError, shown

#: Environment variable names that hold secrets (matched case-insensitively anywhere in the name).
SECRET_ENV_NAME = re.compile(r"API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY", re.IGNORECASE)
#: Config keys that would hold a secret's value: any name ending in "key" (api_key, openai_key, apikey,
#: OPENAI_API_KEY under hydra.job.env_set) and the usual others; `api_key_env`, naming a variable, is fine.
SECRET_CONFIG_KEY = re.compile(
    r"(key|(^|_)(secret|password|passwd|token|auth_token|access_token|credentials?|bearer))$", re.IGNORECASE)
#: The user-info part of a URL (`scheme://user:password@host`), which servers take as credentials.
URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#\s@]+)@")
#: Shorter values are not treated as secrets: "1" or "true" would match everything.
MIN_SECRET_LENGTH = 8
REDACTED = "<redacted>"
#: Modules Hydra's own `_target_`s (default launcher and sweeper) come from.
HYDRA_CORE_PLUGINS = ("hydra._internal.core_plugins",)

#: Logging classes an untrusted config's logging setup may name: they write to a stream or a file (whose
#: path check_untrusted_outputs confines), none sends records over the network or imports anything.
SAFE_LOGGING_CLASSES = ("logging.Formatter", "logging.StreamHandler", "logging.FileHandler", "logging.NullHandler",
                        "logging.handlers.RotatingFileHandler", "logging.handlers.TimedRotatingFileHandler",
                        "logging.handlers.WatchedFileHandler")
#: `ext://` objects the logging setup may use (any other `ext://` value is imported by logging.config).
SAFE_LOGGING_EXT = ("ext://sys.stdout", "ext://sys.stderr")

#: Variables fmrobot's backends read API keys from (fmrobot/llm/openai_compatible.py); the others
#: (Hugging Face, llama.cpp) run locally and read none.
BACKEND_KEY_ENVS = ("OPENAI_API_KEY",)
#: More variables `llm.api_key_env` may name with untrusted configs, comma-separated.
ALLOWED_KEY_ENVS_ENV = "FMROBOT_ALLOWED_KEY_ENVS"
#: Host names besides loopback that an API key may be sent to, comma-separated.
TRUSTED_HOSTS_ENV = "FMROBOT_TRUSTED_HOSTS"
#: The folder untrusted configs may write within; default: the current working directory.
RUN_ROOT_ENV = "FMROBOT_RUN_ROOT"
#: Config keys (anywhere below the top level) whose value is a folder fmrobot writes to.
WRITTEN_FOLDER_KEYS = ("cache_dir", "out_dir", "output_dir", "record_dir", "run_dir")
#: Dotted config paths of other files and folders fmrobot writes (collect's and train's dataset).
WRITTEN_PATHS = ("dataset.path",)
#: Config values that name a file or folder in fmrobot's default output paths (collect.default_dataset_path,
#: train's default out_dir): a path separator in one would move the output elsewhere.
PATH_NAME_KEYS = ("task.name", "task.level", "robot.name")


def secret_env(names: Sequence[str] = ()) -> dict[str, str]:
    """name -> value of every environment variable that holds a secret: names that look like one,
    plus `names` (variables a config names, such as llm.api_key_env)."""
    found = {}
    for name, value in os.environ.items():
        if (SECRET_ENV_NAME.search(name) or name in names) and len(value.strip()) >= MIN_SECRET_LENGTH:
            found[name] = value.strip()
    return found


def _listed(variable: str) -> list[str]:
    return [item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()]


def check_arguments(arguments: Sequence[str]) -> None:
    """Refuse a command line that holds a secret (an environment secret's value, a URL with credentials,
    an override of a key that looks like a secret), before Hydra copies it to .hydra/ or prints it."""
    secrets = secret_env()
    for position, argument in enumerate(arguments, start=1):
        for name, value in secrets.items():
            if value in argument:
                raise ConfigError(
                    f"command-line argument {position} holds the value of the environment variable {name}; "
                    f"fmrobot reads secrets only from the environment: name the variable instead "
                    f"(for example llm.api_key_env={name})")
        if URL_CREDENTIALS.search(argument):
            raise ConfigError(f"command-line argument {position} holds a URL with credentials (user:password@host); "
                              "give the URL without them and the key through the environment variable named by "
                              "llm.api_key_env")
        key, equals, value = argument.partition("=")
        name = key.lstrip("+~").rpartition(".")[2]
        if equals and not key.startswith("-") and value.strip() not in ("", "null") and SECRET_CONFIG_KEY.search(name):
            raise ConfigError(f"command-line argument {position} sets {key.lstrip('+~')!r}, a key that looks like a "
                              "secret; fmrobot takes secrets only from environment variables named in the config "
                              "(for example llm.api_key_env=OPENAI_API_KEY)")


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
        credentials = URL_CREDENTIALS.search(value)
        if credentials:
            found.append((path, "holds a URL with credentials (user:password@host)", credentials.group(1)))
            continue
        for name, secret in secrets.items():
            if secret in value:
                found.append((path, f"holds the value of the environment variable {name}", secret))
                break
    return found


def check_config(config: Mapping[str, Any], written: Sequence[Path] = ()) -> None:
    """Refuse a resolved config that carries a secret; first delete `written` (the copies Hydra made of it)."""
    found = find_secrets(config)
    if not found:
        return
    discard(written)
    path, what, _ = found[0]
    raise ConfigError(
        f"config value {path} {what}; fmrobot takes secrets only from environment variables named in the "
        "config (for example llm.api_key_env: OPENAI_API_KEY), since the composed config is written to "
        "results.json and .hydra/")


def discard(paths: Sequence[Path]) -> None:
    """Delete the files `paths` (Hydra's config copies of a refused run): a refused run leaves no copy of
    what was refused. Folders stay: with hydra.output_subdir=. the copies' folder is the run directory."""
    for path in map(Path, paths):
        path.unlink(missing_ok=True)


def redact_text(text: str) -> str:
    """`text` (a config as YAML, as `--cfg` prints it) with secrets replaced by a placeholder: environment
    secrets' values (and those of variables a `*_env` key names), URL credentials, secret-looking keys' values."""
    named = re.findall(r"\b\w*_env:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)", text)
    for value in sorted(secret_env(named).values(), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = URL_CREDENTIALS.sub(lambda m: m.group(0).replace(m.group(1), REDACTED), text)

    def blank(match: re.Match[str]) -> str:
        key, value = match.group(2), match.group(3).strip()
        if not SECRET_CONFIG_KEY.search(key) or value in ("null", "''", '""', REDACTED):
            return match.group(0)
        return f"{match.group(1)}{key}: {REDACTED}"

    return re.sub(r"^(\s*(?:-\s+)?)([\w.-]+):[ \t]+(\S.*)$", blank, text, flags=re.MULTILINE)


# --------------------------------------------------------------------------- where an API key may go


def allowed_key_envs() -> tuple[str, ...]:
    """Variables `api_key_env` may name with untrusted configs: the backends' own and FMROBOT_ALLOWED_KEY_ENVS."""
    return (*BACKEND_KEY_ENVS, *_listed(ALLOWED_KEY_ENVS_ENV))


def trusted_host(host: str | None) -> bool:
    """Whether an API key may be sent to `host`: loopback (localhost, 127.0.0.0/8, ::1) or FMROBOT_TRUSTED_HOSTS."""
    if not host:
        return False
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass  # a host name, not an address
    return host in {h.rstrip(".").lower() for h in _listed(TRUSTED_HOSTS_ENV)}


def check_key_destination(api_key_env: str, base_url: str, has_key: bool, where: str = "llm") -> None:
    """Refuse sending the key in `api_key_env` to `base_url` unless the variable is one an untrusted config
    may name (checked only with untrusted configs) and, when it holds a key, the URL's host is trusted."""
    if registry.untrusted_configs() and api_key_env not in allowed_key_envs():
        raise ConfigError(f"{where}.api_key_env names {api_key_env!r}; with {registry.UNTRUSTED_ENV} set it may "
                          f"name only {', '.join(allowed_key_envs())} (add more to {ALLOWED_KEY_ENVS_ENV})")
    if not has_key:
        return
    try:
        host = urlsplit(str(base_url)).hostname
    except ValueError:
        host = None
    if not trusted_host(host):
        shown_host = "no host" if not host else repr(host)
        raise ConfigError(f"{where}.base_url points at {shown_host}, where the API key in {api_key_env} would be "
                          f"sent; keys go only to loopback and the hosts listed in {TRUSTED_HOSTS_ENV} "
                          f"(now: {', '.join(_listed(TRUSTED_HOSTS_ENV)) or 'none'})")


def api_key(api_key_env: str | None, base_url: str) -> str | None:
    """The API key to send to `base_url`, from the variable `api_key_env`; None without one. Raises
    ConfigError where the key may not go (`check_key_destination`)."""
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env) or None
    check_key_destination(api_key_env, base_url, key is not None)
    return key


def check_key_destinations(config: Mapping[str, Any]) -> None:
    """`check_key_destination` for every node of a resolved config that names an `api_key_env`."""
    for path, _, node in [("", None, config), *_walk(config)]:
        if isinstance(node, Mapping) and isinstance(node.get("api_key_env"), str) and node["api_key_env"]:
            name = node["api_key_env"]
            # A node without base_url gets its backend's default, which is loopback.
            base_url = node.get("base_url") or "http://127.0.0.1"
            check_key_destination(name, base_url, bool(os.environ.get(name)), where=path or "config")


# --------------------------------------------------------------------------- where an untrusted config may write


def run_root() -> Path:
    """The folder untrusted configs may write within: $FMROBOT_RUN_ROOT, else the current working
    directory. (fmrobot's cache, $FMROBOT_CACHE, is not a config's to choose: only the defaults use it.)"""
    return Path(os.environ.get(RUN_ROOT_ENV) or os.getcwd()).expanduser().resolve()


def written_paths(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, value) of every file or folder a resolved fmrobot config (no hydra node) sets for writing."""
    found = []
    for path, key, value in _walk(config):
        if "." in path and key in WRITTEN_FOLDER_KEYS and isinstance(value, str) and value:
            found.append((path, value))
    for path in WRITTEN_PATHS:
        value = _select(config, path)
        if isinstance(value, str) and value:
            found.append((path, value))
    if isinstance(config.get("train"), Mapping) and not config["train"].get("out_dir"):
        found.append(("train.out_dir (default)", "outputs/train"))  # fmrobot/train.py, relative to the cwd
    return found


def _select(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def check_untrusted_outputs(config: Mapping[str, Any], hydra_paths: Sequence[tuple[str, str]] = (),
                            cwd: str | Path | None = None) -> None:
    """With untrusted configs: refuse a config (resolved, no hydra node) or Hydra output paths (`hydra_paths`,
    absolute or relative to the cwd) that would write outside `run_root()`. fmrobot's paths are relative
    to `cwd` (the run directory when hydra.job.chdir is set)."""
    root = run_root()
    base = Path(cwd) if cwd is not None else Path.cwd()
    for where, value, start in [*((w, v, Path.cwd()) for w, v in hydra_paths),
                                *((w, v, base) for w, v in written_paths(config))]:
        target = (start / os.path.expanduser(value)).resolve()  # symbolic links followed: where it really goes
        if not target.is_relative_to(root):
            raise ConfigError(f"{where} is {shown(value, 200)}, outside the run root {root}; with "
                              f"{registry.UNTRUSTED_ENV} set, a config writes only within the run root "
                              f"(the working directory, or {RUN_ROOT_ENV})")
    for where in PATH_NAME_KEYS:
        value = _select(config, where)
        if isinstance(value, str) and (value in (".", "..") or "/" in value or "\\" in value):
            raise ConfigError(f"{where} is {shown(value, 200)}; with {registry.UNTRUSTED_ENV} set it must be a plain "
                              "name (it names a file or folder fmrobot writes), without / or \\ or '..'")


def check_untrusted_executor(config: Mapping[str, Any]) -> None:
    """With untrusted configs: a Ray runtime_env installs packages (pip, conda), ships code (working_dir,
    py_modules) and sets environment variables on every actor; an untrusted config may not set one."""
    executor = config.get("executor")
    runtime_env = executor.get("runtime_env") if isinstance(executor, Mapping) else None
    if runtime_env:
        raise ConfigError(f"executor.runtime_env sets {', '.join(map(str, runtime_env))}; an untrusted config may "
                          f"not install packages, ship code or set environment variables on Ray workers "
                          f"({registry.UNTRUSTED_ENV} is set)")


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
            if key == "()" or (key == "class" and isinstance(value, str) and value not in SAFE_LOGGING_CLASSES):
                raise ConfigError(f"{path} makes the logging setup import {value!r}; an untrusted config may only "
                                  f"use the logging classes {', '.join(SAFE_LOGGING_CLASSES)} "
                                  f"({registry.UNTRUSTED_ENV} is set)")
            if isinstance(value, str) and value.startswith("ext://") and value not in SAFE_LOGGING_EXT:
                raise ConfigError(f"{path} is {value!r}, which the logging setup would import; an untrusted config "
                                  f"may only use {', '.join(SAFE_LOGGING_EXT)} ({registry.UNTRUSTED_ENV} is set)")
