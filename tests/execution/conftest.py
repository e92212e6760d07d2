"""Shared by the executor tests: one local Ray instance per module that asks for it."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance with 2 CPUs; executors use it and leave it running."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()
