"""Instruction items of the planning benchmark: loading them, choosing their seeds, and
turning one item into (instruction text, typed goal) for one seed's scene.

Items live in `instructions/<split>/<task>.yaml` (format and rules in
`instructions/README.md`). An item's `text` and the values of its `goal` overrides are
Python `str.format` templates over the seed's goal fields (the task goal model's
`model_dump()`), each string wrapped as a `Label`:

- `{block}` the label ("red block"), `{order[0]}`, `{moves[0][bowl]}` index as str.format does;
- `{block:color}` its colour word ("red"), `{block:noun}` its object noun ("block");
- `{block:syn}` the label with its colour word replaced by a synonym from the file's
  `synonyms` ("crimson block"), `{block:syncolor}` the synonym alone ("crimson"); the
  synonym is chosen deterministically from the item and the seed.

A goal override value that starts with `@` (after formatting) is a scene query, answered
from the objects' positions (the robot stands at the origin facing +x: left is +y, in
front is -x); see `query`. `where` conditions (field -> value or query) say on which scenes
an item applies; a scene where an item does not apply, or where a query's answer is too
close to call, raises `ItemNotApplicable` (a ValueError), and `item_seeds` skips such seeds.

The loader returns held-out items only when asked for the "heldout" split by name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import string
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROOT = Path(__file__).parent / "instructions"
#: `retired_heldout` was the held-out split until it had been measured five times and its
#: aggregate results had steered tuning; it is tuning data now, and `heldout` is a fresh split
#: written apart (instructions/README.md, "Splits"). `dev2` is tuning data from a writer who read no
#: other split and no planner code, so its first run measured unseen wording once more; `dev3`
#: was written the same way, later. `retired_heldout2` was the second held-out split, retired
#: after it had been measured at four planner versions. Seeds 5000-5099 train `llm_goal`'s
#: exemplars (benchmarks/build_goal_prompt.py), so no split draws from them.
SPLITS = ("dev", "retired_heldout", "dev2", "dev3", "retired_heldout2", "heldout")
SEEDS = {"dev": range(100), "retired_heldout": range(1000, 1100), "dev2": range(3000, 3100),
         "dev3": range(4000, 4100), "retired_heldout2": range(2000, 2100), "heldout": range(6000, 6100)}
TASKS = ("pick_place", "sort_by_color", "stack_blocks", "spatial_placement", "align_line", "push_to_zone",
         "separate_piles", "pack_all", "towers_of_hanoi", "swap_blocks", "ambiguous_pick_place", "hazards")
Subset = Literal["base", "paraphrase", "spatial", "long_horizon", "implicit", "ambiguous", "unsafe"]
SUBSETS: tuple[str, ...] = typing.get_args(Subset)
Expect = Literal["achieve", "ask", "refuse"]

#: A positional query's answer must beat the runner-up by this much (metres), and every object a
#: relation filter ("left of the tray") sorts must be this far off the dividing line: closer calls
#: are not something a person would say "the leftmost" of.
QUERY_MARGIN = 0.03


class ItemNotApplicable(ValueError):
    """The item does not fit this scene (a `where` condition fails, a query is too close to
    call or finds nothing); choose another seed."""


class Item(BaseModel):
    """One instruction of the benchmark, for every seed of its split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    id: str
    subset: Subset
    text: str
    goal: Mapping[str, Any] | None = None  # None: the seed's own goal; else field overrides
    expect: Expect = "achieve"
    task_options: Mapping[str, Any] = Field(default_factory=dict)  # the file's, updated by the item's
    synonyms: Mapping[str, tuple[str, ...]] = Field(default_factory=dict)  # colour word -> synonyms
    # Goal field (a str.format field: "block", "references[0]") -> value or scene query it must
    # equal in the scene: the item applies only where it does.
    where: Mapping[str, str] = Field(default_factory=dict)

    def __repr__(self) -> str:
        # The id only: tracebacks and assertion messages print reprs, and held-out text must not
        # reach whoever tunes (instructions/README.md, rule 1). `item.text` is there to read.
        return f"Item({self.id!r})"

    __str__ = __repr__

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str
    task_options: dict[str, Any] = Field(default_factory=dict)
    synonyms: dict[str, list[str]] = Field(default_factory=dict)
    items: list[dict[str, Any]]

    @model_validator(mode="after")
    def _known_task(self) -> _File:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; tasks: {', '.join(TASKS)}")
        return self


# --------------------------------------------------------------------------- loading


def load_items(split: str, tasks: Sequence[str] | None = None) -> list[Item]:
    """Every item of `split` (one of `SPLITS`) for `tasks` (all twelve by default), in file order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)} (held-out items only by name)")
    names = TASKS if tasks is None else tuple(tasks)
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; tasks: {', '.join(TASKS)}")
    items: list[Item] = []
    for task in names:
        items += _load_file(ROOT / split / f"{task}.yaml", task)
    ids = [item.id for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate item ids in split {split!r}: {duplicates}")
    return items


def _load_file(path: Path, task: str) -> list[Item]:
    if not path.exists():
        raise ValueError(f"no instruction file {path}")
    try:
        data = _File.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as error:
        raise ValueError(f"{path}: {error}") from None
    if data.task != task:
        raise ValueError(f"{path} holds items of task {data.task!r}, expected {task!r}")
    synonyms = {color: tuple(words) for color, words in data.synonyms.items()}
    items = []
    for raw in data.items:
        raw = dict(raw)
        options = {**data.task_options, **(raw.pop("task_options", None) or {})}
        try:
            items.append(Item(task=task, task_options=options, synonyms=synonyms, **raw))
        except (ValidationError, TypeError) as error:
            raise ValueError(f"{path}: item {raw.get('id', '?')!r}: {error}") from None
    return items


# --------------------------------------------------------------------------- labels and slots


class Label(str):
    """An object label in a slot: `.color` its first word (when it has more than one), `.noun`
    its last word that is not a number ("red block 1" -> "block"); format specs `color`,
    `noun`, `syn` and `syncolor` (see the module docstring)."""

    _synonym: Any = None  # (colour word) -> synonym, set by the resolver

    def __new__(cls, value: str, synonym=None):
        label = super().__new__(cls, value)
        label._synonym = synonym
        return label

    @property
    def color(self) -> str:
        words = self.split()
        return words[0] if len(words) > 1 else ""

    @property
    def noun(self) -> str:
        words = [w for w in self.split() if not w.isdigit()]
        return words[-1] if words else ""

    def __format__(self, spec: str) -> str:
        if spec == "":
            return str(self)
        if spec == "color":
            return self._need_color(spec)
        if spec == "noun":
            return self.noun
        if spec in ("syn", "syncolor"):
            color = self._need_color(spec)
            if self._synonym is None:
                raise ValueError(f"{{...:{spec}}} on {str(self)!r} needs the item's synonyms")
            word = self._synonym(color)
            return word if spec == "syncolor" else " ".join([word, *self.split()[1:]])
        raise ValueError(f"unknown format spec {spec!r} on {str(self)!r}; specs: color, noun, syn, syncolor")

    def _need_color(self, spec: str) -> str:
        if not self.color:
            raise ValueError(f"{{...:{spec}}} on {str(self)!r}: the label has no colour word")
        return self.color


def _wrap(value: Any, synonym) -> Any:
    if isinstance(value, str):
        return Label(value, synonym)
    if isinstance(value, Mapping):
        return {k: _wrap(v, synonym) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wrap(v, synonym) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _stable(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _synonym_chooser(item: Item, seed: int):
    def choose(color: str) -> str:
        words = item.synonyms.get(color)
        if not words:
            raise ValueError(f"item {item.id}: no synonym for colour {color!r} in its file's `synonyms` "
                             f"(colours with synonyms: {', '.join(sorted(item.synonyms)) or 'none'})")
        return words[_stable(item.id, seed, color) % len(words)]
    return choose


class _Formatter(string.Formatter):
    def __init__(self, item: Item, where: str):
        self.item, self.where = item, where

    def get_field(self, field_name, args, kwargs):
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, IndexError, AttributeError, TypeError) as error:
            fields = ", ".join(sorted(kwargs))
            raise ValueError(f"item {self.item.id}: slot {{{field_name}}} in its {self.where} does not name a goal "
                             f"field of task {self.item.task} ({type(error).__name__}: {error}); fields: {fields}"
                             ) from None


def _fill(template: str, fields: Mapping[str, Any], item: Item, where: str) -> str:
    try:
        text = _Formatter(item, where).vformat(template, (), fields)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(f"item {item.id}") else
                         f"item {item.id}: bad slot in its {where} {template!r}: {message}") from None
    if "{" in text or "}" in text:
        raise ValueError(f"item {item.id}: its {where} {template!r} leaves a brace after filling: {text!r}")
    return text


# --------------------------------------------------------------------------- scene queries

_SIDES = {"left of": (1, +1.0), "right of": (1, -1.0), "in front of": (0, -1.0), "behind": (0, +1.0)}
_EXTREMES = {"leftmost": (1, +1.0), "rightmost": (1, -1.0), "farthest": (0, +1.0), "nearest": (0, -1.0)}


def _matches(label: str, noun: str) -> bool:
    words = label.split()
    return label == noun or noun in words[1:]


def query(text: str, objects: Mapping[str, Sequence[float]]) -> str | list[str]:
    """Answer one scene query (the text after `@`) from object positions (label -> xyz).

    - `leftmost N`, `rightmost N` (largest, smallest y), `nearest N`, `farthest N` (to the robot:
      smallest, largest x), `middle N` (the middle one left to right of an odd number): one label;
    - `closest N to L`: the N closest to L in the plane (L itself excluded);
    - `same-color N as L`: the N whose colour word is L's;
    - `all N`, optionally `left of L`, `right of L`, `in front of L`, `behind L`: every such N, in
      scene order (a list);
    - any query may end with `except L1, L2`: those are no candidates.

    N is an object noun ("block", "bowl", "zone", "tray"): it matches labels whose words after the
    colour word hold it ("red block 1"). L is a label or, nested, another query (`@leftmost block`).
    Positional answers within QUERY_MARGIN of the runner-up, empty answers and relation filters
    with an object within QUERY_MARGIN of the dividing line raise ItemNotApplicable.
    """
    text = " ".join(text.strip().lstrip("@").split())
    head, _, excluded = text.partition(" except ")
    exclude = {_reference(e.strip(), objects) for e in excluded.split(",")} if excluded else set()
    position = {label: np.asarray(xyz, dtype=float) for label, xyz in objects.items()}

    def candidates(noun: str) -> list[str]:
        found = [label for label in objects if _matches(label, noun) and label not in exclude]
        if not found:
            raise ItemNotApplicable(f"query @{text}: no {noun!r} in the scene; objects: {', '.join(objects)}")
        return found

    words = head.split()
    if not words:
        raise ValueError("an empty scene query")
    kind = words[0]
    if kind in _EXTREMES and len(words) == 2:
        axis, sign = _EXTREMES[kind]
        ranked = sorted(candidates(words[1]), key=lambda label: -sign * position[label][axis])
        if len(ranked) > 1 and abs(position[ranked[0]][axis] - position[ranked[1]][axis]) < QUERY_MARGIN:
            raise ItemNotApplicable(f"query @{text}: {ranked[0]} and {ranked[1]} are too close to call")
        return ranked[0]
    if kind == "middle" and len(words) == 2:
        ranked = sorted(candidates(words[1]), key=lambda label: -position[label][1])
        if len(ranked) % 2 == 0:
            raise ItemNotApplicable(f"query @{text}: {len(ranked)} candidates have no middle one")
        ys = [position[label][1] for label in ranked]
        if len(ranked) > 1 and min(np.abs(np.diff(ys))) < QUERY_MARGIN:
            raise ItemNotApplicable(f"query @{text}: two of {ranked} are too close to call left to right")
        return ranked[len(ranked) // 2]
    match = re.fullmatch(r"closest (\w+) to (.+)", head)
    if match:
        reference = _reference(match.group(2), objects)
        distance = {label: float(np.linalg.norm(position[label][:2] - position[reference][:2]))
                    for label in candidates(match.group(1)) if label != reference}
        ranked = sorted(distance, key=distance.get)
        if not ranked:
            raise ItemNotApplicable(f"query @{text}: nothing but {reference} itself")
        if len(ranked) > 1 and distance[ranked[1]] - distance[ranked[0]] < QUERY_MARGIN:
            raise ItemNotApplicable(f"query @{text}: {ranked[0]} and {ranked[1]} are too close to call")
        return ranked[0]
    match = re.fullmatch(r"same-color (\w+) as (.+)", head)
    if match:
        color = Label(_reference(match.group(2), objects)).color
        found = [label for label in candidates(match.group(1)) if Label(label).color == color]
        if len(found) != 1:
            raise ItemNotApplicable(f"query @{text}: {len(found)} {match.group(1)}s of colour {color!r}")
        return found[0]
    match = re.fullmatch(r"all (\w+)(?: (left of|right of|in front of|behind) (.+))?", head)
    if match:
        found = candidates(match.group(1))
        if match.group(2):
            reference = _reference(match.group(3), objects)
            axis, sign = _SIDES[match.group(2)]
            offsets = {label: sign * (position[label][axis] - position[reference][axis])
                       for label in found if label != reference}
            close = [label for label, offset in offsets.items() if abs(offset) < QUERY_MARGIN]
            if close:
                raise ItemNotApplicable(f"query @{text}: {close} too close to the line through {reference}")
            found = [label for label, offset in offsets.items() if offset > 0]
            if not found:
                raise ItemNotApplicable(f"query @{text}: nothing there")
        return found
    raise ValueError(f"unknown scene query @{text}; queries: leftmost|rightmost|nearest|farthest|middle N, "
                     "closest N to L, same-color N as L, all N [left of|right of|in front of|behind L], "
                     "each optionally followed by 'except L1, L2'")


def _reference(text: str, objects: Mapping[str, Any]) -> str:
    text = text.strip()
    if text.startswith("@"):
        answer = query(text, objects)
        if not isinstance(answer, str):
            raise ValueError(f"query {text} names several objects where one is needed")
        return answer
    if text not in objects:
        raise ValueError(f"{text!r} is not an object of the scene; objects: {', '.join(objects)}")
    return text


# --------------------------------------------------------------------------- resolving


@functools.cache
def goal_model(task: str) -> type[BaseModel]:
    """The task's Goal model (the type argument of its Task[...] base)."""
    from sims.env import load_task
    from sims.tasks.base import Goal

    for cls in load_task(task).__mro__:
        for base in getattr(cls, "__orig_bases__", ()):
            for arg in typing.get_args(base):
                if isinstance(arg, type) and issubclass(arg, Goal):
                    return arg
    raise ValueError(f"task {task}: no goal model found")


def _override(value: Any, fields: Mapping[str, Any], item: Item, objects) -> Any:
    if isinstance(value, str):
        filled = _fill(value, fields, item, "goal")
        return query(filled, objects) if filled.startswith("@") else filled
    if isinstance(value, Mapping):
        return {k: _override(v, fields, item, objects) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        for element in value:
            resolved = _override(element, fields, item, objects)
            # a query naming several objects inside a list adds each of them
            if isinstance(element, str) and element.lstrip().startswith("@") and isinstance(resolved, list):
                out += resolved
            else:
                out.append(resolved)
        return out
    return value


def _labels_in(value: Any) -> list[str]:
    """The strings of a goal that name objects: object labels hold a space ("red block", "glass
    vase") or are the tray; field values such as "left", "nothing" or "fragile" do not."""
    if isinstance(value, str):
        return [value] if (" " in value or value == "tray") else []
    if isinstance(value, Mapping):
        return [label for v in value.values() for label in _labels_in(v)]
    if isinstance(value, (list, tuple)):
        return [label for v in value for label in _labels_in(v)]
    return []


def resolve(item: Item, seed: int, goal: Mapping[str, Any],
            objects: Mapping[str, Sequence[float]]) -> tuple[str, dict[str, Any]]:
    """(instruction text, goal dict) of `item` in the scene of `seed`.

    `goal`: the seed's task goal (the episode's goal fields); `objects`: every object's position
    (label -> xyz). The goal is the seed's, updated by the item's overrides, validated by the
    task's goal model, and names only objects in `objects`. Raises ValueError for a bad item
    (an unknown slot, a goal that does not validate or names an absent object) and
    ItemNotApplicable for a scene the item does not fit.
    """
    fields = _wrap(_plain(goal), _synonym_chooser(item, seed))
    text = _fill(item.text, fields, item, "text")
    merged = _plain(goal)
    if item.goal:
        for key, value in item.goal.items():
            merged[key] = _override(value, fields, item, objects)
    try:
        validated = goal_model(item.task).model_validate(merged)
    except ValidationError as error:
        raise ValueError(f"item {item.id}: its goal does not validate for task {item.task}: "
                         f"{error.errors()[0]['loc']}: {error.errors()[0]['msg']} (goal {merged})") from None
    result = validated.model_dump(mode="json")
    absent = sorted({label for label in _labels_in(result) if label not in objects})
    if absent:
        raise ValueError(f"item {item.id}: its goal names {absent}, not in the scene of seed {seed}; "
                         f"objects: {', '.join(objects)}")
    if item.where:
        wrapped = _wrap(result, None)
        for path, wanted in item.where.items():
            actual = _plain(_Formatter(item, "where").get_field(path, (), wrapped)[0])
            expected = _override(wanted, fields, item, objects)
            if _plain(expected) != actual:
                raise ItemNotApplicable(f"item {item.id}: on seed {seed} {path} is {actual!r}, "
                                        f"not {expected!r} ({wanted})")
    return text, result


# --------------------------------------------------------------------------- seeds and scenes


def task_instance(item: Item):
    """The item's task, configured with its task options (a new instance each call)."""
    from sims.env import load_task

    cls = load_task(item.task)
    return cls(cls.Config(**item.task_options))


@functools.lru_cache(maxsize=64)
def _cached_task(task: str, options: str):
    from sims.env import load_task

    cls = load_task(task)
    return cls(cls.Config(**json.loads(options)))


@contextlib.contextmanager
def _scratch_world(world=None):
    """A bare world to lay scenes out in (tiny renderer: it never renders), closed afterwards: a
    physics client kept alive for the process would change how other worlds in it render."""
    if world is not None:
        yield world
        return
    from sims.world import World

    made = World(renderer="tiny")
    try:
        yield made
    finally:
        made.close()


def scene(item: Item, seed: int, world=None) -> tuple[dict[str, Any], dict[str, tuple[float, float, float]]]:
    """(goal dict, label -> xyz) of the item's task at `seed`, as the environment's reset sets them
    up (the same goal; positions before the scene settles, within millimetres of the env's).
    `world`: a bare World to lay it out in (a fresh one, closed afterwards, when None)."""
    with _scratch_world(world) as scratch:
        return _scene_in(scratch, item, seed)


def _scene_in(world, item: Item, seed: int) -> tuple[dict[str, Any], dict[str, tuple[float, float, float]]]:
    world.reset()
    task = _cached_task(item.task, json.dumps(dict(item.task_options), sort_keys=True))
    _, goal = task.setup(world, np.random.default_rng(seed))
    objects = {label: tuple(float(v) for v in world.position(label)) for label in world.bodies}
    return goal.model_dump(mode="json"), objects


def item_seeds(item: Item, split: str, n: int, check: bool = True) -> list[int]:
    """`n` seeds of `split`'s range for `item`: the range in an order drawn from the item's id,
    keeping (with `check`) only seeds whose scene the item fits (it resolves without
    ItemNotApplicable). Deterministic; ValueError if fewer than `n` fit."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    order = np.random.default_rng(_stable("seeds", split, item.id)).permutation(np.asarray(SEEDS[split]))
    chosen: list[int] = []
    with _scratch_world() as world:
        for seed in (int(s) for s in order):
            if len(chosen) == n:
                break
            if check:
                try:
                    goal, objects = scene(item, seed, world)
                except ValueError:  # no layout for these options at this seed: the env fails it too
                    continue
                try:
                    resolve(item, seed, goal, objects)
                except ItemNotApplicable:
                    continue
            chosen.append(seed)
    if len(chosen) < n:
        raise ValueError(f"item {item.id} fits only {len(chosen)} of the {len(SEEDS[split])} seeds of {split}, "
                         f"fewer than {n}")
    return chosen


__all__ = ["QUERY_MARGIN", "SEEDS", "SPLITS", "SUBSETS", "TASKS", "Item", "ItemNotApplicable", "Label", "goal_model",
           "item_seeds", "load_items", "query", "resolve", "scene", "task_instance"]
