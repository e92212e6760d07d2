"""Suite files: the typed definition, its expansion into cells, and each cell's composed run config.

A suite (configs/benchmark/<name>.yaml) names tasks, component configurations (lists of
Hydra overrides), generalization levels and seeds. Every (task, configuration, level) is a
cell; with attribution on, a cell whose components are not all oracles also gets
counterfactual cells with oracle perception, the oracle plan, or both swapped in. Every
cell's run config is composed and validated before any episode runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from fmrobot import registry

SUITE_FOLDER = "benchmark"  # inside the installed config tree, fmrobot.configs
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # names become folder names
# Keys the harness sets itself for each cell or episode; a suite must not override them.
_RESERVED = ("task", "level", "seed", "episodes")

BASE = "base"
ORACLE_PERCEPTION = "oracle_perception"
ORACLE_PLANNER = "oracle_planner"
ORACLE_BOTH = "oracle_both"
VARIANTS = (ORACLE_PERCEPTION, ORACLE_PLANNER, ORACLE_BOTH)


class SuiteError(Exception):
    """A suite that cannot run: bad file, unknown task, override that does not compose..."""


class Seeds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(default=0, ge=0)
    count: int = Field(ge=1)

    def values(self) -> tuple[int, ...]:
        return tuple(range(self.start, self.start + self.count))


class Suite(BaseModel):
    """One benchmark suite. Validate with context={"tasks": [...], "levels": [...]} to check names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    tasks: list[str] = Field(min_length=1)  # or the string "all": every registered task
    configurations: dict[str, list[str]] = Field(min_length=1)  # name -> Hydra overrides
    levels: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    seeds: Seeds
    overrides: list[str] = Field(default_factory=lambda: ["video=none"])  # common to every cell
    attribution: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits and _ . + - (it names the output folder)")
        return value

    @field_validator("tasks", mode="before")
    @classmethod
    def _all_tasks(cls, value: Any, info: ValidationInfo) -> Any:
        if value == "all":
            known = (info.context or {}).get("tasks")
            if known is None:
                raise ValueError("tasks: all needs the registered tasks in the validation context")
            return list(known)
        return value

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _no_duplicates(value)
        known = (info.context or {}).get("tasks")
        if known is not None:
            unknown = [t for t in value if t not in known]
            if unknown:
                raise ValueError(f"unknown task(s) {', '.join(unknown)}; registered: {', '.join(known)}")
        return value

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _no_duplicates(value)
        known = (info.context or {}).get("levels")
        if known is not None:
            unknown = [v for v in value if v not in known]
            if unknown:
                raise ValueError(f"unknown level(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return value

    @field_validator("configurations")
    @classmethod
    def _configurations(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, overrides in value.items():
            if not _NAME.match(name):
                raise ValueError(f"configuration name {name!r}: use letters, digits and _ . + -")
            _check_overrides(overrides, f"configuration {name!r}")
        return value

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        _check_overrides(value, "overrides")
        return value


def _no_duplicates(values: Sequence[str]) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {', '.join(repeated)}")


def override_key(override: str) -> str:
    """The config key an override sets: 'perception' for 'perception=clip', '+perception.x=1', '~perception'."""
    return override.lstrip("+~").split("=", 1)[0].strip()


def _check_overrides(overrides: Sequence[str], where: str) -> None:
    for item in overrides:
        key = override_key(item)
        if "=" not in item and not item.startswith("~"):
            raise ValueError(f"{where}: {item!r} is not a Hydra override like group=option or key=value")
        head, _, option = key.partition(".")
        # A task's own options (task.request=...) are the configuration's business; which task runs is not.
        if head in _RESERVED and not (head == "task" and option):
            raise ValueError(f"{where}: {item!r} sets {key!r}, which the harness sets itself "
                             f"(reserved: {', '.join(_RESERVED)}; use the suite's tasks, levels and seeds)")


# --------------------------------------------------------------------------- loading

def known_levels() -> list[str]:
    folder = resources.files("fmrobot.configs").joinpath("level")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def suite_folder() -> Path:
    return Path(str(resources.files("fmrobot.configs").joinpath(SUITE_FOLDER)))


def available_suites() -> list[str]:
    folder = suite_folder()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_suite(name_or_path: str) -> Path:
    """A suite by name (configs/benchmark/<name>.yaml) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SuiteError(f"suite file {path} does not exist")
        return path
    candidate = suite_folder() / f"{name_or_path}.yaml"
    if not candidate.is_file():
        raise SuiteError(f"unknown suite {name_or_path!r}; suites: {', '.join(available_suites()) or 'none'} "
                         f"(in {suite_folder()}), or give a path to a YAML file")
    return candidate


def validate_suite(data: Any, source: str = "suite") -> Suite:
    if not isinstance(data, Mapping):
        raise SuiteError(f"{source}: expected a mapping of suite fields, got {type(data).__name__}; "
                         f"fields: {', '.join(Suite.model_fields)}")
    context = {"tasks": registry.available("task"), "levels": known_levels()}
    try:
        return Suite.model_validate(dict(data), context=context)
    except ValidationError as error:
        raise SuiteError(f"invalid suite {source}: {registry.describe_errors(error)}; "
                         f"fields: {', '.join(Suite.model_fields)}") from None


def load_suite(name_or_path: str) -> tuple[Suite, Path]:
    path = find_suite(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SuiteError(f"suite file {path} is not valid YAML: {error}") from None
    return validate_suite(data, str(path)), path


def with_changes(suite: Suite, *, tasks: Sequence[str] | None = None, seed_count: int | None = None) -> Suite:
    """The suite with the command line's --tasks and --seeds applied, validated again."""
    data = suite.model_dump()
    if tasks is not None:
        data["tasks"] = list(tasks)
    if seed_count is not None:
        data["seeds"] = {**data["seeds"], "count": seed_count}
    return validate_suite(data, f"{suite.name} (with command-line changes)")


# --------------------------------------------------------------------------- cells

@dataclass(frozen=True)
class Cell:
    """One (task, configuration, level), or one of its counterfactuals with oracles swapped in."""

    task: str
    configuration: str
    level: str
    variant: str = BASE
    overrides: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        base = f"{self.task}__{self.configuration}__{self.level}"
        return base if self.variant == BASE else f"{base}__{self.variant}"

    @property
    def base_id(self) -> str:
        return f"{self.task}__{self.configuration}__{self.level}"


def base_cells(suite: Suite) -> list[Cell]:
    return [
        Cell(task, name, level, BASE, (*suite.overrides, *overrides, f"task={task}", f"level={level}"))
        for task in suite.tasks
        for name, overrides in suite.configurations.items()
        for level in suite.levels
    ]


def _without(overrides: Sequence[str], group: str) -> list[str]:
    return [o for o in overrides if override_key(o) != group and not override_key(o).startswith(group + ".")]


def variant_cell(cell: Cell, variant: str) -> Cell:
    """The cell with oracle perception and/or the oracle planner in place of its own (and their options)."""
    overrides = list(cell.overrides)
    if variant in (ORACLE_PERCEPTION, ORACLE_BOTH):
        overrides = [*_without(overrides, "perception"), "perception=oracle"]
    if variant in (ORACLE_PLANNER, ORACLE_BOTH):
        overrides = [*_without(overrides, "planner"), "planner=oracle"]
    return Cell(cell.task, cell.configuration, cell.level, variant, tuple(overrides))


def is_oracle(config: Mapping[str, Any], group: str) -> bool:
    node = config.get(group) or {}
    return node.get("name") == "oracle" and "_target_" not in node


def needed_variants(config: Mapping[str, Any]) -> list[str]:
    """Counterfactuals that tell something new: swapping an oracle for itself would only repeat the cell."""
    perception, planner = is_oracle(config, "perception"), is_oracle(config, "planner")
    if perception and planner:
        return []
    if perception:
        return [ORACLE_PLANNER]
    if planner:
        return [ORACLE_PERCEPTION]
    return list(VARIANTS)


# --------------------------------------------------------------------------- composition

def compose_config(overrides: Sequence[str], config_name: str = "run") -> dict[str, Any]:
    """The resolved config `python -m fmrobot.<config_name>` would run with `overrides`; a mistake is one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from fmrobot.compose import compose_plain

    try:
        return compose_plain(config_name, overrides)
    except (HydraException, OmegaConfBaseException) as error:
        message = " ".join(str(error).split("Config search path:")[0].split())  # one line
        raise SuiteError(message) from None


def validate_config(config: Mapping[str, Any]) -> None:
    """Everything build_runner checks before it builds anything heavy."""
    from fmrobot.stack import RunSettings, resolve_components

    RunSettings.from_config(config)
    resolve_components(config)
    if config.get("llm") is not None:
        registry.resolve("llm", config["llm"])
    if config.get("responder"):
        registry.resolve("responder", config["responder"])


def compose_cells(suite: Suite, extra_overrides: Sequence[str] = ()) -> dict[str, tuple[Cell, dict[str, Any]]]:
    """Every cell of the suite (counterfactuals included) -> (cell, resolved config), all validated.

    Composing takes a good fraction of a second per cell, so one cell per task, per
    configuration and per level goes first: a typo in any of them fails after those few.
    Errors are collected, so one pass reports every typo found.
    """
    from fmrobot.errors import FmrobotError

    composed: dict[str, tuple[Cell, dict[str, Any]]] = {}
    errors: list[str] = []

    def fail_if_errors() -> None:
        if errors:
            shown = "\n  ".join(errors[:10])
            more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
            raise SuiteError(f"suite {suite.name!r}: {len(errors)} cell(s) do not compose or validate:"
                             f"\n  {shown}{more}")

    def add(cell: Cell) -> None:
        try:
            config = compose_config([*cell.overrides, *extra_overrides])
            validate_config(config)
        except (SuiteError, FmrobotError) as error:
            errors.append(f"{cell.id}: {error}")
            return
        composed[cell.id] = (cell, config)
        if cell.variant == BASE and suite.attribution:
            for variant in needed_variants(config):
                add(variant_cell(cell, variant))

    cells = base_cells(suite)
    first: dict[str, Cell] = {}
    for cell in cells:
        for key in (f"task {cell.task}", f"configuration {cell.configuration}", f"level {cell.level}"):
            first.setdefault(key, cell)
    representatives = list(dict.fromkeys(first.values()))
    for cell in representatives:
        add(cell)
    fail_if_errors()
    for cell in cells:
        if cell not in representatives:
            add(cell)
    fail_if_errors()
    order = {cell.id: index for index, cell in enumerate(cells)}  # suite order, each base before its variants
    return dict(sorted(composed.items(), key=lambda item: (order[item[1][0].base_id], item[1][0].variant != BASE)))
