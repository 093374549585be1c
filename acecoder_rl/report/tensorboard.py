"""Read OpenRLHF 0.11's TensorBoard scalars into the canonical metric names.

What OpenRLHF writes (``openrlhf/utils/logging_utils.py`` ``TensorboardLogger.log_train``): every entry of the
PPO step's status dict as ``train/<key>`` at the global step. Those entries are the means over the step's
samples of each experience's ``info`` (``reward``, ``kl``, ``response_length``, and every key of a reward
function's ``extra_logs``: ours are ``pass_rate``, ``all_passed``, ``status_<name>``...), the actor's
``actor_lr``, and the rollout statistics ``rollout/reward_mean``, ``rollout/reward_std`` and
``rollout/response_length_mean``. A metric takes the first of its tags that the run has.
"""

from __future__ import annotations

import math
from pathlib import Path

from acecoder_rl.errors import AcecoderError
from acecoder_rl.report.runs import Run, Series
from acecoder_rl.reward.results import STATUS_METRICS

#: Canonical metric name -> OpenRLHF tags, preferred first.
OPENRLHF_TAGS = {
    "reward": ("train/reward", "train/rollout/reward_mean"),
    "reward_std": ("train/rollout/reward_std",),
    "pass_rate": ("train/pass_rate",),
    "all_pass_rate": ("train/all_passed",),
    "kl": ("train/kl",),
    "response_length": ("train/response_length", "train/rollout/response_length_mean"),
    "learning_rate": ("train/actor_lr",),
    **{key: (f"train/{key}",) for key in STATUS_METRICS},
}


def read_tensorboard_run(event_dir: Path, *, name: str) -> Run:
    """The run whose event files are in ``event_dir`` (all of them, as TensorBoard itself reads a run)."""
    from tensorboard.backend.event_processing import event_accumulator

    # 0 = keep every scalar (the default keeps a random sample of 10,000 per tag); skip everything else.
    guidance = {
        event_accumulator.SCALARS: 0,
        event_accumulator.TENSORS: 1,
        event_accumulator.IMAGES: 1,
        event_accumulator.HISTOGRAMS: 1,
        event_accumulator.AUDIO: 1,
        event_accumulator.COMPRESSED_HISTOGRAMS: 1,
    }
    accumulator = event_accumulator.EventAccumulator(str(event_dir), size_guidance=guidance)
    accumulator.Reload()  # unreadable records are skipped (with a warning from tensorboard), not raised
    tags = set(accumulator.Tags().get("scalars", []))
    series: dict[str, Series] = {}
    for metric, candidates in OPENRLHF_TAGS.items():
        tag = next((t for t in candidates if t in tags), None)
        if tag is None:
            continue
        points = {
            event.step: float(event.value) for event in accumulator.Scalars(tag) if math.isfinite(event.value)
        }
        if points:
            series[metric] = Series.from_points(points)
    if not series:
        raise AcecoderError(
            f"{event_dir}: the event files hold none of OpenRLHF's PPO training scalars "
            "(train/reward, train/pass_rate, train/kl, ...), or cannot be read"
        )
    return Run(name, "openrlhf", event_dir, series)
