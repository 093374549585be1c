"""The reward curve of a local run: ``reward_curve.png`` and the one-line first-vs-last summary printed at the
end, both from ``metrics.jsonl`` (so a resumed run's curve covers the whole run)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

SUMMARY_WINDOW = 10  # steps averaged at each end of the curve (fewer on short runs)


def window(n_lines: int) -> int:
    """How many lines the summary averages at each end: up to :data:`SUMMARY_WINDOW`, at most a quarter."""
    return max(1, min(SUMMARY_WINDOW, n_lines // 4))


def curve_summary(lines: list[dict[str, Any]]) -> str:
    """``reward curve: first k steps mean A -> last k steps mean B (+C) over N steps``."""
    if not lines:
        return "reward curve: no training step was logged"
    k = window(len(lines))
    first = sum(line["reward_mean"] for line in lines[:k]) / k
    last = sum(line["reward_mean"] for line in lines[-k:]) / k
    return (f"reward curve: first {k} logged steps mean {first:.3f} -> last {k} mean {last:.3f} "
            f"({last - first:+.3f}) over {lines[-1]['step']} steps")


def plot_reward_curve(lines: list[dict[str, Any]], path: Path, title: str) -> None:
    """Mean reward, pass rate and all-pass rate per step, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [line["step"] for line in lines]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        ax.plot(steps, [line["reward_mean"] for line in lines], label="reward (mean)", color="tab:blue")
        ax.plot(steps, [line["pass_rate_mean"] for line in lines], label="pass rate", color="tab:green")
        ax.plot(steps, [line["all_pass_rate"] for line in lines], label="all tests pass", color="tab:orange",
                linestyle="--")
        ax.set(xlabel="step", ylabel="mean over the step's samples", title=title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
