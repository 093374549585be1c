"""`acecoder-rl reward ...`: score completions with the sandboxed reward engine."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click

from acecoder_rl.cli.engine_options import engine_config, engine_options
from acecoder_rl.errors import AcecoderError
from acecoder_rl.jsonl import read_objects, to_json


@click.group()
def reward() -> None:
    """Score completions against their tests in the sandboxed reward engine."""


def _read_items(path: Path, inferences: bool) -> Iterator[tuple[int, dict]]:
    """Yield (line number, item) with item = {"completion", "test_cases", ...carried fields}."""
    for lineno, row in read_objects(path):
        tests = row.get("test_cases")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise AcecoderError(f"{path}:{lineno}: field 'test_cases' must be a non-empty list of strings")
        if inferences:
            infs = row.get("inferences")
            if not isinstance(infs, list):
                raise AcecoderError(f"{path}:{lineno}: --inferences needs an AceCode row with an 'inferences' list")
            for k, inf in enumerate(infs):
                if not isinstance(inf, dict) or not isinstance(inf.get("completion"), str):
                    raise AcecoderError(f"{path}:{lineno}: inferences[{k}].completion must be a string")
                yield lineno, {
                    "id": f"{row.get('id', lineno)}#{inf.get('completion_id', k)}",
                    "model_name": inf.get("model_name"), "recorded_pass_rate": inf.get("pass_rate"),
                    "completion": inf["completion"], "test_cases": tests,
                }
        else:
            if not isinstance(row.get("completion"), str):
                raise AcecoderError(f"{path}:{lineno}: field 'completion' must be a string "
                                    "(for AceCode-87K rows use --inferences)")
            yield lineno, row


@reward.command("score")
@click.argument("input_path", metavar="INPUT.jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output JSONL: one line per program, same order, input fields plus the result fields.")
@engine_options
@click.option("--inferences", is_flag=True,
              help="Input rows are AceCode-87K rows: score every recorded inference (one output line each).")
def score_cmd(input_path: Path, output_path: Path, inferences: bool, **engine: object) -> None:
    """Score INPUT.jsonl lines {"id", "completion", "test_cases", ...}."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from acecoder_rl.reward import RewardEngine

    config = engine_config(engine)
    items = [item for _, item in _read_items(input_path, inferences)]  # validates every line before any work
    if not items:
        raise AcecoderError(f"{input_path}: no programs to score")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    statuses: Counter[str] = Counter()
    pass_rates: list[float] = []
    started = time.monotonic()
    with RewardEngine(config) as engine, output_path.open("w", encoding="utf-8") as out, Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True,
    ) as progress:
        task = progress.add_task("score", total=len(items))
        results = engine.imap((it["completion"], it["test_cases"]) for it in items)
        for item, result in zip(items, results):
            out.write(to_json({**item, **result.to_dict()}) + "\n")
            statuses[result.status.value] += 1
            pass_rates.append(result.pass_rate)
            progress.advance(task)
        start_s, cache_hits, fallbacks = engine.start_seconds, engine.stats["cache_hits"], engine.stats["fallback_tests"]
    elapsed = time.monotonic() - started
    click.echo(f"scored {len(items)} programs in {elapsed:.2f} s ({len(items) / elapsed:.1f} programs/s, "
               f"engine start {start_s:.2f} s) -> {output_path}")
    click.echo(f"pass rate mean {sum(pass_rates) / len(pass_rates):.4f}; statuses: "
               + ", ".join(f"{k} {v}" for k, v in statuses.most_common())
               + f"; cache hits {cache_hits}; in-child fallback tests {fallbacks}")
