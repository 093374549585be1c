"""TRL ``TrainerCallback``s of the local backend: ``metrics.jsonl`` and a rich progress bar with the reward.

The progress bar replaces transformers' tqdm bar and its printing of every log dict (dozens of keys per
step), which would bury the one number a person watches: the mean reward.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback

from acecoder_rl.train.local.metrics import FROM_TRL, append_line, is_training_log, keep_until, metrics_line


class MetricsWriter(TrainerCallback):
    """Appends one :mod:`~acecoder_rl.train.local.metrics` line per training log to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._started = time.monotonic()
        self._offset_s = 0.0

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        # state.global_step is the checkpoint's step when resuming, else 0.
        self._offset_s = keep_until(self.path, state.global_step)
        self._started = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if logs and is_training_log(logs):
            elapsed = self._offset_s + time.monotonic() - self._started
            append_line(self.path, metrics_line(state.global_step, logs, elapsed))


class RewardProgress(TrainerCallback):
    """``train ━━━━━━━━━━  37/100  reward 0.812  pass 0.830  0:00:21  0:00:35`` on stderr, updated live."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("reward [bold cyan]{task.fields[reward]}"),
            TextColumn("pass {task.fields[pass_rate]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
        )
        self._task = self._progress.add_task("train", total=state.max_steps, completed=state.global_step,
                                             reward="-", pass_rate="-")
        self._progress.start()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self._progress.update(self._task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if logs and is_training_log(logs):
            self._progress.update(self._task, reward=f"{logs[FROM_TRL['reward_mean']]:.3f}",
                                  pass_rate=f"{logs.get(FROM_TRL['pass_rate_mean'], float('nan')):.3f}")

    def on_train_end(self, args, state, control, **kwargs) -> None:
        self._progress.stop()
