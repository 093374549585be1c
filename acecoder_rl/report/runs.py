"""Training runs as time series, with every backend's metrics under one name.

A :class:`Run` is what :func:`acecoder_rl.report.load.load_runs` reads from a run directory, the local
backend's ``metrics.jsonl`` (:mod:`acecoder_rl.report.local`) or OpenRLHF's TensorBoard logs
(:mod:`acecoder_rl.report.tensorboard`); both are read into the same :data:`METRICS` names, so reports
compare runs of either kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from acecoder_rl.reward.results import STATUS_METRICS

#: Canonical metric names, in report order. Rewards and rates are per-sample means over a training step.
METRICS = (
    "reward",
    "reward_std",
    "pass_rate",
    "all_pass_rate",
    "kl",
    "response_length",
    "learning_rate",
    *STATUS_METRICS,
)


@dataclass
class Series:
    """One metric over training: ``steps`` increasing, one value per step."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @classmethod
    def from_points(cls, points: dict[int, float]) -> Series:
        ordered = sorted(points.items())
        return cls([step for step, _ in ordered], [value for _, value in ordered])


@dataclass
class Run:
    """A training run: where it came from and its metrics (only those that were logged)."""

    name: str
    backend: str  # "local" or "openrlhf"
    source: Path  # the metrics file, or the directory of event files
    series: dict[str, Series]

    @property
    def last_step(self) -> int:
        return max(series.steps[-1] for series in self.series.values())

    @property
    def logged_steps(self) -> int:
        return len({step for series in self.series.values() for step in series.steps})


def slug(name: str) -> str:
    """A file-name-safe form of a run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
