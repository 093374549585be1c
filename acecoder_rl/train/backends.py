"""Dispatch a run on its ``backend``: the one entry point that ``acecoder-rl train`` and ``sweep`` share."""
from __future__ import annotations

from collections.abc import Callable

from acecoder_rl.train.config import RunConfig


def run(cfg: RunConfig, *, address: str | None = None, resume: bool = False, dry_run: bool = False,
        echo: Callable[[str], None] = print) -> None:
    """Run ``cfg`` to its end (or only describe it with ``dry_run``); failures raise AcecoderError."""
    _BACKENDS[cfg.backend](cfg, address=address, resume=resume, dry_run=dry_run, echo=echo)


def _run_openrlhf(cfg: RunConfig, *, address: str | None, resume: bool, dry_run: bool,
                  echo: Callable[[str], None]) -> None:
    from acecoder_rl.train.launch import execute, plan_run, resolve_address

    plan = plan_run(cfg, address=resolve_address(address, cfg), resume=resume)
    if dry_run:
        echo(plan.describe())
        return
    execute(plan)


# One entry per value of config.Backend.
_BACKENDS: dict[str, Callable[..., None]] = {"openrlhf": _run_openrlhf}
