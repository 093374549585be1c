"""``acecoder-rl report``: training logs in; ``report.md``, ``report.json`` and PNG curves out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acecoder_rl.errors import UsageError
from acecoder_rl.report.plots import plot_comparison, plot_run
from acecoder_rl.report.load import load_runs
from acecoder_rl.report.runs import Run, slug
from acecoder_rl.report.table import comparison_markdown, run_summary

COMPARISON_PLOT = "comparison.png"
_DETAIL_METRICS = ("all_pass_rate", "kl", "response_length", "learning_rate")


def build_report(run_dirs: list[Path], out_dir: Path, *, last_k: int = 10) -> dict[str, Any]:
    """Read every run in ``run_dirs``, write the report into ``out_dir``; return ``report.json``'s object."""
    if last_k < 1:
        raise UsageError(f"--last must be at least 1, got {last_k}")
    runs = load_runs(run_dirs)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = [run_summary(run, last_k) for run in runs]
    for run, summary, file in zip(runs, summaries, _plot_files(runs), strict=True):
        plot_run(run, out_dir / file)
        summary["plot"] = file
    comparison = None
    if len(runs) > 1:
        comparison = COMPARISON_PLOT
        plot_comparison(runs, out_dir / comparison)
    report = {"last_k": last_k, "comparison_plot": comparison, "runs": summaries}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(_markdown(report), encoding="utf-8")
    return report


def _plot_files(runs: list[Run]) -> list[str]:
    """``run_<slug>.png`` per run; a numeric suffix where two names give the same slug."""
    files: list[str] = []
    for run in runs:
        base, count = f"run_{slug(run.name)}", 1
        file = f"{base}.png"
        while file in files:
            count += 1
            file = f"{base}-{count}.png"
        files.append(file)
    return files


def _markdown(report: dict[str, Any]) -> str:
    last_k, summaries = report["last_k"], report["runs"]
    lines = [
        "# Training report",
        "",
        (
            f'{len(summaries)} run(s). "best" is the highest value and the step it was logged at; the last '
            f"column is the mean of the last {last_k} logged values."
        ),
        "",
    ]
    lines += comparison_markdown(summaries, last_k)
    if report["comparison_plot"]:
        lines += ["", f"![all runs]({report['comparison_plot']})"]
    for summary in summaries:
        metrics = summary["metrics"]
        lines += [
            "",
            f"## {summary['name']}",
            "",
            (
                f"- {summary['backend']} logs: `{summary['source']}`; {summary['logged_steps']} logged "
                f"steps, last step {summary['last_step']}"
            ),
        ]
        for metric in _DETAIL_METRICS:
            if metric in metrics:
                lines.append(
                    f"- {metric.replace('_', ' ')}: final {metrics[metric]['final']:.4g}, mean of last "
                    f"{last_k} {metrics[metric]['last_k_mean']:.4g}"
                )
        statuses = {
            m.removeprefix("status_"): s["final"]
            for m, s in metrics.items()
            if m.startswith("status_") and s["final"]
        }
        if statuses:
            lines.append(
                "- program statuses at the last step (others 0 or not logged): "
                + ", ".join(f"{status} {value:.1%}" for status, value in statuses.items())
            )
        if summary["not_logged"]:
            lines.append("- not logged: " + ", ".join(summary["not_logged"]))
        lines += ["", f"![{summary['name']}]({summary['plot']})"]
    return "\n".join(lines) + "\n"
