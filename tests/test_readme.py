"""The README stays true: its test command is the one CI runs, its plugin is the tested one."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)


def test_ci_runs_exactly_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    setup = [block.strip() for block in _bash_blocks()[:2]]
    assert setup[1] == ci_command
    assert setup[0].endswith("python -m fmrobot.run task=pick_place")


def test_plugin_section_shows_the_package_the_plugin_test_installs():
    example = ROOT / "tests" / "plugin_example"
    for name in ("pyproject.toml", "tiny_planner/__init__.py", "tiny_planner/configs/planner/tiny.yaml"):
        content = (example / name).read_text().strip()
        assert content in README, f"README's copy of {name} differs from tests/plugin_example/{name}"
    assert (example / "tiny_planner" / "configs" / "__init__.py").read_text() == ""


# ---------------------------------------------------------------------------- the README's commands

COMMAND = re.compile(r"(?:\.venv/bin/)?python -m fmrobot\.(run|collect|train)\b([^`\n]*)")


def _commands() -> list[tuple[str, str, str]]:
    """(config name, arguments, the line) of every `python -m fmrobot.run|collect|train ...` the README shows,
    in code blocks and inline; lines of an error example (`$ ...`) and templates with <placeholders> aside."""
    found = []
    for line in README.splitlines():
        if line.lstrip().startswith("$ "):
            continue
        for match in COMMAND.finditer(line):
            arguments = match.group(2).split("  #")[0].split(" #")[0].strip()
            arguments = arguments.split("&&")[0].strip()
            if "<" in arguments or "..." in arguments or "…" in arguments or arguments.startswith("("):
                continue
            found.append((match.group(1), arguments, line.strip()))
    return found


def _validate(config_name: str, arguments: str) -> None:
    import shlex

    from omegaconf import OmegaConf

    from fmrobot.compose import compose
    from fmrobot.stack import RunSettings, check_run_keys, resolve_components

    overrides = [a for a in shlex.split(arguments) if not a.startswith("hydra.")]
    cfg = compose(config_name, overrides)
    config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    if config_name == "run":
        check_run_keys(config)
    RunSettings.from_config({k: v for k, v in config.items() if k in RunSettings.model_fields})
    resolve_components(config)


def test_the_readme_shows_many_commands():
    names = {name for name, _, _ in _commands()}
    assert len(_commands()) >= 15 and names == {"run", "collect", "train"}


@pytest.mark.parametrize("config_name,arguments,line", _commands(), ids=[c[2][:60] for c in _commands()])
def test_every_command_the_readme_shows_composes_and_validates(config_name, arguments, line):
    _validate(config_name, arguments)


def _error_examples() -> list[tuple[str, str]]:
    """(arguments, the error line shown under it) of each `$ python -m fmrobot.run ...` example."""
    lines = README.splitlines()
    return [(line.split("fmrobot.run", 1)[1].strip(), lines[i + 1].strip())
            for i, line in enumerate(lines) if line.startswith("$ python -m fmrobot.run")]


@pytest.mark.parametrize("arguments,shown", _error_examples())
def test_the_error_examples_fail_with_the_line_the_readme_shows(arguments, shown):
    from fmrobot.errors import ConfigError

    assert shown.startswith("fmrobot: error: ")
    with pytest.raises(ConfigError) as caught:
        _validate("run", arguments)
    expected = shown.removeprefix("fmrobot: error: ").removesuffix("...").rstrip(", .")
    assert str(caught.value).startswith(expected)


BENCHMARK = re.compile(r"python -m (benchmarks\.[\w.]+)([^`\n]*)")
BENCHMARK_README = (ROOT / "benchmarks" / "README.md").read_text()


@pytest.mark.parametrize("module,flags", sorted({(m.group(1), m.group(2).split("#")[0].strip())
                                                  for text in (README, BENCHMARK_README)
                                                  for m in BENCHMARK.finditer(text)}))
def test_every_benchmark_command_names_a_script_and_options_it_has(module, flags):
    script = module.replace(".", "/") + ".py"
    source = (ROOT / script).read_text()
    for flag in re.findall(r"(?<!\S)(--[\w-]+)", flags):
        assert f'"{flag}"' in source, f"{script} has no option {flag}"
