"""The files an evaluation leaves behind: ``results.jsonl``, ``summary.json`` and ``summary.md``.

Scores are fractions in [0, 1] in JSON and percentages in Markdown. ``pass@k`` of the benchmark is the mean
over problems of each problem's unbiased estimate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acecoder_rl.eval.scoring import ProblemResult
from acecoder_rl.jsonl import to_json
from acecoder_rl.reward import ProgramStatus

_NOTES = {
    "mbppplus": "MBPP+ here is a pre-release evalplus snapshot (399 tasks), demo data only: never report "
    "these scores as MBPP+ results.",
}


def summarize(
    results: Sequence[ProblemResult],
    ks: Sequence[int],
    *,
    benchmark: str,
    problems_in_benchmark: int,
    model: str | None,
    completions_file: str | None,
    settings: dict[str, Any],
    timing_s: dict[str, float],
) -> dict[str, Any]:
    """The ``summary.json`` object (see the module docstring for the units)."""
    samples = [result for problem in results for result in problem.results]
    statuses = Counter(result.status.value for result in samples)
    return {
        "benchmark": benchmark,
        "model": model,
        "completions_file": completions_file,
        "problems": len(results),
        "problems_in_benchmark": problems_in_benchmark,
        "partial": len(results) < problems_in_benchmark,
        "n": results[0].n,
        "k": list(ks),
        **{f"pass@{k}": sum(problem.pass_at(k) for problem in results) / len(results) for k in ks},
        "samples": len(samples),
        "correct_samples": sum(problem.c for problem in results),
        "problems_solved": sum(problem.c > 0 for problem in results),
        "test_pass_rate_mean": sum(result.pass_rate for result in samples) / len(samples),
        "statuses": {status.value: statuses.get(status.value, 0) for status in ProgramStatus},
        "settings": settings,
        "timing_s": {key: round(value, 3) for key, value in timing_s.items()},
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    """``summary.md``: the scores table, the sample counts, the program statuses and the settings."""
    ks = summary["k"]
    scored_by = summary["model"] or f"completions: {summary['completions_file']}"
    lines = [
        f"# Evaluation: {summary['benchmark']}",
        "",
        "| benchmark | model | problems | n | " + " | ".join(f"pass@{k}" for k in ks) + " |",
        "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in ks) + " |",
        f"| {summary['benchmark']} | {scored_by} | {summary['problems']} | {summary['n']} | "
        + " | ".join(f"{100 * summary[f'pass@{k}']:.2f}%" for k in ks)
        + " |",
        "",
        (
            f"- samples: {summary['samples']}, passing every test: {summary['correct_samples']}; problems "
            f"with at least one such sample: {summary['problems_solved']} of {summary['problems']}"
        ),
        f"- mean per-test pass rate over samples: {100 * summary['test_pass_rate_mean']:.2f}%",
    ]
    if summary["partial"]:
        lines.append(
            f"- PARTIAL: {summary['problems']} of the benchmark's {summary['problems_in_benchmark']} "
            "problems were evaluated"
        )
    if summary["benchmark"] in _NOTES:
        lines.append(f"- {_NOTES[summary['benchmark']]}")
    lines += ["", "| program status | samples |", "| --- | ---: |"]
    lines += [f"| {status} | {count} |" for status, count in summary["statuses"].items() if count]
    lines += [
        "",
        "Settings: " + ", ".join(f"{key}={value}" for key, value in summary["settings"].items()),
        "",
    ]
    return "\n".join(lines)


def write_outputs(out_dir: Path, results: Sequence[ProblemResult], summary: dict[str, Any]) -> None:
    """Write the three files into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as handle:
        for problem in results:
            handle.write(to_json(problem.to_dict(summary["k"])) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    markdown = summary_markdown(summary)
    # For people: a lone surrogate (from a file name that is not UTF-8) is written as its escape, \udcff.
    (out_dir / "summary.md").write_text(markdown, encoding="utf-8", errors="backslashreplace")
