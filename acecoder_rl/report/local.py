"""Read the local training backend's ``metrics.jsonl``: one JSON object per logged step.

Keys read (any may be missing or null; unknown keys are ignored so newer logs still load): ``step``
(required), ``reward_mean``, ``reward_std``, ``pass_rate_mean``, ``all_pass_rate``, ``kl``,
``response_length_mean``, ``learning_rate`` and ``status_<name>`` fractions. Non-finite numbers are treated as
missing. A step logged twice (a resumed run) keeps its last line's values.
"""

from __future__ import annotations

import math
from pathlib import Path

from acecoder_rl.errors import AcecoderError
from acecoder_rl.jsonl import read_objects
from acecoder_rl.report.runs import Run, Series
from acecoder_rl.reward.results import STATUS_METRICS

#: metrics.jsonl key -> canonical metric name.
LOCAL_KEYS = {
    "reward_mean": "reward",
    "reward_std": "reward_std",
    "pass_rate_mean": "pass_rate",
    "all_pass_rate": "all_pass_rate",
    "kl": "kl",
    "response_length_mean": "response_length",
    "learning_rate": "learning_rate",
    **{key: key for key in STATUS_METRICS},
}


def read_local_run(path: Path, *, name: str) -> Run:
    """The run logged in ``path`` (a ``metrics.jsonl``)."""
    points: dict[str, dict[int, float]] = {}
    for lineno, row in read_objects(path):
        where = f"{path}:{lineno}"
        step = row.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise AcecoderError(f"{where}: field 'step' must be an integer")
        for key, metric in LOCAL_KEYS.items():
            value = row.get(key)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise AcecoderError(f"{where}: field {key!r} must be a number, got {value!r}")
            if math.isfinite(value):
                points.setdefault(metric, {})[step] = float(value)
    if not points:
        raise AcecoderError(
            f"{path}: no logged metrics (expected lines such as "
            '{"step": 1, "reward_mean": 0.5, "pass_rate_mean": 0.4})'
        )
    return Run(name, "local", path, {metric: Series.from_points(points[metric]) for metric in points})
