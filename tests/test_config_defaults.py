"""One source of defaults: every shipped group file lists its component's options at exactly the
values of the component's `Config` (docs/architecture.md, "Configs"), its `name` is the entry point
that runs it, and the learned policies' defaults are the shipped checkpoints' sizes."""

from pathlib import Path

import pytest

from fmrobot import registry

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GROUP_FILES = sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name in registry.GROUPS)

#: Files that choose another file's component and change some of its options on purpose (a Hydra
#: defaults list), with the options they change. Anything else that differs from a default is drift.
VARIANTS: dict[str, tuple[str, set[str]]] = {
    "safety/strict": ("basic", {"max_ee_speed", "collision"}),
}


def _file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _composed(path: Path) -> dict:
    from tests.fakes import compose_config

    return compose_config([f"{path.parent.name}={path.stem}"])[path.parent.name]


@pytest.mark.parametrize("path", GROUP_FILES, ids=_file_id)
def test_every_group_file_is_named_after_the_entry_point_that_runs_it(path):
    name = _composed(path)["name"]
    expected = VARIANTS.get(_file_id(path), (path.stem, set()))[0]
    assert name == expected, f"{_file_id(path)} names {name!r}; the file runs entry point {expected!r}"
    assert name in registry.available(path.parent.name)


@pytest.mark.parametrize("path", GROUP_FILES, ids=_file_id)
def test_every_option_a_group_file_lists_is_its_config_default(path):
    group = path.parent.name
    node = _composed(path)
    cls = registry.load(group, node.pop("name"))
    model = getattr(cls, "Config", None)
    if model is None:
        assert not node, f"{_file_id(path)} sets options of a component that takes none"
        return
    given = model.model_validate(node).model_dump(mode="json")
    differing = set()
    for key in node:
        field = model.model_fields[key]
        if field.is_required():
            continue  # no default to repeat (llm.model): the file must say it
        if given[key] != model.model_validate({**_required(model, node)}).model_dump(mode="json")[key]:
            differing.add(key)
    assert differing == VARIANTS.get(_file_id(path), ("", set()))[1], (
        f"{_file_id(path)} sets {sorted(differing)} to other values than {cls.__name__}.Config's defaults: "
        "change the default in the code, or the yaml, so they agree")


def _required(model, node: dict) -> dict:
    return {k: v for k, v in node.items() if model.model_fields[k].is_required()}


def test_a_drifted_default_is_caught():
    from fmrobot.control.diffusion import DiffusionPolicy

    model = DiffusionPolicy.Config
    assert model.model_validate({"hidden": 512}).hidden != model().hidden


@pytest.mark.parametrize("kind", ["bc", "diffusion"])
def test_learned_policy_defaults_are_the_shipped_checkpoints_sizes(kind):
    from fmrobot.control.learned.runtime import load_checkpoint

    cls = registry.load("policy", kind)
    checkpoint = load_checkpoint(kind, cls.Config().checkpoint)
    built = cls.architecture(cls.Config(), len(checkpoint["skills"]))
    assert built == checkpoint["architecture"]
