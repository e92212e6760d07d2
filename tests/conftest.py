"""Shared test setup: one thread per library (a busy 2-core machine slows 10-100x otherwise)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pick_place_env():
    """One tabletop env for the session: building a physics client and renderer costs ~1 s."""
    from sims.env import TabletopEnv

    env = TabletopEnv(task="pick_place")
    yield env
    env.close()


@pytest.fixture(scope="session")
def default_config() -> dict:
    """The composed default run config, as `python -m fmrobot.run` would see it."""
    from tests.fakes import compose_config

    return compose_config([])
