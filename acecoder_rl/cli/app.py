"""The ``acecoder-rl`` console script: a click group with one sub-group per concern."""
from __future__ import annotations

import sys

import click

from acecoder_rl import __version__
from acecoder_rl.errors import AcecoderError, UsageError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="acecoder-rl")
def cli() -> None:
    """RL fine-tuning of code LLMs with sandboxed, test-based rewards (AceCode-87K)."""


def _register_subcommands() -> None:
    # Each sub-group module owns its heavy imports inside its commands, so `--help` stays fast.
    from acecoder_rl.cli.data_cmds import data
    from acecoder_rl.cli.eval_cmds import eval_cmd
    from acecoder_rl.cli.report_cmds import report
    from acecoder_rl.cli.reward_cmds import reward
    from acecoder_rl.cli.serve_cmds import serve
    from acecoder_rl.cli.train_cmds import sweep, train

    for command in (data, reward, serve, train, sweep, eval_cmd, report):
        cli.add_command(command)


_register_subcommands()


# click >= 8.2 raises this for a group called without a subcommand; older click exits on its own.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Bad usage exits 2 with one line on stderr; user errors exit 1 with one line."""
    try:
        result = cli.main(args=argv, prog_name="acecoder-rl", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        # A group called without a subcommand: show its help (on stderr), as a usage error.
        click.echo(exc.ctx.get_help() if exc.ctx is not None else str(exc), err=True)
        return 2
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"acecoder-rl: error: {exc.format_message()}{hint}", err=True)
        return 2
    except UsageError as exc:
        click.echo(f"acecoder-rl: error: {exc}", err=True)
        return 2
    except AcecoderError as exc:
        click.echo(f"acecoder-rl: error: {exc}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("acecoder-rl: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"acecoder-rl: error: {exc.format_message()}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
