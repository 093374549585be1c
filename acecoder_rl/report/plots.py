"""Training curves as PNG files: one figure per run, and one with every run overlaid when there are several.

Drawn on bare matplotlib ``Figure`` objects (Agg), so nothing touches pyplot's global state. A metric a run
did not log gets an empty panel that says so, rather than a silently missing panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from acecoder_rl.report.runs import Run
from acecoder_rl.reward.results import ProgramStatus, status_metric

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_TITLES = {
    "reward": "reward (mean ± std)",
    "pass_rate": "test pass rate (dashed: all tests pass)",
    "kl": "KL",
    "response_length": "response length (tokens)",
    "statuses": "program statuses (fraction of samples)",
    "learning_rate": "learning rate",
}
_RUN_PANELS = ("reward", "pass_rate", "kl", "response_length", "statuses", "learning_rate")
_COMPARE_TITLES = {
    "reward": "reward",
    "pass_rate": "test pass rate",
    "kl": "KL",
    "response_length": "response length (tokens)",
}
_STATUS_COLORS: dict[ProgramStatus, str] = {
    ProgramStatus.OK: "#4c9a2a",
    ProgramStatus.NO_CODE: "#9e9e9e",
    ProgramStatus.SYNTAX_ERROR: "#e6a117",
    ProgramStatus.RUNTIME_ERROR: "#d9534f",
    ProgramStatus.TIMEOUT: "#5b7fd6",
    ProgramStatus.CRASHED: "#8e44ad",
    ProgramStatus.MEMORY: "#6d4c41",
    ProgramStatus.SANDBOX_ERROR: "#000000",
    ProgramStatus.TOO_LARGE: "#f48fb1",
    ProgramStatus.INVALID_TESTS: "#00838f",
}
"""One colour per status (tests/report draws every status: one without a colour fails there)."""


def plot_run(run: Run, path: Path) -> None:
    """``path``: the run's reward, pass rate, KL, response length, statuses and learning rate."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 8), layout="constrained")
    figure.suptitle(f"{run.name} ({run.backend})")
    for axes, panel in zip(figure.subplots(2, 3).flat, _RUN_PANELS, strict=True):
        axes.set_title(_TITLES[panel], fontsize=10)
        axes.set_xlabel("step")
        if panel == "statuses":
            _statuses(axes, run)
        elif not _line(axes, run, panel, label=None):
            _not_logged(axes)
    figure.savefig(path, dpi=90)


def plot_comparison(runs: list[Run], path: Path) -> None:
    """``path``: reward, pass rate, KL and response length of every run, overlaid."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 8), layout="constrained")
    figure.suptitle(f"{len(runs)} runs")
    for axes, panel in zip(figure.subplots(2, 2).flat, _COMPARE_TITLES, strict=True):
        axes.set_title(_COMPARE_TITLES[panel], fontsize=10)
        axes.set_xlabel("step")
        drawn = [_line(axes, run, panel, label=run.name, band=False, companion=False) for run in runs]
        if any(drawn):
            axes.legend(fontsize=8)
        else:
            _not_logged(axes)
    figure.savefig(path, dpi=90)


def _line(
    axes: Axes, run: Run, metric: str, *, label: str | None, band: bool = True, companion: bool = True
) -> bool:
    """Draw ``metric`` (with the reward's std band and the all-pass rate where asked); False if not logged."""
    series = run.series.get(metric)
    if series is None:
        return False
    (line,) = axes.plot(series.steps, series.values, label=label, linewidth=1.4)
    std = run.series.get("reward_std")
    if metric == "reward" and band and std is not None:
        spread = dict(zip(std.steps, std.values))
        steps = [s for s in series.steps if s in spread]
        mean = dict(zip(series.steps, series.values))
        axes.fill_between(
            steps,
            [mean[s] - spread[s] for s in steps],
            [mean[s] + spread[s] for s in steps],
            alpha=0.2,
            color=line.get_color(),
            linewidth=0,
        )
    all_pass = run.series.get("all_pass_rate")
    if metric == "pass_rate" and companion and all_pass is not None:
        axes.plot(all_pass.steps, all_pass.values, linestyle="--", color=line.get_color(), linewidth=1.2)
    if metric == "learning_rate":
        axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    return True


def _statuses(axes: Axes, run: Run) -> None:
    """Stacked fractions of each program status per step (a status not logged at a step counts 0; statuses
    that are 0 throughout are left out of the stack and its legend)."""
    logged = [
        status
        for status in ProgramStatus
        if status_metric(status) in run.series and any(run.series[status_metric(status)].values)
    ]
    if not logged:
        _not_logged(axes)
        return
    steps = sorted({step for status in logged for step in run.series[status_metric(status)].steps})
    layers = []
    for status in logged:
        series = run.series[status_metric(status)]
        values = dict(zip(series.steps, series.values))
        layers.append([values.get(step, 0.0) for step in steps])
    axes.stackplot(steps, layers, labels=[status.value for status in logged],
                   colors=[_STATUS_COLORS[status] for status in logged], alpha=0.85)
    axes.set_ylim(0, max(1.0, max(sum(column) for column in zip(*layers))))
    axes.legend(fontsize=7, loc="lower left")


def _not_logged(axes: Axes) -> None:
    axes.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axes.transAxes, color="gray")
    axes.set_xticks([])
    axes.set_yticks([])
