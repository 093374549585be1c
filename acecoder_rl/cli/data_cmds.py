"""`acecoder-rl data ...`: validate, summarise and prepare AceCode-87K training data.

The commands are thin: each parses options, calls :mod:`acecoder_rl.data` and prints what it returned. The
data package (and through it ``datasets``) is imported inside the commands so that ``acecoder-rl --help``
stays fast.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from acecoder_rl.errors import AcecoderError, UsageError

DATASET_HELP = (
    "'sample', 'humaneval', 'mbppplus', a .jsonl/.json/.parquet/.arrow file, a save_to_disk directory, "
    "or a Hub name."
)
_SHOWN_ERRORS = 20


def _dataset_option(function):
    return click.option(
        "--dataset", "dataset", default="sample", show_default=True, metavar="SOURCE", help=DATASET_HELP
    )(function)


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide ``datasets``' tqdm bars when stderr is not a terminal (logs, CI); restore the setting after."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not sys.stderr.isatty():
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _models(value: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in value.split(",") if m.strip())
    if not models:
        raise click.BadParameter("give at least one model name, comma-separated", param_hint="--hard-models")
    return models


@click.group()
def data() -> None:
    """Load, validate, select and prepare AceCode-87K training data."""


@data.command()
@_dataset_option
@click.option(
    "--subset",
    type=click.Choice(["all", "hard"]),
    default="all",
    show_default=True,
    help="'hard': AceCoder's hard subset (low mean, high spread of reference-model pass rates).",
)
@click.option(
    "--hard-models",
    default="qwen_coder_2.5,llama3.1_instruct",
    show_default=True,
    metavar="M1,M2",
    help="Inference model_name values whose pass rates select the hard subset.",
)
@click.option(
    "--mean-percentile",
    type=click.FloatRange(0, 100),
    default=50.0,
    show_default=True,
    help="Keep rows whose mean pass rate is at or below this percentile.",
)
@click.option(
    "--std-percentile",
    type=click.FloatRange(0, 100),
    default=50.0,
    show_default=True,
    help="Then keep rows whose pass-rate std is at or above this percentile.",
)
@click.option(
    "--decontaminate/--no-decontaminate",
    default=True,
    show_default=True,
    help="Drop rows whose question overlaps HumanEval / MBPP+ prompts.",
)
@click.option(
    "--ngram",
    type=click.IntRange(min=1),
    default=13,
    show_default=True,
    help="Word n-gram length for decontamination.",
)
@click.option(
    "--overlap-threshold",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Drop a row when at least this fraction of its n-grams is benchmark text (0: any shared n-gram).",
)
@click.option(
    "--system-prompt",
    type=click.Choice(["none", "r1"]),
    default="none",
    show_default=True,
    help="'r1': prepend a system prompt asking for <think>...</think><answer>...</answer>.",
)
@click.option(
    "--on-error",
    type=click.Choice(["skip", "fail"]),
    default="skip",
    show_default=True,
    help="Malformed rows and JSONL lines: skip them (counted in prepare_stats.json) or stop at the first.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory for train.jsonl, train.parquet and prepare_stats.json.",
)
@click.pass_context
def prepare(
    ctx: click.Context,
    dataset: str,
    subset: str,
    hard_models: str,
    mean_percentile: float,
    std_percentile: float,
    decontaminate: bool,
    ngram: int,
    overlap_threshold: float,
    system_prompt: str,
    on_error: str,
    out_dir: Path,
) -> None:
    """Validate, select and decontaminate rows, then write OpenRLHF-ready training files to OUT."""
    from acecoder_rl.data import PrepareOptions, UnmatchedModelWarning
    from acecoder_rl.data import prepare as run_prepare

    _reject_unused(
        ctx, subset != "hard", "--subset hard", ("hard_models", "mean_percentile", "std_percentile")
    )
    _reject_unused(ctx, not decontaminate, "--decontaminate", ("ngram", "overlap_threshold"))
    options = PrepareOptions(
        subset=subset,
        hard_models=_models(hard_models),
        mean_percentile=mean_percentile,
        std_percentile=std_percentile,
        decontaminate=decontaminate,
        ngram=ngram,
        overlap_threshold=overlap_threshold,
        system_prompt=system_prompt,
        on_error=on_error,
    )
    with _quiet_datasets(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmatchedModelWarning)  # printed below from the report, once
        result = run_prepare(dataset, out_dir, options, progress=sys.stderr.isatty())
    if result.reused:
        click.echo(
            f"{out_dir} is up to date: it holds a complete result for this input and these options; "
            "nothing was redone."
        )
    _print_prepare_summary(result.stats, result.paths)


def _reject_unused(ctx: click.Context, unused: bool, needs: str, params: tuple[str, ...]) -> None:
    """Bad usage: an option given on the command line that the chosen mode would silently ignore."""
    if not unused:
        return
    for name in params:
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} only applies with {needs}")


def _echo_more(total: int, what: str) -> None:
    if total > _SHOWN_ERRORS:
        click.echo(f"  ... {total - _SHOWN_ERRORS} more {what} in prepare_stats.json")


def _print_prepare_summary(stats: dict[str, Any], paths: dict[str, Path]) -> None:
    counts = stats["counts"]
    click.echo(f"rows in:                 {counts['rows_in']}")
    click.echo(f"skipped (malformed):     {counts['skipped_malformed']}")
    # ``.get``: a prepare_stats.json written before malformed lines were reported has no such list.
    skipped = [f"{line['file']}:{line['line']}: {line['message']}"
               for line in stats["validation"].get("skipped_lines", [])]
    for problem in stats["validation"]["skipped_rows"]:
        where = f"row {problem['id']!r}" if problem["id"] is not None else f"row #{problem['index']}"
        first = problem["errors"][0]
        skipped.append(f"{where}: {first['field']}: {first['kind']}: {first['message']}")
    for line in skipped[:_SHOWN_ERRORS]:
        click.echo(f"  {line}")
    _echo_more(len(skipped), "skipped rows")
    click.echo(f"after validation:        {counts['after_validation']}")
    hard = stats["hard_subset"]
    if hard is not None:
        for model in hard["unmatched_models"]:
            click.echo(f"warning: hard subset model {model!r} matches no inference in the data", err=True)
        click.echo(
            f"  rows without inferences from {', '.join(hard['models'])}: {hard['rows_without_inferences']}"
        )
        click.echo(
            f"  mean pass rate <= {hard['mean_threshold']:.4f} (p{hard['mean_percentile']:g}): "
            f"{hard['rows_after_mean']}"
        )
        click.echo(
            f"  pass-rate std >= {hard['std_threshold']:.4f} (p{hard['std_percentile']:g}): "
            f"{hard['rows_kept']}"
        )
        click.echo(f"after hard subset:       {counts['after_hard_subset']}")
    contamination = stats["decontamination"]
    if contamination is not None:
        click.echo(
            f"after decontamination:   {counts['after_decontamination']} "
            f"({contamination['rows_dropped']} dropped; {contamination['n']}-grams, "
            f"threshold {contamination['threshold']:g})"
        )
        for dropped in contamination["dropped"][:_SHOWN_ERRORS]:
            click.echo(
                f"  {dropped['id']}: matches {dropped['benchmark_id']} (overlap {dropped['overlap']:.2f})"
            )
        _echo_more(len(contamination["dropped"]), "dropped rows")
    click.echo(f"rows out:                {counts['rows_out']}")
    for path in paths.values():
        click.echo(f"wrote {path}")


@data.command()
@_dataset_option
def validate(dataset: str) -> None:
    """Check every row (and JSONL line) of a dataset; list the malformed ones and exit 1 if there are any."""
    from acecoder_rl.data import LineError, load_acecode, validate_rows
    from acecoder_rl.data.loading import MALFORMED_LINE

    bad_lines: list[LineError] = []
    with _quiet_datasets():
        loaded = load_acecode(dataset, bad_lines=bad_lines)
        _, report = validate_rows(loaded, "skip", bad_lines=bad_lines)
    problems = report.problems()
    for problem in problems[:_SHOWN_ERRORS]:
        click.echo(problem)
    if len(problems) > _SHOWN_ERRORS:
        click.echo(f"... and {len(problems) - _SHOWN_ERRORS} more problems")
    if report.rows_skipped:
        kinds: dict[str, int] = {MALFORMED_LINE: len(report.bad_lines)} if report.bad_lines else {}
        for error in (error for row_errors in report.skipped.values() for error in row_errors):
            kinds[error.kind.value] = kinds.get(error.kind.value, 0) + 1
        summary = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))
        raise AcecoderError(
            f"{report.rows_skipped} of {report.rows_in} rows in {dataset!r} are malformed ({summary})"
        )
    click.echo(f"{report.rows_in} rows in {dataset!r}: all valid")


@data.command()
@_dataset_option
@click.option(
    "-o",
    "--out",
    "png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a PNG with the pass-rate and tests-per-row histograms.",
)
def stats(dataset: str, png: Path | None) -> None:
    """Counts by source, tests per row and inference pass-rate histograms (valid rows only)."""
    from acecoder_rl.data import LineError, compute_stats, load_acecode, plot_stats, validate_rows

    bad_lines: list[LineError] = []
    with _quiet_datasets():
        valid, report = validate_rows(load_acecode(dataset, bad_lines=bad_lines), "skip", bad_lines=bad_lines)
    if report.rows_skipped:
        click.echo(f"note: {report.rows_skipped} malformed rows left out (see 'acecoder-rl data validate')")
    result = compute_stats(valid)
    click.echo(f"rows: {result.rows}")
    for source, count in result.by_source.items():
        click.echo(f"  {source}: {count}")
    click.echo(
        f"tests per row: min {result.tests_per_row_min}, mean {result.tests_per_row_mean:.2f}, "
        f"max {result.tests_per_row_max}"
    )
    click.echo(f"inferences: {result.inferences}")
    if result.inferences:
        edges = result.pass_rate_bins
        header = " ".join(f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(len(edges) - 1))
        width = max(len(name) for name in result.pass_rate_histograms)
        click.echo("pass-rate histogram (inferences per bin):")
        click.echo(f"  {'model':{width}} {header}")
        for name, counts in result.pass_rate_histograms.items():
            click.echo(f"  {name:{width}} " + " ".join(f"{count:7d}" for count in counts))
    if png is not None:
        click.echo(f"wrote {plot_stats(result, png)}")
