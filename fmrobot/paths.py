"""Where fmrobot keeps what it makes once and reuses: converted models, demonstration datasets."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | None = None) -> Path:
    """`cache_dir` if given, else $FMROBOT_CACHE, else ~/.cache/fmrobot."""
    return Path(cache_dir or os.environ.get("FMROBOT_CACHE") or Path.home() / ".cache" / "fmrobot")
