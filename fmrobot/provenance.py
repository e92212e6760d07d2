"""Where a result came from: the source commit, recorded in datasets and checkpoints."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit() -> str | None:
    """The git commit of the fmrobot source tree (with `-dirty` if it has changes); None outside git."""
    root = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=root)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=root).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
