"""Whether a Hugging Face hub id can be loaded here, decided in about a second.

Without a network, transformers spends a minute in retries (each warning printed twice)
before it gives up on a hub id; with `HF_HUB_OFFLINE=1` it still builds everything around
the model first. Components that load by hub id call `check_hub_model` before anything
heavy: a local folder, or a hub id already in the local cache, passes; an uncached id fails
at once with one line saying how to point at a local folder. The hub-loading code itself is
unchanged, so a machine with a network downloads as before.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from fmrobot.errors import ConfigError

PROBE_SECONDS = 2.0  # how long to wait for the hub's host to answer a TCP connection


def is_local(model: str) -> bool:
    """A path, not a hub id: it exists, or is written as one (absolute, ./, ~, more than one /)."""
    return (model.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(model))
            or model.count("/") > 1)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def cached(model: str, filename: str = "config.json") -> bool:
    """Whether the hub cache holds `filename` of `model` (then transformers loads it without a network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(repo_id=model, filename=filename)
    except Exception:  # a malformed id: the loader reports it in its own words
        return False
    return isinstance(found, str)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def reachable(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """None if `url`'s host accepts a TCP connection within `timeout`, else why not."""
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


def check_hub_model(model: str, option: str, filename: str = "config.json", fix: str | None = None) -> None:
    """ConfigError, in at most PROBE_SECONDS, if `model` is a hub id that cannot be loaded here.

    `option` is the config key the user set (`perception.model`); `fix` what to do instead (default:
    point `option` at a local folder)."""
    if is_local(model) or cached(model, filename):
        return
    fix = fix or (f"set {option} to a local folder written by save_pretrained (copy it from a machine with a "
                  f"network), or run where the hub is reachable")
    if hub_offline():
        raise ConfigError(f"{option}: {model!r} is a Hugging Face hub id that is not in the local cache, and "
                          f"HF_HUB_OFFLINE is set; {fix}")
    why = reachable(endpoint())
    if why is not None:
        raise ConfigError(f"{option}: {model!r} is a Hugging Face hub id that is not in the local cache, and the "
                          f"hub ({endpoint()}) is unreachable ({why}); {fix}")
