"""The reward-engine options of every command that runs the engine (``reward score``, ``serve``, ``eval``).

The options are :data:`acecoder_rl.reward.options.ENGINE_OPTIONS` as click options: flag and help from that
table, default and type from the ``RewardConfig`` field, so every command shows the engine's real defaults.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.options import ENGINE_OPTIONS, EngineOption


def click_type(option: EngineOption) -> click.ParamType | None:
    """The click type of a valued option (None for an ``--on/--off`` pair, which is a boolean flag)."""
    if option.is_flag_pair:
        return None
    if option.choices is not None:
        return click.Choice(option.choices)
    if option.value_type is int:
        return click.IntRange(_int(option.minimum), _int(option.maximum))
    return click.FloatRange(option.minimum, option.maximum, min_open=option.exclusive_minimum)


def _int(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def engine_options(command: Callable | None = None, *, fields: tuple[str, ...] | None = None) -> Callable:
    """Decorator adding the engine options (all, or those of ``fields``); values arrive under their field
    names. ``@engine_options`` or ``@engine_options(fields=("workers", ...))``."""

    def decorate(command: Callable) -> Callable:
        for option in reversed(ENGINE_OPTIONS):
            if fields is None or option.field in fields:
                command = click.option(option.flag, option.field, type=click_type(option),
                                       default=option.default, show_default=option.default is not None,
                                       help=option.help)(command)
        return command

    return decorate(command) if command is not None else decorate


def engine_config(values: Mapping[str, Any]) -> RewardConfig:
    """The RewardConfig for the engine options a command received (an option left at None: the engine's)."""
    given = {o.field: values[o.field] for o in ENGINE_OPTIONS if values.get(o.field) is not None}
    try:
        return RewardConfig(**given)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
