"""Where a local run lives, and which checkpoint ``--resume`` continues.

A run directory is ``--output-dir`` or, by default, ``runs/<name>-<YYYYmmdd-HHMMSS>/`` under the directory
the command runs in. It holds ``metrics.jsonl``, ``reward_curve.png``, ``tensorboard/``, TRL's
``checkpoint-<step>/`` directories, the final ``model/``, and a built-in model's starting weights. A new run
never writes into a directory that already holds files; ``--resume`` continues the newest
``checkpoint-<step>`` of ``--output-dir``, or of the newest ``runs/<name>-<timestamp>/`` without it.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from acecoder_rl.errors import AcecoderError

RUNS_ROOT = Path("runs")
TIMESTAMP = "%Y%m%d-%H%M%S"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def new_run_dir(name: str, output_dir: Path | None = None) -> Path:
    """Create the directory of a new run (``output_dir``, else ``runs/<name>-<timestamp>``)."""
    path = output_dir if output_dir is not None else RUNS_ROOT / f"{name}-{time.strftime(TIMESTAMP)}"
    if path.is_dir() and any(path.iterdir()):
        raise AcecoderError(f"{path} already holds a run: continue it with --resume, or choose another "
                            "--output-dir")
    path.mkdir(parents=True, exist_ok=True)
    return path


def resume_run_dir(name: str, output_dir: Path | None = None) -> tuple[Path, Path]:
    """The run directory to continue and its newest checkpoint."""
    if output_dir is None:
        pattern = re.compile(re.escape(name) + r"-\d{8}-\d{6}")
        runs = sorted(p for p in RUNS_ROOT.glob(f"{name}-*") if p.is_dir() and pattern.fullmatch(p.name))
        if not runs:
            raise AcecoderError(f"--resume: no earlier run of {name!r} in {RUNS_ROOT}/ ({name}-<timestamp>): "
                                "name its directory with --output-dir")
        output_dir = runs[-1]
    checkpoint = last_checkpoint(output_dir)
    if checkpoint is None:
        raise AcecoderError(f"--resume: {output_dir} holds no checkpoint-<step> directory "
                            "(checkpoints.save_steps sets how often they are written)")
    return output_dir, checkpoint


def last_checkpoint(run_dir: Path) -> Path | None:
    """The ``checkpoint-<step>`` directory with the highest step, if any."""
    steps = {int(m.group(1)): p for p in run_dir.glob("checkpoint-*")
             if p.is_dir() and (m := _CHECKPOINT.match(p.name))}
    return steps[max(steps)] if steps else None
