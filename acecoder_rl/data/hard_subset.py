"""AceCoder's "hard subset" for RL: questions that reference models solve rarely, and inconsistently.

The AceCoder RL recipe (arXiv 2502.01718) keeps questions on which chosen models' sampled solutions have a low
mean test pass rate, and among those, a high spread of pass rates: such questions give the policy a reward
signal that is neither always 0 nor always 1. The two-step rule, applied per row to the ``pass_rate`` of the
inferences whose ``model_name`` is one of ``models``:

1. ``mean`` = arithmetic mean of those pass rates. Keep rows with ``mean <= P_mean``, where ``P_mean`` is
   ``numpy.percentile(all row means, mean_percentile)`` with numpy's default ``linear`` interpolation.
2. ``std`` = population standard deviation (``numpy.std``, ``ddof=0``) of the same pass rates. Among the rows
   kept by step 1 only, keep those with ``std >= P_std``, where ``P_std`` is ``numpy.percentile(kept row stds,
   std_percentile)``, again ``linear``.

A row with no inference from any of ``models`` has no mean to compare: it is excluded and counted in
``rows_without_inferences``. Model names must match exactly. The paper's code uses ``llama3_instruct`` but the
public AceCode-87K names that model ``llama3.1_instruct``, so a configured name that matches no inference at
all is warned about (:class:`UnmatchedModelWarning`) and recorded in the report rather than passed over
silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from acecoder_rl.errors import AcecoderError, UsageError

if TYPE_CHECKING:
    from datasets import Dataset

DEFAULT_MODELS = ("qwen_coder_2.5", "llama3.1_instruct")


class UnmatchedModelWarning(UserWarning):
    """A configured model name occurs in no inference of the dataset (a misspelt or outdated name?)."""


@dataclass
class HardSubsetReport:
    """Counts after each step of :func:`select_hard` and the thresholds that produced them."""

    models: list[str]
    mean_percentile: float
    std_percentile: float
    rows_in: int
    rows_without_inferences: int
    rows_scored: int
    mean_threshold: float
    rows_after_mean: int
    std_threshold: float
    rows_kept: int
    inferences_per_model: dict[str, int] = field(default_factory=dict)
    unmatched_models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def row_pass_rates(
    dataset: Dataset, models: Sequence[str], batch_size: int = 10_000
) -> tuple[list[np.ndarray], dict[str, int]]:
    """Per row, the pass rates of the inferences by ``models``; and how many inferences each model has.

    Reads the ``inferences`` column through Arrow, so completions (most of the bytes) are never turned into
    Python strings. Expects the canonical column type that :func:`~acecoder_rl.data.loading.validate_rows`
    guarantees.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = dict.fromkeys(models, 0)
    if "inferences" not in dataset.column_names:
        return [np.empty(0)] * len(dataset), counts
    wanted = pa.array(list(models), type=pa.string())
    per_row: list[np.ndarray] = []
    for table in dataset.select_columns(["inferences"]).with_format("arrow").iter(batch_size=batch_size):
        column = table.column("inferences").combine_chunks()
        flat = pc.list_flatten(column)
        if not pa.types.is_struct(flat.type):  # every list in the batch empty or null: typed list<null>
            per_row.extend(np.empty(0) for _ in range(len(table)))
            continue
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        names = flat.field("model_name")
        mask = pc.fill_null(pc.is_in(names, value_set=wanted), False).to_numpy(zero_copy_only=False)
        rates = flat.field("pass_rate").to_numpy(zero_copy_only=False)[mask]
        owners = parents[mask]
        for item in pc.value_counts(pc.filter(names, pa.array(mask))).to_pylist():
            counts[item["values"]] += item["counts"]
        bounds = np.searchsorted(owners, np.arange(len(table) + 1))
        per_row.extend(rates[bounds[i] : bounds[i + 1]] for i in range(len(table)))
    return per_row, counts


def select_hard(
    dataset: Dataset,
    models: Sequence[str] = DEFAULT_MODELS,
    mean_percentile: float = 50,
    std_percentile: float = 50,
) -> tuple[Dataset, HardSubsetReport]:
    """Keep the AceCoder hard subset of ``dataset`` (see the module docstring for the exact rule); order is
    kept.

    Raises :class:`AcecoderError` when no row has an inference from ``models`` (nothing could be selected).
    """
    models = list(dict.fromkeys(models))
    if not models:
        raise UsageError("select_hard needs at least one model name")
    for name, value in (("mean_percentile", mean_percentile), ("std_percentile", std_percentile)):
        if not 0 <= value <= 100:
            raise UsageError(f"{name} must be within [0, 100], got {value}")

    per_row, counts = row_pass_rates(dataset, models)
    unmatched = [model for model in models if counts[model] == 0]
    for model in unmatched:
        warnings.warn(
            f"hard subset: model name {model!r} matches no inference in the dataset; it contributes nothing",
            UnmatchedModelWarning,
            stacklevel=2,
        )
    scored = [i for i, rates in enumerate(per_row) if rates.size]
    if not scored:
        raise AcecoderError(
            f"hard subset: no row has an inference from any of the models {models} (check --hard-models)"
        )
    means = np.array([per_row[i].mean() for i in scored])
    mean_threshold = float(np.percentile(means, mean_percentile))
    after_mean = [i for i, mean in zip(scored, means, strict=True) if mean <= mean_threshold]
    stds = np.array([per_row[i].std() for i in after_mean])
    std_threshold = float(np.percentile(stds, std_percentile))
    kept = [i for i, std in zip(after_mean, stds, strict=True) if std >= std_threshold]

    report = HardSubsetReport(
        models=models,
        mean_percentile=float(mean_percentile),
        std_percentile=float(std_percentile),
        rows_in=len(dataset),
        rows_without_inferences=len(dataset) - len(scored),
        rows_scored=len(scored),
        mean_threshold=mean_threshold,
        rows_after_mean=len(after_mean),
        std_threshold=std_threshold,
        rows_kept=len(kept),
        inferences_per_model=counts,
        unmatched_models=unmatched,
    )
    return dataset.select(kept), report
