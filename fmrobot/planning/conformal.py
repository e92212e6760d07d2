"""Ask for help when unsure: conformal prediction sets over the next step.

After KnowNo (Ren et al., 2023, "Robots That Ask For Help"). On a calibration set of
decisions whose intended step is known, the nonconformity of each decision is
1 - p(intended step), with p the planner's normalized scores. For a target coverage
1 - epsilon, the threshold q is the ceil((n + 1)(1 - epsilon))-th smallest of the n
nonconformities. At run time the prediction set holds every option with
p >= 1 - q; if the decisions are exchangeable with the calibration set, it contains the
intended step with probability at least 1 - epsilon. A set of one option is executed;
a larger one becomes a question to a person (or a scripted responder).

The threshold belongs to one model, prompt and planner setting, so it is stored with
them in a small JSON file (`HelpCalibration`) that records the command that made it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmrobot.assets import ShippedFiles
from fmrobot.errors import ConfigError

CALIBRATIONS = ShippedFiles(Path(__file__).parent / "calibrations", ".json")


class HelpCalibration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    coverage: float = Field(gt=0.0, lt=1.0)  # the target: P(intended step in the set) >= coverage
    threshold: float = Field(ge=0.0, le=1.0)  # q: the set keeps options with probability >= 1 - q
    examples: int = Field(ge=1)  # calibration decisions
    model: str = ""  # what the scores came from: model, prompt, planner settings
    made_by: str = ""  # the command that reproduces this file

    def prediction_set(self, probabilities: Sequence[float]) -> list[int]:
        return prediction_set(probabilities, self.threshold)


def conformal_threshold(nonconformity: Sequence[float], coverage: float) -> float:
    """The finite-sample-corrected quantile q of calibration nonconformities for a target coverage."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie strictly between 0 and 1, got {coverage}")
    values = sorted(float(v) for v in nonconformity)
    n = len(values)
    if n == 0:
        raise ValueError("calibration needs at least one example")
    rank = math.ceil((n + 1) * coverage)
    if rank > n:
        return 1.0  # too few examples for this coverage: every option stays in the set
    return values[rank - 1]


def prediction_set(probabilities: Sequence[float], threshold: float) -> list[int]:
    """Indices of options with probability >= 1 - threshold, most probable first.

    The most probable option is always included: an empty set would leave nothing to
    ask about, and adding it can only raise coverage.
    """
    p = np.asarray(probabilities, dtype=float)
    order = [int(i) for i in np.argsort(-p, kind="stable")]
    keep = [i for i in order if p[i] >= 1.0 - threshold - 1e-12]
    return keep or order[:1]


def set_statistics(sets: Sequence[Sequence[int]], intended: Sequence[int]) -> dict[str, float]:
    """Empirical coverage, help rate (sets of more than one option) and average set size."""
    if len(sets) != len(intended) or not sets:
        raise ValueError("need one intended option per prediction set, and at least one set")
    return {
        "coverage": float(np.mean([t in s for s, t in zip(sets, intended)])),
        "help_rate": float(np.mean([len(s) > 1 for s in sets])),
        "average_set_size": float(np.mean([len(s) for s in sets])),
        "decisions": len(sets),
    }


def load_calibration(name: str) -> HelpCalibration:
    """A shipped calibration by name (fmrobot/planning/calibrations/<name>.json) or a JSON file path."""
    path = CALIBRATIONS.find(name)
    if path is None:
        raise ConfigError(f"no help calibration {name!r}: give a JSON file path or one of: {CALIBRATIONS.listing()}")
    try:
        return HelpCalibration.model_validate_json(path.read_text())
    except ValueError as error:
        raise ConfigError(f"help calibration {path} is not valid: {error}") from None
