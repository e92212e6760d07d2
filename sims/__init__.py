"""The simulated world: PyBullet tabletop scenes, robots, cameras, tasks and envs.

Depends on `fmrobot.types` only. Importing `sims` loads PyBullet (about 50 ms, most of it
numpy) with the process's stdout and stderr silenced: PyBullet prints its build time from
C as it loads, which would land in the middle of a progress bar or a command's output.
"""

import os
import sys


def _import_pybullet_quietly() -> None:
    if "pybullet" in sys.modules:
        return
    saved: dict[int, int] = {}
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd in (1, 2):
            saved[fd] = os.dup(fd)
        with open(os.devnull, "wb") as devnull:
            for fd in saved:
                os.dup2(devnull.fileno(), fd)
        import pybullet  # an import error still raises; only C-level prints are lost
    except (OSError, ValueError, AttributeError):  # no usable descriptors: load it as it is
        import pybullet  # noqa: F401  (loaded for its side effect: the quiet import above failed)
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


_import_pybullet_quietly()
