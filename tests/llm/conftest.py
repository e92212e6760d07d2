"""Fixtures of the language-model tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_time(monkeypatch):
    """Retry waits take no real time: they advance a fake clock (tests/llm/fake_time.py)."""
    from tests.llm.fake_time import install_fake_time

    return install_fake_time(monkeypatch)
