"""Stacks with one fault injected, built the way `python -m fmrobot.run` builds them."""

from __future__ import annotations

import pytest

ORACLE = ["task=pick_place", "perception=oracle", "planner=oracle", "policy=scripted", "video=none"]
LLM = ["task=pick_place", "perception=oracle", "planner=llm_scoring", "policy=scripted", "video=none"]
FAKE_LM = {"_target_": "tests.fakes.KeywordLM"}  # offline and instant; the fault wraps it like any backend


def fault_config(fault: str, *overrides: str, planner: str = "oracle") -> dict:
    """The composed run config of pick_place with `fault` (and its options) on the oracle stack, or on
    an LLM planner (`planner="llm_scoring"` / `"llm_structured"`) with a fake language model."""
    from tests.fakes import compose_config

    base = ORACLE if planner == "oracle" else [*LLM[:2], f"planner={planner}", *LLM[3:]]
    config = compose_config([*base, f"fault={fault}", *overrides])
    if planner != "oracle":
        config["llm"] = dict(FAKE_LM)
    return config


@pytest.fixture
def build():
    """build(config) -> a runner; every runner built here is closed afterwards."""
    from fmrobot.stack import build_runner

    runners = []

    def make(config: dict):
        runners.append(build_runner(config))
        return runners[-1]

    yield make
    for runner in runners:
        runner.env.close()


@pytest.fixture
def fake_time(monkeypatch):
    """Retry waits take no real time: they advance a fake clock (tests/llm/fake_time.py)."""
    from tests.llm.fake_time import install_fake_time

    return install_fake_time(monkeypatch)
