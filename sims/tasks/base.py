"""The parts every task has, kept explicit: setup, predicates, oracle plan."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar, Generic, Sequence, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import GoalOption, Plan, SceneDescription, TaskSpec
from sims.variation import Level, LevelName, level, widen
from sims.world import World


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where objects may be placed: x (away from the robot) and y ranges on the table.
    workspace_x: tuple[float, float] = (0.35, 0.68)
    workspace_y: tuple[float, float] = (-0.26, 0.26)
    max_steps: int = Field(default=800, gt=0)  # control steps before the episode is cut
    # Generalization level (sims/variation.py); None keeps the task's own defaults.
    level: LevelName | None = None


class Goal(BaseModel):
    """What one episode asks for; each task defines its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


GoalT = TypeVar("GoalT", bound=Goal)


class Task(ABC, Generic[GoalT]):
    name: ClassVar[str]
    Config: ClassVar[type[TaskConfig]] = TaskConfig

    def __init__(self, config: TaskConfig | None = None):
        self.config = config or self.Config()
        self.level: Level | None = level(self.config.level)

    # ------------------------------------------------------------------ what the level varies

    def palette(self, default: Sequence[str]) -> list[str]:
        """Colours this episode's objects are drawn from: the level's, else the task's own."""
        return list(self.level.colors if self.level else default)

    def workspace(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(x range, y range) objects are placed in; levels L2+ widen the task's own."""
        margin = self.level.workspace_margin if self.level else 0.0
        return widen(self.config.workspace_x, margin), widen(self.config.workspace_y, margin)

    @property
    def shape(self) -> str:
        """What movable objects are ('block' unless the level holds them out)."""
        return self.level.shape if self.level else "block"

    def phrasings(self, seen: Sequence[str], held_out: Sequence[str]) -> Sequence[str]:
        """Instruction templates for this episode: held-out ones at levels L3+."""
        return held_out if self.level and self.level.phrasing == "unseen" else seen

    @abstractmethod
    def spec(self) -> TaskSpec:
        """Skills, instruction templates and vocabulary; the same for every episode."""

    @abstractmethod
    def setup(self, world: World, rng: np.random.Generator) -> tuple[str, GoalT]:
        """Populate the world for one episode; return its instruction and goal."""

    @abstractmethod
    def predicates(self, world: World, goal: GoalT) -> dict[str, bool]:
        """Named success predicates; the dict always holds "success"."""

    def watch(self, world: World, goal: GoalT) -> None:
        """Called after every control step. Tasks that judge what happened during the episode,
        not only how it ended (a fragile object touched on the way), record it here."""

    @abstractmethod
    def oracle_plan(self, goal: GoalT) -> Plan:
        """A plan that solves the episode, written with the skills a planner would use."""

    def equivalent_goals(self, goal: GoalT) -> list[GoalT]:
        """Goals the predicates judge exactly as `goal` (a row beside a bowl in any block order);
        symbolic judging accepts the end state of any of them."""
        return [goal]

    def goal_options(self, scene: SceneDescription) -> list[GoalOption]:
        """Every goal this task can pursue among the perceived objects, in words, with its plan
        (sims/tasks/domain.py); a task that lists none offers no goal domain to planners."""
        return []


def sample_placements(
    rng: np.random.Generator,
    radii: Sequence[float],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    gap: float = 0.02,
    tries: int = 2000,
    restarts: int = 0,
) -> list[tuple[float, float]]:
    """Non-overlapping positions for discs of the given radii, largest first.

    Placement is greedy, so a few early draws can leave no room for a later disc even
    when a layout exists; `restarts` starts over that many times before giving up. The
    default (none) keeps the random draws of existing callers, and so their scenes.
    """
    for r in radii:
        if 2 * r > min(x_range[1] - x_range[0], y_range[1] - y_range[0]):
            raise ValueError(f"could not place an object of radius {r} in x={x_range}, y={y_range}: it is too big")
    for _ in range(restarts):
        try:
            return _place_greedily(rng, radii, x_range, y_range, gap, tries)
        except ValueError:
            pass
    return _place_greedily(rng, radii, x_range, y_range, gap, tries)


def sample_layout(
    rng: np.random.Generator,
    radii: Sequence[float],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    tries: int,
    accept: Callable[[list[tuple[float, float]]], bool],
) -> list[tuple[float, float]] | None:
    """Fresh layouts (as `sample_placements` draws them) until `accept` takes one; None after
    `tries` draws, so that the caller can say what its layout needed."""
    for _ in range(tries):
        try:
            spots = sample_placements(rng, radii, x_range, y_range)
        except ValueError:
            continue
        if accept(spots):
            return spots
    return None


def free_spot(
    rng: np.random.Generator,
    radius: float,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    taken: Sequence[tuple[Sequence[float], float]],
    gap: float,
    tries: int,
) -> np.ndarray | None:
    """A disc of `radius` inside the ranges, `gap` clear of every (centre, radius) in `taken`;
    None if `tries` draws find none."""
    for _ in range(tries):
        xy = np.array([rng.uniform(x_range[0] + radius, x_range[1] - radius),
                       rng.uniform(y_range[0] + radius, y_range[1] - radius)])
        if all(np.hypot(*(xy - np.asarray(p))) >= radius + r + gap for p, r in taken):
            return xy
    return None


def _place_greedily(
    rng: np.random.Generator,
    radii: Sequence[float],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    gap: float,
    tries: int,
) -> list[tuple[float, float]]:
    order = sorted(range(len(radii)), key=lambda i: -radii[i])
    placed: dict[int, tuple[float, float]] = {}
    for i in order:
        r = radii[i]
        for _ in range(tries):
            x = float(rng.uniform(x_range[0] + r, x_range[1] - r))
            y = float(rng.uniform(y_range[0] + r, y_range[1] - r))
            if all(np.hypot(x - px, y - py) >= r + radii[j] + gap for j, (px, py) in placed.items()):
                placed[i] = (x, y)
                break
        else:
            raise ValueError(
                f"could not place {len(radii)} objects without overlap in x={x_range}, y={y_range}; "
                "use fewer or smaller objects or a larger workspace"
            )
    return [placed[i] for i in range(len(radii))]
