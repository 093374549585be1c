"""`acecoder-rl train` and `acecoder-rl sweep`: run configs on a Ray cluster (OpenRLHF) or on this machine
(OpenRLHF in the foreground, or TRL with ``backend: local``)."""
from __future__ import annotations

from pathlib import Path

import click

from acecoder_rl.errors import AcecoderError

_ADDRESS_HELP = ("Ray dashboard address, http://HEAD:8265 [default: $RAY_ADDRESS, else the config's "
                 "cluster.address, else run in the foreground here].")


@click.command("train")
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default=None, metavar="M",
              help="Override model.pretrain (Hub name, path, or builtin:NAME).")
@click.option("--dataset", default=None, metavar="D",
              help="Override data.path (sample, a prepared train.jsonl, a Hub name, builtin:quickstart...).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="backend: local: the run directory [default: runs/<name>-<timestamp>].")
@click.option("--dry-run", is_flag=True, help="Print the trainer command or settings; start nothing.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint (OpenRLHF: under "
                                             "checkpoints.save_path; local: in the run directory).")
@click.option("--address", default=None, metavar="RAY_ADDRESS", help=_ADDRESS_HELP)
def train(config_path: Path, model: str | None, dataset: str | None, output_dir: Path | None, dry_run: bool,
          resume: bool, address: str | None) -> None:
    """Train with the run config CONFIG (YAML; see configs/).

    The config is validated first (unknown keys, GPU layouts that do not add up, batch sizes that do not
    divide, ... are errors naming the file and key).

    \b
    backend: openrlhf: with an address, the run is submitted as a Ray job whose working directory carries
    the reward plug-in and the prepared data, and its logs stream here until it ends; without one it runs in
    the foreground. A reward service the config asks for (reward.service.start) runs for the duration of the
    run. Ctrl-C stops the job.

    \b
    backend: local: TRL trains on this machine (CPU or one GPU) with a sandboxed reward engine; the run
    directory gets metrics.jsonl, reward_curve.png, TensorBoard logs, checkpoints and the final model.
    """
    from acecoder_rl.train.backends import run
    from acecoder_rl.train.config import run_config_from_layers
    from acecoder_rl.train.layered_yaml import load_layered, merge_into, nested

    layered = load_layered(config_path)
    for key, value, option in (("model.pretrain", model, "--model"), ("data.path", dataset, "--dataset")):
        if value is not None:
            merge_into(layered, nested(key, value), Path(option))
    cfg = run_config_from_layers(layered)
    run(cfg, address=address, resume=resume, dry_run=dry_run, output_dir=output_dir, echo=click.echo)


@click.command("sweep")
@click.argument("grid_path", metavar="GRID", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the run configs are written [default: runs/sweeps/<GRID name>].")
@click.option("--dry-run", is_flag=True, help="Also print every run's command and runtime env.")
@click.option("--launch", is_flag=True, help="Run every config in turn (each as `acecoder-rl train` would).")
@click.option("--address", default=None, metavar="RAY_ADDRESS", help=_ADDRESS_HELP)
def sweep(grid_path: Path, out_dir: Path | None, dry_run: bool, launch: bool, address: str | None) -> None:
    """Expand the ablation grid GRID (YAML; see configs/ablations/) into named run configs.

    \b
    The configs are written to the output directory and their names printed. --launch then runs them one
    after another (a run that fails is reported and the next one starts; the command exits 1 if any failed).
    """
    from acecoder_rl.train.backends import run
    from acecoder_rl.train.sweep import expand_grid, write_runs

    if dry_run and launch:
        raise click.UsageError("--dry-run and --launch exclude each other")
    runs = expand_grid(grid_path)
    out_dir = out_dir or Path("runs") / "sweeps" / grid_path.stem
    for written in write_runs(runs, grid_path, out_dir):
        click.echo(str(written))
    if dry_run:
        for item in runs:
            run(item.config, address=address, dry_run=True, echo=click.echo)
    if not launch:
        return
    failed = []
    for item in runs:
        click.echo(f"acecoder-rl: sweep run {item.name}", err=True)
        try:
            run(item.config, address=address)
        except AcecoderError as exc:
            click.echo(f"acecoder-rl: run {item.name} failed: {exc}", err=True)
            failed.append(item.name)
    if failed:
        raise AcecoderError(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}")
