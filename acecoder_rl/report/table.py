"""The numbers that compare runs: per metric, its final value, its best value (and step), and the mean of its
last ``k`` logged values (less noisy than the final value alone)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from acecoder_rl.report.runs import METRICS, Run, Series

#: Metrics shown in the comparison table (all of them are in ``report.json``).
TABLE_METRICS = ("reward", "pass_rate")
_LOWER_IS_BETTER = frozenset(
    {"kl", "reward_std", *(m for m in METRICS if m.startswith("status_") and m != "status_ok")}
)


@dataclass(frozen=True)
class MetricStats:
    final: float
    final_step: int
    best: float
    best_step: int
    last_k_mean: float
    points: int


def metric_stats(metric: str, series: Series, last_k: int) -> MetricStats:
    """Stats of one series; "best" is the highest value (lowest for KL, reward spread and failure statuses),
    the earliest step on ties."""
    pick = min if metric in _LOWER_IS_BETTER else max
    best = pick(series.values)
    best_step = series.steps[series.values.index(best)]
    tail = series.values[-last_k:]
    return MetricStats(
        series.values[-1], series.steps[-1], best, best_step, sum(tail) / len(tail), len(series.values)
    )


def run_summary(run: Run, last_k: int) -> dict[str, Any]:
    """The ``report.json`` entry of one run."""
    return {
        "name": run.name,
        "backend": run.backend,
        "source": str(run.source),
        "last_step": run.last_step,
        "logged_steps": run.logged_steps,
        "metrics": {
            metric: asdict(metric_stats(metric, run.series[metric], last_k))
            for metric in METRICS
            if metric in run.series
        },
        "not_logged": [metric for metric in METRICS if metric not in run.series],
    }


def comparison_markdown(summaries: list[dict[str, Any]], last_k: int) -> list[str]:
    """The Markdown comparison table (one row per run)."""
    header = ["run", "backend", "last step"]
    for metric in TABLE_METRICS:
        label = metric.replace("_", " ")
        header += [f"{label} final", f"{label} best (step)", f"{label} mean of last {last_k}"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in header[2:]) + " |",
    ]
    for summary in summaries:
        cells = [summary["name"].replace("|", "\\|"), summary["backend"], str(summary["last_step"])]
        for metric in TABLE_METRICS:
            stats = summary["metrics"].get(metric)
            if stats is None:
                cells += ["n/a"] * 3
            else:
                cells += [
                    f"{stats['final']:.4f}",
                    f"{stats['best']:.4f} ({stats['best_step']})",
                    f"{stats['last_k_mean']:.4f}",
                ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
