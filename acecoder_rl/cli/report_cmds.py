"""`acecoder-rl report`: curves and a comparison table from training logs (local backend or OpenRLHF)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument(
    "run_dirs", nargs=-1, required=True, metavar="RUN_DIR [RUN_DIR ...]", type=click.Path(path_type=Path)
)
@click.option(
    "-o",
    "--output-dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where report.md, report.json and the PNGs go [default: RUN_DIR/report for one run "
    "directory, ./report for several].",
)
@click.option(
    "--last",
    "last_k",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="The table's 'mean of last K' column averages this many logged values.",
)
def report(run_dirs: tuple[Path, ...], out_dir: Path | None, last_k: int) -> None:
    """Plot reward, pass rate, KL, response length and program statuses of training runs, and compare them.

    RUN_DIR holds the local backend's metrics.jsonl, or OpenRLHF TensorBoard event files
    (--logger.tensorboard_dir; every sub-directory with event files is one run).
    """
    from acecoder_rl.report import build_report

    if out_dir is None:
        out_dir = run_dirs[0] / "report" if len(run_dirs) == 1 else Path("report")
    result = build_report(list(run_dirs), out_dir, last_k=last_k)
    for run in result["runs"]:
        reward = run["metrics"].get("reward")
        passed = run["metrics"].get("pass_rate")
        click.echo(
            f"{run['name']}: {run['logged_steps']} steps"
            + (f", final reward {reward['final']:.4f}" if reward else "")
            + (f", final pass rate {passed['final']:.4f}" if passed else "")
        )
    click.echo(f"report -> {out_dir / 'report.md'}")
