"""``metrics.jsonl``: one JSON object per logging step of a local run, the file ``acecoder-rl report`` reads.

Schema (every key on every line; numbers are floats unless said otherwise):

======================== ===========================================================================
key                      meaning
======================== ===========================================================================
``step``                 int, the optimizer step the line reports (TRL's ``global_step``)
``reward_mean``          mean reward of the step's samples (the engine's shaped reward,
                         ``RewardResult.reward``; RLOO's KL penalty is not in it)
``reward_std``           standard deviation of those rewards
``pass_rate_mean``       mean fraction of tests passed
``all_pass_rate``        fraction of samples that passed every test
``kl``                   mean per-token KL to the reference model as TRL estimates it (k3 for GRPO,
                         k1 for RLOO); ``null`` when ``kl_coef`` is 0 (no reference model)
``response_length_mean`` mean completion length in tokens
``status_<s>``           fraction of samples whose program status is ``<s>``, for each
                         :class:`~acecoder_rl.reward.results.ProgramStatus` (``ok``, ``no_code``,
                         ``syntax_error``, ...; :data:`~acecoder_rl.reward.results.STATUS_METRICS`)
``reward_error``         fraction of samples that could not be scored at all (rewarded 0)
``learning_rate``        the learning rate at that step
``elapsed_s``            seconds since training started (a resumed run continues the count)
======================== ===========================================================================

A value TRL did not report is ``null`` (only ``kl`` in practice). With ``logging.logging_steps`` > 1 a line
holds the means over the steps since the previous line (TRL averages them). A resumed run first drops the
lines after its checkpoint's step, so every step appears once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acecoder_rl.reward.results import STATUS_METRICS

REWARD_NAME = "acecoder_reward"  # the reward function's __name__: TRL logs rewards/<name>/mean and /std
KEYS: tuple[str, ...] = ("step", "reward_mean", "reward_std", "pass_rate_mean", "all_pass_rate", "kl",
                         "response_length_mean", *STATUS_METRICS, "reward_error", "learning_rate",
                         "elapsed_s")

# Our key -> the key of TRL's log dict (GRPOTrainer and RLOOTrainer log the same names; acecoder/... are
# logged by TRLReward through TRL's log_metric hook).
FROM_TRL = {
    "reward_mean": f"rewards/{REWARD_NAME}/mean",
    "reward_std": f"rewards/{REWARD_NAME}/std",
    "pass_rate_mean": "acecoder/pass_rate",
    "all_pass_rate": "acecoder/all_passed",
    "response_length_mean": "completions/mean_length",
    **{key: f"acecoder/{key}" for key in STATUS_METRICS},
    "reward_error": "acecoder/reward_error",
    "kl": "kl",
    "learning_rate": "learning_rate",
}


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The lines of a ``metrics.jsonl`` (none if the file does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def is_training_log(logs: dict[str, Any]) -> bool:
    """Whether a TRL log dict reports training steps (the end-of-training summary log has no reward)."""
    return FROM_TRL["reward_mean"] in logs


def metrics_line(step: int, logs: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
    """One line of the schema from TRL's log dict of a training step."""
    line: dict[str, Any] = {"step": step}
    for key in KEYS[1:-1]:
        value = logs.get(FROM_TRL[key])
        line[key] = None if value is None else float(value)
    line["elapsed_s"] = round(elapsed_s, 3)
    return line


def keep_until(path: Path, step: int) -> float:
    """Rewrite ``path`` without its lines after ``step`` (a run resumed from that step's checkpoint will log
    them again); return the ``elapsed_s`` of the last line kept (0 if none), where the count continues."""
    kept = [line for line in read_metrics(path) if line["step"] <= step]
    path.write_text("".join(json.dumps(line) + "\n" for line in kept), encoding="utf-8")
    return kept[-1]["elapsed_s"] if kept else 0.0


def append_line(path: Path, line: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
