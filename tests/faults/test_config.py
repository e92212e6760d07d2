"""Faults are chosen and checked by config before anything is built."""

from __future__ import annotations

import pytest

from fmrobot import registry
from fmrobot.errors import ConfigError, UnknownComponentError
from fmrobot.stack import build_runner, resolve_components
from tests.faults.conftest import fault_config
from tests.fakes import compose_config

ALL = ["grasp_slip", "knocked_over", "llm_down", "llm_garbage", "llm_slow", "none", "perception_dropout",
       "perception_noise", "physics_nan", "physics_runaway"]


def test_every_fault_is_registered_with_its_config_file():
    assert registry.available("fault") == ALL
    for name in ALL:
        config = compose_config([f"fault={name}", "planner=llm_scoring"])
        assert config["fault"]["name"] == name
        assert resolve_components(config)["fault"].name == name


def test_the_default_is_no_fault():
    assert compose_config([])["fault"] == {"name": "none"}
    assert resolve_components(compose_config([]))["fault"].cls.target == "none"


def test_an_unknown_fault_lists_the_installed_ones():
    with pytest.raises(UnknownComponentError) as caught:
        registry.resolve("fault", {"name": "gremlins"})
    message = str(caught.value)
    assert "unknown fault 'gremlins'" in message and "\n" not in message
    assert all(name in message for name in ALL)


@pytest.mark.parametrize("override,words", [
    ("fault.probability=1.5", "probability"),
    ("+fault.probabilty=0.5", "probabilty: not an option"),
    ("fault.seed=-1", "seed"),
])
def test_bad_fault_options_fail_in_one_line_before_anything_is_built(override, words):
    config = fault_config("perception_dropout", override)
    with pytest.raises(ConfigError) as caught:
        build_runner(config)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert "invalid fault config for 'perception_dropout'" in str(caught.value)


def test_inverted_ranges_are_refused():
    with pytest.raises(ConfigError, match="delay_seconds must be"):
        build_runner(fault_config("llm_slow", "fault.delay_seconds=[50,10]", planner="llm_scoring"))
    with pytest.raises(ConfigError, match="steps must be"):
        build_runner(fault_config("physics_nan", "fault.steps=[30,5]"))
    with pytest.raises(ConfigError, match="delay_steps must be"):
        build_runner(fault_config("grasp_slip", "fault.delay_steps=[9,2]"))


def test_a_language_model_fault_needs_a_planner_that_uses_one():
    with pytest.raises(ConfigError) as caught:
        resolve_components(fault_config("llm_down"))
    assert "breaks the language model, but planner 'oracle' uses none" in str(caught.value)
