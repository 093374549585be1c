"""The :class:`~acecoder_rl.reward.config.RewardConfig` fields that commands take as options.

One table, :data:`ENGINE_OPTIONS`, names the options (``reward score``, ``serve``, ``eval`` take them), and
everything else about an option comes from the field itself: its default and its type are read from the
dataclass, so a default changed in ``RewardConfig`` changes every command's default and ``--help`` with it.
Code that starts ``acecoder-rl serve`` for a run (:mod:`acecoder_rl.train.openrlhf.reward_service`) turns
config keys back into the same options with :func:`engine_args`, without a copy of the table.

Nothing here imports click: the table is data (the CLI builds its click options from it), so the config
checks of a training run can use it without loading the command line.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from acecoder_rl.reward.config import RewardConfig

_FIELDS = {f.name: f for f in dataclasses.fields(RewardConfig)}
_TYPES = typing.get_type_hints(RewardConfig)


@dataclass(frozen=True)
class EngineOption:
    """One ``RewardConfig`` field as a command-line option.

    ``minimum``/``maximum`` (``exclusive_minimum``: the minimum itself is refused) are the bounds the CLI
    checks, so that a bad value is refused naming the option; they are ``RewardConfig``'s own bounds
    (``tests/cli/test_engine_options.py`` checks that the two agree)."""

    field: str
    flag: str
    """On the command line; a boolean field has an ``--on/--off`` pair."""
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def __post_init__(self) -> None:
        if self.field not in _FIELDS:
            raise ValueError(f"EngineOption {self.flag}: RewardConfig has no field {self.field!r}")

    @property
    def default(self) -> object:
        """``RewardConfig``'s default for the field."""
        return _FIELDS[self.field].default

    @property
    def value_type(self) -> type:
        """``int``, ``float`` or ``bool``; ``str`` for a field with a fixed set of :attr:`choices`."""
        hint = _TYPES[self.field]
        if typing.get_origin(hint) is Literal:
            return str
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]  # X | None is an X
        return args[0] if args else hint

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values of a ``Literal`` field (``mode``), else None."""
        hint = _TYPES[self.field]
        return typing.get_args(hint) if typing.get_origin(hint) is Literal else None

    @property
    def is_flag_pair(self) -> bool:
        return self.value_type is bool


ENGINE_OPTIONS: tuple[EngineOption, ...] = (
    EngineOption("workers", "--workers", "Sandbox workers [default: 1.5 per CPU core].", minimum=1,
                 maximum=256),
    EngineOption("mode", "--mode", "pass_rate: passed/total; binary: 1 only when every test passes."),
    EngineOption("timeout_per_test", "--timeout-per-test",
                 "Seconds per test (and for the program's top level).", minimum=0, exclusive_minimum=True),
    EngineOption("timeout_per_program", "--timeout-per-program",
                 "Cap on one program's total time; tests not reached are not_run.", minimum=0,
                 exclusive_minimum=True),
    EngineOption("memory_mb", "--memory-mb", "Address-space limit per program.", minimum=64),
    EngineOption("all_pass_bonus", "--all-pass-bonus", "Added to the reward when every test passes.",
                 minimum=0),
    EngineOption("format_penalty", "--format-penalty",
                 "Subtracted from the reward when the completion holds no code.", minimum=0),
    EngineOption("salvage_code", "--salvage/--no-salvage",
                 "Keep the longest valid run of lines of broken code (AceCoder's RL server; not the "
                 "dataset's rule)."),
    EngineOption("strict", "--strict/--no-strict",
                 "Fail tests that only the program's own __eq__/__bool__ could pass (objects of its "
                 "classes)."),
    EngineOption("cache_size", "--cache-size",
                 "Verdicts remembered for identical (code, tests) pairs; 0 disables.", minimum=0),
)

_BY_FIELD = {option.field: option for option in ENGINE_OPTIONS}


def engine_args(engine: Mapping[str, object]) -> list[str]:
    """Command-line options for RewardConfig fields (keys set to None are left to the engine's defaults).
    A field no option exists for is a KeyError: callers validate configs against :data:`ENGINE_OPTIONS`."""
    args: list[str] = []
    for key in sorted(k for k, v in engine.items() if v is not None):
        option = _BY_FIELD[key]
        if option.is_flag_pair:
            on, off = option.flag.split("/")
            args.append(on if engine[key] else off)
        else:
            args += [option.flag, str(engine[key])]
    return args
