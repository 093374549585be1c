"""The reward-engine options shared by every command that runs the engine (``reward score``, ``serve``, ...).

One table, :data:`ENGINE_OPTIONS`, maps ``RewardConfig`` fields to command-line options, so the commands
spell them the same way and code that starts ``acecoder-rl serve`` for a run (``train/reward_service.py``)
can turn config keys back into flags without a copy of the list.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class EngineOption:
    field: str  # RewardConfig field
    flag: str  # on the command line; a boolean has "--on/--off"
    click_type: object
    default: object
    help: str

    @property
    def is_flag_pair(self) -> bool:
        return "/" in self.flag


ENGINE_OPTIONS: tuple[EngineOption, ...] = (
    EngineOption("workers", "--workers", click.IntRange(1, 256), None, "Sandbox workers [default: 1.5 per CPU core]."),
    EngineOption("mode", "--mode", click.Choice(["pass_rate", "binary"]), "pass_rate",
                 "pass_rate: passed/total; binary: 1 only when every test passes."),
    EngineOption("timeout_per_test", "--timeout-per-test", click.FloatRange(min=0, min_open=True), 4.0,
                 "Seconds per test (and for the program's top level)."),
    EngineOption("timeout_per_program", "--timeout-per-program", click.FloatRange(min=0, min_open=True), 60.0,
                 "Cap on one program's total time; tests not reached are not_run."),
    EngineOption("memory_mb", "--memory-mb", click.IntRange(min=64), 4096, "Address-space limit per program."),
    EngineOption("all_pass_bonus", "--all-pass-bonus", click.FloatRange(min=0), 0.0,
                 "Added to the reward when every test passes."),
    EngineOption("format_penalty", "--format-penalty", click.FloatRange(min=0), 0.0,
                 "Subtracted from the reward when the completion holds no code."),
    EngineOption("salvage_code", "--salvage/--no-salvage", bool, False,
                 "Keep the longest valid run of lines of broken code (AceCoder's RL server; not the dataset's rule)."),
    EngineOption("strict", "--strict/--no-strict", bool, True,
                 "Fail tests that only the program's own __eq__/__bool__ could pass (objects of its classes)."),
    EngineOption("cache_size", "--cache-size", click.IntRange(min=0), None,
                 "Verdicts remembered for identical (code, tests) pairs; 0 disables [default: the engine's]."),
)


def engine_options(command: Callable | None = None, *, fields: tuple[str, ...] | None = None) -> Callable:
    """Decorator adding the :data:`ENGINE_OPTIONS` options (all, or those of ``fields``); values arrive under
    their field names. ``@engine_options`` or ``@engine_options(fields=("workers", ...))``."""

    def decorate(command: Callable) -> Callable:
        for option in reversed(ENGINE_OPTIONS):
            if fields is None or option.field in fields:
                command = click.option(option.flag, option.field, type=None if option.is_flag_pair else option.click_type,
                                       default=option.default, show_default=option.default is not None,
                                       help=option.help)(command)
        return command

    return decorate(command) if command is not None else decorate


def engine_config(values: dict):
    """The RewardConfig for the engine options a command received (defaults left to the engine)."""
    from acecoder_rl.reward import RewardConfig

    given = {o.field: values[o.field] for o in ENGINE_OPTIONS if values.get(o.field) is not None}
    try:
        return RewardConfig(**given)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def engine_args(engine: dict) -> list[str]:
    """Command-line options for RewardConfig fields (keys set to None are left to the engine's defaults).
    A field no option exists for is a KeyError: callers validate configs against :data:`ENGINE_OPTIONS`."""
    by_field = {o.field: o for o in ENGINE_OPTIONS}
    args: list[str] = []
    for key in sorted(k for k, v in engine.items() if v is not None):
        option = by_field[key]
        if option.is_flag_pair:
            on, off = option.flag.split("/")
            args.append(on if engine[key] else off)
        else:
            args += [option.flag, str(engine[key])]
    return args
