"""Dispatch a run on its ``backend``: the one entry point that ``acecoder-rl train`` and ``sweep`` share."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from acecoder_rl.errors import UsageError
from acecoder_rl.train.config import RunConfig


def run(cfg: RunConfig, *, address: str | None = None, resume: bool = False, dry_run: bool = False,
        output_dir: Path | None = None, echo: Callable[[str], None] = print) -> None:
    """Run ``cfg`` to its end (or only describe it with ``dry_run``); failures raise AcecoderError.

    ``address`` is the Ray cluster (OpenRLHF only), ``output_dir`` the run directory (local only)."""
    _BACKENDS[cfg.backend](cfg, address=address, resume=resume, dry_run=dry_run, output_dir=output_dir,
                           echo=echo)


def _run_openrlhf(cfg: RunConfig, *, address: str | None, resume: bool, dry_run: bool,
                  output_dir: Path | None, echo: Callable[[str], None]) -> None:
    from acecoder_rl.train.openrlhf.launch import execute, plan_run, resolve_address

    if output_dir is not None:
        raise UsageError("--output-dir is for backend: local; OpenRLHF runs write to checkpoints.save_path "
                         "and checkpoints.output_dir")
    plan = plan_run(cfg, address=resolve_address(address, cfg), resume=resume)
    if dry_run:
        echo(plan.describe())
        return
    execute(plan)


def _run_local(cfg: RunConfig, *, address: str | None, resume: bool, dry_run: bool, output_dir: Path | None,
               echo: Callable[[str], None]) -> None:
    from acecoder_rl.train.local.runner import run_local

    if address is not None:
        raise UsageError("--address is for backend: openrlhf; backend: local trains on this machine")
    run_local(cfg, output_dir=output_dir, resume=resume, dry_run=dry_run, echo=echo)


# One entry per value of config.Backend.
_BACKENDS: dict[str, Callable[..., None]] = {"openrlhf": _run_openrlhf, "local": _run_local}
