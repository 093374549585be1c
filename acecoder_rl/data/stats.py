"""Summary statistics of AceCode rows: what a dataset holds before one spends GPU hours on it.

Counts by ``source``, tests per row, and the distribution of recorded inference pass rates (overall and per
model), which is what the hard subset selects on. Columns are read through Arrow, so completions are never
materialised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datasets import Dataset

#: Pass-rate histogram bins: ten of width 0.1 over [0, 1]; the last one includes 1.0 (numpy's convention).
PASS_RATE_BINS = np.round(np.linspace(0.0, 1.0, 11), 1)


@dataclass
class DatasetStats:
    """Counts and distributions of a dataset (``pass_rate_histograms``: "all" and each model -> counts)."""

    rows: int
    by_source: dict[str, int]
    tests_per_row_min: int
    tests_per_row_mean: float
    tests_per_row_max: int
    tests_per_row: list[int]
    inferences: int
    pass_rate_bins: list[float]
    pass_rate_histograms: dict[str, list[int]]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, without the per-row test counts (one number per row)."""
        data = asdict(self)
        del data["tests_per_row"]
        return data


def compute_stats(dataset: Dataset, batch_size: int = 10_000) -> DatasetStats:
    """Statistics of ``dataset``, which should hold validated rows (see :func:`validate_rows`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [c for c in ("source", "test_cases", "inferences") if c in dataset.column_names]
    sources: dict[str, int] = {}
    tests: list[np.ndarray] = []
    histograms: dict[str, np.ndarray] = {"all": np.zeros(len(PASS_RATE_BINS) - 1, dtype=np.int64)}
    inferences = 0
    for table in dataset.select_columns(columns).with_format("arrow").iter(batch_size=batch_size):
        for item in pc.value_counts(table.column("source")).to_pylist():
            sources[item["values"]] = sources.get(item["values"], 0) + item["counts"]
        tests.append(pc.fill_null(pc.list_value_length(table.column("test_cases")), 0).to_numpy())
        flat = (
            pc.list_flatten(table.column("inferences").combine_chunks()) if "inferences" in columns else None
        )
        if flat is None or not pa.types.is_struct(flat.type):  # no column, or only empty lists (list<null>)
            continue
        names, rates = flat.field("model_name"), flat.field("pass_rate").to_numpy(zero_copy_only=False)
        inferences += len(rates)
        histograms["all"] += _histogram(rates)
        for model in pc.unique(names).to_pylist():
            mask = pc.equal(names, model).to_numpy(zero_copy_only=False)
            histograms[model] = histograms.get(model, 0) + _histogram(rates[mask])
    per_row = np.concatenate(tests) if tests else np.zeros(0, dtype=np.int64)
    return DatasetStats(
        rows=len(dataset),
        by_source=dict(sorted(sources.items())),
        tests_per_row_min=int(per_row.min()) if per_row.size else 0,
        tests_per_row_mean=float(per_row.mean()) if per_row.size else 0.0,
        tests_per_row_max=int(per_row.max()) if per_row.size else 0,
        tests_per_row=per_row.tolist(),
        inferences=inferences,
        pass_rate_bins=PASS_RATE_BINS.tolist(),
        pass_rate_histograms={"all": histograms.pop("all").tolist()}
        | {model: histograms[model].tolist() for model in sorted(histograms)},
    )


def _histogram(values: np.ndarray) -> np.ndarray:
    return np.histogram(values, bins=PASS_RATE_BINS)[0]


def plot_stats(stats: DatasetStats, path: str | Path) -> Path:
    """Write a PNG: pass-rate histograms per model (left), tests per row (right). Returns the path written."""
    from matplotlib.figure import (
        Figure,
    )  # a bare Figure draws with Agg and leaves pyplot's global state alone

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(12, 4.5))
    left, right = figure.subplots(1, 2)
    centers = (PASS_RATE_BINS[:-1] + PASS_RATE_BINS[1:]) / 2
    models = [m for m in stats.pass_rate_histograms if m != "all"]
    width = 0.1 / max(len(models), 1)
    for i, model in enumerate(models):
        offset = (i - (len(models) - 1) / 2) * width
        left.bar(centers + offset, stats.pass_rate_histograms[model], width=width, label=model)
    left.set(
        title=f"Inference pass rates ({stats.inferences} inferences)", xlabel="pass rate", ylabel="inferences"
    )
    left.set_xticks(PASS_RATE_BINS)
    if models:
        left.legend(fontsize="small")
    tests = np.asarray(stats.tests_per_row)
    right.hist(tests, bins=np.arange(tests.min(), tests.max() + 2) - 0.5 if tests.size else 10)
    right.set(title=f"Tests per row ({stats.rows} rows)", xlabel="tests", ylabel="rows")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
