"""Synthetic training runs of both kinds: local ``metrics.jsonl`` files, OpenRLHF TensorBoard event files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def local_run(tmp_path: Path) -> Callable[[str, list], Path]:
    """``local_run(name, rows)``: RUN_DIR with a metrics.jsonl of ``rows`` (dicts, or raw lines as str)."""

    def make(name: str, rows: list) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text(
            "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
            encoding="utf-8",
        )
        return run_dir

    return make


@pytest.fixture
def openrlhf_run(tmp_path: Path) -> Callable[..., Path]:
    """``openrlhf_run(tensorboard_dir, run_name, {tag: [(step, value), ...]})``: event files written with the
    SummaryWriter OpenRLHF itself uses, at ``<tensorboard_dir>/<run_name>`` as OpenRLHF lays them out."""
    from torch.utils.tensorboard import SummaryWriter

    def make(tensorboard_dir: str, run_name: str, scalars: dict[str, list[tuple[int, float]]]) -> Path:
        log_dir = tmp_path / tensorboard_dir / run_name
        writer = SummaryWriter(log_dir=str(log_dir))
        for tag, points in scalars.items():
            for step, value in points:
                writer.add_scalar(tag, value, step)
        writer.add_text("train/generated_samples", "Sample: ...", 1)  # OpenRLHF logs one sample as text
        writer.close()
        return tmp_path / tensorboard_dir

    return make
