"""The engine options of every command come from RewardConfig: its defaults, its types, its bounds."""
from __future__ import annotations

import dataclasses

import click
import pytest

from acecoder_rl.cli.engine_options import engine_config
from acecoder_rl.cli.eval_cmds import eval_cmd
from acecoder_rl.cli.reward_cmds import score_cmd
from acecoder_rl.cli.serve_cmds import serve
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.options import ENGINE_OPTIONS, engine_args

DEFAULTS = {f.name: f.default for f in dataclasses.fields(RewardConfig)}
COMMANDS = {"reward score": score_cmd, "serve": serve, "eval": eval_cmd}


def engine_params(command: click.Command) -> dict[str, click.Option]:
    fields = {option.field for option in ENGINE_OPTIONS}
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name in fields}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_commands_defaults_and_help_are_reward_configs(name):
    params = engine_params(COMMANDS[name])
    assert params, f"{name} takes no engine option"
    by_field = {option.field: option for option in ENGINE_OPTIONS}
    for field, param in params.items():
        assert param.default == DEFAULTS[field], f"{name} {param.opts}: {param.default!r}"
        assert param.help == by_field[field].help
        assert param.show_default == (DEFAULTS[field] is not None)


def test_serve_and_score_take_every_option_and_eval_its_three():
    every = {option.field for option in ENGINE_OPTIONS}
    assert set(engine_params(serve)) == set(engine_params(score_cmd)) == every
    assert set(engine_params(eval_cmd)) == {"workers", "timeout_per_test", "memory_mb"}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_reward_configs_defaults(name):
    command = COMMANDS[name]
    ctx = click.Context(command)
    for field, param in engine_params(command).items():
        _, text = param.get_help_record(ctx)
        default = DEFAULTS[field]
        if isinstance(default, bool):
            default = param.secondary_opts[0] if not default else param.opts[0]
            default = default.lstrip("-")
        if default is None:
            assert "[default:" in text  # a default in words: "[default: 1.5 per CPU core]"
        else:
            assert f"[default: {default}" in text, text


BOUNDED = [o for o in ENGINE_OPTIONS if o.minimum is not None or o.maximum is not None]


@pytest.mark.parametrize("option", BOUNDED, ids=lambda o: o.flag)
def test_the_cli_bounds_are_reward_configs_own(option):
    step = 1 if option.value_type is int else 1e-9

    def accepted(value) -> bool:
        try:
            RewardConfig(**{option.field: option.value_type(value)})
        except ValueError:
            return False
        return True

    if option.minimum is not None:
        assert accepted(option.minimum) is not option.exclusive_minimum
        assert not accepted(option.minimum - step)
        assert accepted(option.minimum + (step if option.exclusive_minimum else 0))
    if option.maximum is not None:
        assert accepted(option.maximum) and not accepted(option.maximum + step)


def test_engine_args_read_back_by_serve_give_the_same_config():
    engine = {"mode": "binary", "timeout_per_test": 2.5, "memory_mb": 512, "salvage_code": True,
              "strict": False, "cache_size": 0, "all_pass_bonus": 0.5, "format_penalty": 0.25,
              "timeout_per_program": 30.0, "workers": 3}
    ctx = serve.make_context("serve", engine_args(engine))
    assert engine_config(ctx.params) == RewardConfig(**engine)
    assert engine_config(serve.make_context("serve", []).params) == RewardConfig()


def test_a_value_out_of_bounds_names_the_option(capsys):
    from acecoder_rl.cli.app import main

    assert main(["serve", "--memory-mb", "10"]) == 2
    assert "Invalid value for '--memory-mb': 10 is not in the range x>=64" in capsys.readouterr().err
