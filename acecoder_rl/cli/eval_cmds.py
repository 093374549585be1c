"""`acecoder-rl eval`: pass@1 / pass@k of a model, or of ready-made completions, on a benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from acecoder_rl.cli.engine_options import engine_config, engine_options

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; only read by type checkers here

#: Options that only make sense when a model generates (an error with --completions, not silently ignored).
_MODEL_ONLY = ("temperature", "top_p", "max_new_tokens", "batch_size", "seed", "backend", "prompt_style")
_SAMPLING_TEMPERATURE = 0.8


def _ks(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    from acecoder_rl.eval.passk import parse_ks

    if value is None:
        return None
    try:
        return parse_ks(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("eval")
@click.option(
    "--benchmark",
    required=True,
    metavar="NAME|PATH",
    help="humaneval, mbppplus (demo snapshot), acecode-sample, or any dataset in the AceCode row format "
    "(a .jsonl/.json/.parquet/.arrow file, a save_to_disk directory, a Hub name).",
)
@click.option("--model", metavar="PATH|HUB_NAME", help="Generate completions with this model.")
@click.option(
    "--completions",
    "completions_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Score these completions instead: JSON lines {"id", "completion"} or {"id", "completions": [...]}.',
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="With --completions: evaluate only the problems the file covers (default: all are required).",
)
@click.option(
    "-n",
    "n",
    type=click.IntRange(min=1),
    default=None,
    help="Samples per problem [default: 1 with --model; with --completions, the file's count].",
)
@click.option(
    "-k",
    "ks",
    callback=_ks,
    metavar="K1,K2,...",
    help="pass@k values to report, each <= n (pass@1 always) [default: 1,5,10,20,50,100 up to n].",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=None,
    help=f"0 = greedy [default: 0 when n = 1, else {_SAMPLING_TEMPERATURE}].",
)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Sequences per generate call (transformers backend; vLLM batches by itself).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--backend",
    type=click.Choice(["auto", "vllm", "transformers"]),
    default="auto",
    show_default=True,
    help="auto: vLLM when installed and a CUDA GPU is visible, else transformers.",
)
@click.option(
    "--prompt-style",
    type=click.Choice(["auto", "chat", "plain"]),
    default="auto",
    show_default=True,
    help="chat: the row's context_messages through the tokenizer's chat template; plain: the row's "
    "question as raw text; auto: chat when the tokenizer has a template.",
)
@engine_options(fields=("workers", "timeout_per_test", "memory_mb"))
@click.option(
    "-o",
    "--output-dir",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results.jsonl, summary.json and summary.md go.",
)
@click.pass_context
def eval_cmd(
    ctx: click.Context,
    benchmark: str,
    model: str | None,
    completions_file: Path | None,
    allow_partial: bool,
    n: int | None,
    ks: tuple[int, ...] | None,
    temperature: float | None,
    top_p: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    backend: str,
    prompt_style: str,
    workers: int | None,
    timeout_per_test: float,
    memory_mb: int,
    out_dir: Path,
) -> None:
    """pass@1 (greedy when n = 1) and unbiased pass@k on a benchmark.

    A sample is correct when all the problem's tests pass in the sandboxed reward engine.
    """
    from acecoder_rl.cli.data_cmds import _quiet_datasets
    from acecoder_rl.eval import GenerationSettings, evaluate

    if (model is None) == (completions_file is None):
        raise click.UsageError("give exactly one of --model and --completions")
    if completions_file is not None:
        given = [
            name for name in _MODEL_ONLY if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError("--" + given[0].replace("_", "-") + " only applies with --model")
    elif allow_partial:
        raise click.UsageError("--allow-partial only applies with --completions")
    generation = None
    if model is not None:
        samples = n or 1
        if temperature is None:
            temperature = 0.0 if samples == 1 else _SAMPLING_TEMPERATURE
        generation = GenerationSettings(
            n=samples,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=seed,
            prompt_style=prompt_style,
        )
    reward = engine_config({"workers": workers, "timeout_per_test": timeout_per_test, "memory_mb": memory_mb})
    with _quiet_datasets(), _Bars() as bars:
        summary = evaluate(
            benchmark,
            out_dir,
            model=model,
            completions_file=completions_file,
            allow_partial=allow_partial,
            generation=generation,
            n=n,
            ks=ks,
            backend=backend,
            reward=reward,
            progress=bars.track,
        )
    scores = ", ".join(f"pass@{k} {100 * summary[f'pass@{k}']:.2f}%" for k in summary["k"])
    click.echo(
        f"{summary['benchmark']}: {scores} over {summary['problems']} problems x {summary['n']} "
        f"sample(s) ({summary['correct_samples']} samples pass every test) -> {out_dir}/summary.md"
    )


class _Bars:
    """Rich progress bars, one per phase, drawn on stderr (gone when the command ends); none when stderr is no
    terminal, where rich would still end them with a blank line before any error message."""

    def __enter__(self) -> Self:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=console,
            disable=not console.is_terminal,
        )
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def track(self, label: str, total: int):
        task = self._progress.add_task(label, total=total)
        return lambda step: self._progress.advance(task, step)
