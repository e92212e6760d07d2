import pytest

from fmrobot import registry
from fmrobot.errors import ConfigError, UnknownComponentError


def test_builtin_components_are_registered_by_entry_point():
    assert "scripted" in registry.available("planner")
    assert "oracle" in registry.available("perception")
    assert "scripted" in registry.available("policy")
    assert "pick_place" in registry.available("task")


def test_unknown_name_lists_what_is_installed():
    with pytest.raises(UnknownComponentError) as error:
        registry.resolve("planner", {"name": "telepathy"})
    message = str(error.value)
    assert "unknown planner 'telepathy'" in message
    assert "scripted" in message and "fmrobot.planners" in message


def test_bad_option_value_gives_one_line_naming_field_value_and_options():
    with pytest.raises(ConfigError) as error:
        registry.resolve("policy", {"name": "scripted", "speed": "fast"})
    message = str(error.value)
    assert "\n" not in message
    assert "speed" in message and "'fast'" in message
    assert "options are" in message and "approach_speed" in message


def test_unknown_option_is_reported_as_not_an_option():
    with pytest.raises(ConfigError, match="sped: not an option"):
        registry.resolve("policy", {"name": "scripted", "sped": 0.3})


def test_target_imports_any_class_and_validates_its_options():
    resolved = registry.resolve("perception", {"_target_": "fmrobot.perception.oracle.OraclePerceptor",
                                               "min_points": 5})
    assert resolved.build().config.min_points == 5
    with pytest.raises(ConfigError, match="no attribute 'Nope'"):
        registry.resolve("perception", {"_target_": "fmrobot.perception.oracle.Nope"})
    with pytest.raises(ConfigError, match="cannot import module"):
        registry.resolve("perception", {"_target_": "no_such_package.Thing"})


def test_a_node_without_name_or_target_says_which_names_exist():
    with pytest.raises(ConfigError, match="needs `name` .*scripted"):
        registry.resolve("planner", {"max_replans": 2})


def test_unknown_group_is_rejected():
    with pytest.raises(ConfigError, match="unknown component group"):
        registry.available("teleporter")
