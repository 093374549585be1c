"""`acecoder-rl data ...`: validate, summarise and prepare AceCode-87K training data, and make new data with
AceCoder's pipeline (synthesize-tests, filter-tests, label, pairs).

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

from acecoder_rl.cli.engine_options import engine_config, engine_options
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
    """Load, validate, select and prepare AceCode-87K training data; make new data (AceCoder's pipeline)."""


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


# ------------------------------------------------------------------------------------------------------------
# The AceCoder pipeline: synthesize-tests -> filter-tests -> label -> pairs (acecoder_rl.data.pipeline).

#: Options that only mean something for an endpoint, or for a local model (an error with the other kind).
_ENDPOINT_ONLY = ("api_key_env", "concurrency", "max_retries", "request_timeout", "json_mode")
_LOCAL_ONLY = ("backend", "batch_size")


def _generation_options(max_new_tokens: int):
    """The backend and decoding options of the steps that generate (acecoder_rl.data.pipeline.generation)."""
    options = [
        click.option("--api-base", metavar="URL",
                     help="An OpenAI-compatible endpoint (https://api.openai.com/v1, http://HOST:8000/v1 for "
                          "a vLLM server); --model is then the model it serves."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, metavar="NAME",
                     help="Environment variable holding the endpoint's API key (unset: no key is sent)."),
        click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True,
                     help="Requests in flight at a time (endpoint)."),
        click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True,
                     help="Retries of a request answered 429 or 5xx, or timed out, with exponential back-off "
                          "(then the run stops; rerun to resume)."),
        click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=600.0,
                     show_default=True, help="Seconds per request (endpoint)."),
        click.option("--backend", type=click.Choice(["auto", "vllm", "transformers"]), default="auto",
                     show_default=True,
                     help="Local model: vLLM when installed and a CUDA GPU is visible, else transformers."),
        click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
                     help="Sequences per generate call (local transformers backend)."),
        click.option("--max-new-tokens", type=click.IntRange(min=1), default=max_new_tokens,
                     show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _backend_spec(ctx: click.Context, model: str, values: dict[str, Any]):
    """The BackendSpec for ``model``: an endpoint's with --api-base, else a local model's."""
    from acecoder_rl.data.pipeline import BackendSpec

    api_base = values["api_base"]
    if api_base is None:
        _reject_unused(ctx, True, "--api-base", _ENDPOINT_ONLY)
    else:
        _reject_unused(ctx, True, "a local model (no --api-base)", _LOCAL_ONLY)
    return BackendSpec(model=model, api_base=api_base, api_key_env=values["api_key_env"],
                       concurrency=values["concurrency"], max_retries=values["max_retries"],
                       request_timeout=values["request_timeout"], local_backend=values["backend"])


def _settings(values: dict[str, Any], *, n: int = 1, temperature: float = 0.0, top_p: float = 1.0):
    from acecoder_rl.eval import GenerationSettings

    return GenerationSettings(n=n, temperature=temperature, top_p=top_p,
                              max_new_tokens=values["max_new_tokens"], batch_size=values["batch_size"],
                              seed=values["seed"])


def _out_option(what: str):
    return click.option("-o", "--out", "out_dir", required=True,
                        type=click.Path(file_okay=False, path_type=Path), help=f"Output directory ({what}).")


def _input_option(function):
    return click.option("--dataset", required=True, metavar="PATH",
                        help="Input rows: a .jsonl file (errors name its lines) or anything else --dataset "
                             "accepts in 'data prepare'.")(function)


def _echo_counts(counts: dict[str, Any]) -> None:
    width = max(len(name) for name in counts)
    for name, value in counts.items():
        click.echo(f"{name + ':':{width + 1}} {value}")


@data.command("synthesize-tests")
@_input_option
@click.option("--model", help="The endpoint's model (with --api-base; AceCoder: gpt-4o-mini).")
@click.option("--local-model", metavar="PATH", help="Generate locally: a path, a Hub name or builtin:NAME.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.7, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--question-key", default="question", show_default=True, help="Seed field with the question.")
@click.option("--program-key", default="program", show_default=True,
              help="Seed field holding a program that answers it (kept in the output under this key).")
@click.option("--json-mode/--no-json-mode", default=True, show_default=True,
              help="Ask the endpoint for a JSON object (response_format); some servers refuse it.")
@_generation_options(max_new_tokens=8192)
@_out_option("synthesized.jsonl, rejected.jsonl, synthesize_stats.json")
@click.pass_context
def synthesize_tests_cmd(ctx: click.Context, dataset: str, model: str | None, local_model: str | None,
                         temperature: float, top_p: float, question_key: str, program_key: str,
                         json_mode: bool, out_dir: Path, **generation: Any) -> None:
    """Step 1: rewrite each seed as a one-function question with ~20 assert tests, asked of an LLM.

    Seeds are rows with an id and a question and/or a program. A reply that is not a JSON object with a
    question and at least one valid assert is skipped and counted (rejected.jsonl). Rerunning with the same
    -o skips the seeds already done.
    """
    from acecoder_rl.data.pipeline import SynthesisOptions, synthesize_tests

    if generation["api_base"] is not None:
        if model is None or local_model is not None:
            raise UsageError("with --api-base give --model (the endpoint's model), not --local-model")
        spec = _backend_spec(ctx, model, generation)
    else:
        if local_model is None or model is not None:
            raise UsageError("give --api-base URL --model M (an endpoint) or --local-model PATH")
        spec = _backend_spec(ctx, local_model, generation)
    with _quiet_datasets():
        stats = synthesize_tests(
            dataset, out_dir, spec, _settings(generation, temperature=temperature, top_p=top_p),
            SynthesisOptions(question_key=question_key, program_key=program_key, json_mode=json_mode),
            progress=sys.stderr.isatty())
    _echo_counts({"seeds": stats["seeds"], "rows written": stats["rows_written"],
                  "seeds rejected": stats["seeds_rejected"],
                  **{f"  {reason}": count for reason, count in stats["rejected_by_reason"].items()},
                  "tests": stats["tests"]})
    click.echo(f"wrote {out_dir / 'synthesized.jsonl'} and {out_dir / 'synthesize_stats.json'}")


@data.command("filter-tests")
@_input_option
@click.option("--reference-key", metavar="FIELD", help="Row field holding a reference solution.")
@click.option("--reference-model", metavar="M",
              help="Generate the reference instead, greedy: a local model, or the endpoint's with --api-base "
                   "(AceCoder: Qwen2.5-Coder-32B-Instruct).")
@click.option("--min-reference-pass", type=click.IntRange(min=0), default=3, show_default=True,
              help="Drop a row whose reference passes this many tests or fewer.")
@click.option("--min-tests", type=click.IntRange(min=1), default=5, show_default=True,
              help="Then drop a row left with fewer tests.")
@click.option("--prompt-tests", type=click.IntRange(min=0), default=2, show_default=True,
              help="Tests shown to the reference model with the question.")
@_generation_options(max_new_tokens=1024)
@engine_options(fields=("workers", "timeout_per_test", "memory_mb"))
@_out_option("train.jsonl, dropped.jsonl, filter_stats.json")
@click.pass_context
def filter_tests_cmd(ctx: click.Context, dataset: str, reference_key: str | None, reference_model: str | None,
                     min_reference_pass: int, min_tests: int, prompt_tests: int, workers: int | None,
                     timeout_per_test: float, memory_mb: int, out_dir: Path, **generation: Any) -> None:
    """Step 2: keep the tests a reference solution passes, and the rows that keep enough of them."""
    from acecoder_rl.data.pipeline import FilterRule, filter_tests

    if (reference_key is None) == (reference_model is None):
        raise UsageError("give exactly one of --reference-key and --reference-model")
    _reject_unused(ctx, reference_model is None, "--reference-model",
                   ("api_base", "prompt_tests", "max_new_tokens", "seed", *_ENDPOINT_ONLY, *_LOCAL_ONLY))
    spec = None if reference_model is None else _backend_spec(ctx, reference_model, generation)
    reward = engine_config({"workers": workers, "timeout_per_test": timeout_per_test, "memory_mb": memory_mb})
    with _quiet_datasets():
        stats = filter_tests(dataset, out_dir, reference_key=reference_key, reference_model=spec,
                             rule=FilterRule(min_reference_pass, min_tests), settings=_settings(generation),
                             prompt_tests=prompt_tests, reward=reward, progress=sys.stderr.isatty())
    _echo_counts({"rows in": stats["rows_in"], "rows kept": stats["rows_kept"],
                  **{f"  dropped, {reason}": count for reason, count in stats["dropped_by_reason"].items()},
                  "tests in": stats["tests_in"], "tests kept": stats["tests_kept"]})
    click.echo(f"wrote {out_dir / 'train.jsonl'} and {out_dir / 'filter_stats.json'}")


@data.command("label")
@_input_option
@click.option("--model", "models", multiple=True, required=True, metavar="M",
              help="A model to sample from (repeat for several): a local path, Hub name or builtin:NAME, or "
                   "the endpoint's model with --api-base. Its inferences are named by this value.")
@click.option("-n", "n", type=click.IntRange(min=1), default=16, show_default=True,
              help="Samples per question and model.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.7, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--prompt-tests", type=click.IntRange(min=0), default=2, show_default=True,
              help="Tests shown with the question (AceCoder: the first 2).")
@_generation_options(max_new_tokens=1024)
@engine_options(fields=("workers", "timeout_per_test", "memory_mb"))
@_out_option("labeled.jsonl, label_stats.json, samples/")
@click.pass_context
def label_cmd(ctx: click.Context, dataset: str, models: tuple[str, ...], n: int, temperature: float,
              top_p: float, prompt_tests: int, workers: int | None, timeout_per_test: float, memory_mb: int,
              out_dir: Path, **generation: Any) -> None:
    """Step 3: sample N programs per question from each model, score them, write AceCode-87K rows.

    Pass rates are measured on the rows' tests as given (after filter-tests: the filtered ones). Rerunning
    with the same -o resumes per model.
    """
    from acecoder_rl.data.pipeline import label

    specs = [_backend_spec(ctx, model, generation) for model in models]
    reward = engine_config({"workers": workers, "timeout_per_test": timeout_per_test, "memory_mb": memory_mb})
    with _quiet_datasets():
        settings = _settings(generation, n=n, temperature=temperature, top_p=top_p)
        stats = label(dataset, out_dir, specs, settings, prompt_tests=prompt_tests, reward=reward,
                      progress=sys.stderr.isatty())
    click.echo(f"rows: {stats['rows']}")
    for name, model in stats["models"].items():
        click.echo(f"  {name}: {model['samples']} samples, mean pass rate {model['pass_rate_mean']:.4f}, "
                   f"{model['all_pass_samples']} pass every test")
    click.echo(f"wrote {out_dir / 'labeled.jsonl'} and {out_dir / 'label_stats.json'}")


@data.command("pairs")
@_input_option
@click.option("--min-chosen", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="The chosen program's pass rate must be at least this.")
@click.option("--min-gap", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="The pass-rate gap must be at least this.")
@click.option("--strict", is_flag=True,
              help="The paper's rule: chosen and gap strictly above the thresholds (AceCoder's code: >=).")
@click.option("--model", "models", multiple=True, metavar="M",
              help="Pair only this model's inferences (repeat for several) [default: each model apart].")
@click.option("--prompt-tests", type=click.IntRange(min=0), default=1, show_default=True,
              help="Tests shown in the prompt with the question (AceCoder: the first 1).")
@click.option("--ascii-only/--allow-non-ascii", default=True, show_default=True,
              help="Skip questions that are not pure ASCII, as AceCoder did.")
@_out_option("pairs.jsonl, pairs_stats.json")
def pairs_cmd(dataset: str, min_chosen: float, min_gap: float, strict: bool, models: tuple[str, ...],
              prompt_tests: int, ascii_only: bool, out_dir: Path) -> None:
    """Step 4: reward-model preference pairs (OpenRLHF's format) from each question's scored inferences.

    Within one model's inferences: every pair with the higher pass rate >= --min-chosen, a gap >=
    --min-gap and the lower pass rate > 0, each (chosen, rejected) text pair once.
    """
    from acecoder_rl.data.pipeline import PairOptions, PairRule, build_pairs

    with _quiet_datasets():
        stats = build_pairs(dataset, out_dir, PairRule(min_chosen, min_gap, strict),
                            PairOptions(models=models, prompt_tests=prompt_tests, ascii_only=ascii_only))
    for model in stats["models_without_pairs"]:
        click.echo(f"warning: model {model!r} gave no pair (is the name right?)", err=True)
    _echo_counts({"rows": stats["rows"], "rows skipped (not ASCII)": stats["rows_not_ascii"],
                  "candidate pairs": stats["candidate_pairs"],
                  **{f"  failed {rule}": count for rule, count in stats["failed"].items()},
                  "  identical texts": stats["identical_texts"], "  repeated pairs": stats["repeated_pairs"],
                  "pairs": stats["pairs"], "rows with pairs": stats["rows_with_pairs"]})
    click.echo(f"wrote {out_dir / 'pairs.jsonl'} and {out_dir / 'pairs_stats.json'}")
