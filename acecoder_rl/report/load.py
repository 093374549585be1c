"""Find the runs in run directories and read each with the reader of its kind.

A run directory is either

* the local backend's ``RUN_DIR/metrics.jsonl``, one JSON object per step (:mod:`acecoder_rl.report.local`),
  or
* OpenRLHF's TensorBoard logs (``--logger.tensorboard_dir``; OpenRLHF writes into ``<dir>/<run_name>/``):
  every directory under RUN_DIR that holds ``events.out.tfevents.*`` files is one run
  (:mod:`acecoder_rl.report.tensorboard`), so pointing at a sweep's shared ``tensorboard_dir`` reports all its
  runs.
"""

from __future__ import annotations

from pathlib import Path

from acecoder_rl.errors import AcecoderError
from acecoder_rl.report.local import read_local_run
from acecoder_rl.report.runs import Run
from acecoder_rl.report.tensorboard import read_tensorboard_run

EVENT_FILE = "events.out.tfevents."
LOCAL_FILE = "metrics.jsonl"


def load_runs(run_dirs: list[Path]) -> list[Run]:
    """Every run found in ``run_dirs`` (in the order given), with names that are unique and readable."""
    resolved = [path.resolve() for path in run_dirs]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise AcecoderError(f"run directory {run_dirs[i]} is given twice")
    runs: list[Run] = []
    for given in run_dirs:
        if not given.exists():
            raise AcecoderError(f"run directory {given} does not exist")
        if not given.is_dir():
            raise AcecoderError(f"{given} is not a directory (give the run directory)")
        if (given / LOCAL_FILE).is_file():
            runs.append(read_local_run(given / LOCAL_FILE, name=given.resolve().name))
            continue
        event_dirs = sorted({file.parent for file in given.rglob(f"{EVENT_FILE}*") if file.is_file()})
        if not event_dirs:
            raise AcecoderError(
                f"{given}: no {LOCAL_FILE} (local backend) and no TensorBoard event files "
                "(OpenRLHF --logger.tensorboard_dir) in it"
            )
        for event_dir in event_dirs:
            name = given.resolve().name
            if len(event_dirs) > 1:
                name += "/" + event_dir.relative_to(given).as_posix()
            runs.append(read_tensorboard_run(event_dir, name=name))
    _disambiguate(runs)
    return runs


def _disambiguate(runs: list[Run]) -> None:
    """Runs that share a name (``a/run`` and ``b/run``) are named by their full path instead."""
    names = [run.name for run in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.name = str(run.source.parent if run.backend == "local" else run.source)
