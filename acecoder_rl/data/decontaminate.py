"""Drop training rows whose question copies a held-out benchmark problem (word n-gram overlap).

Training on a benchmark's own problems inflates its scores, so rows that reproduce HumanEval or MBPP+ text are
removed before RL. Texts are normalised (lowercased; every run of characters other than letters and digits,
underscores included, separates words) and cut into word n-grams. A row is dropped when at least ``threshold``
of its question's n-grams occur in the benchmark index (and at least one does).

Defaults: ``n = 13`` and ``threshold = 0``, the rule of the GPT-3 contamination study and common practice
since: one shared 13-word sequence drops the row. Thirteen consecutive words are very unlikely to be shared by
chance, and the rule also catches a long question that embeds a whole benchmark problem (the converted row of
MBPP+ task Mbpp/2 shares only 3 % of its n-grams with MBPP+: its own wording surrounds the short task text).
Raise ``threshold`` (say to 0.5) to drop only rows that are mostly benchmark text. A question or benchmark
item shorter than ``n`` words has no n-gram and can never match; the report counts such benchmark items (with
``n = 13``, 97 of the 399 MBPP+ task texts).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acecoder_rl.data.bundled import BENCHMARKS, benchmark_prompts
from acecoder_rl.errors import UsageError

if TYPE_CHECKING:
    from datasets import Dataset

DEFAULT_NGRAM = 13
DEFAULT_THRESHOLD = 0.0
_WORD = re.compile(r"[^\W_]+")


def normalize(text: str) -> list[str]:
    """Lowercased words of ``text``; punctuation, underscores and whitespace only separate words."""
    return _WORD.findall(text.lower())


def ngrams(text: str, n: int) -> set[str]:
    """The distinct word n-grams of ``text`` after :func:`normalize`, each as its words joined by a space."""
    words = normalize(text)
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class BenchmarkIndex:
    """n-gram -> ids of the benchmark items that contain it."""

    n: int
    owners: dict[str, tuple[str, ...]]
    items: int
    items_too_short: int

    @classmethod
    def build(cls, texts: dict[str, str], n: int) -> BenchmarkIndex:
        """Index benchmark ``texts`` (item id -> problem text)."""
        owners: dict[str, list[str]] = {}
        too_short = 0
        for item_id, text in texts.items():
            grams = ngrams(text, n)
            too_short += not grams
            for gram in grams:
                owners.setdefault(gram, []).append(item_id)
        return cls(n, {gram: tuple(ids) for gram, ids in owners.items()}, len(texts), too_short)

    def match(self, text: str) -> tuple[float, str | None]:
        """Fraction of ``text``'s n-grams found in the index, and the item that shares the most of them.

        Ties between items go to the first in sorted id order, so the answer is deterministic.
        """
        grams = ngrams(text, self.n)
        shared = [gram for gram in grams if gram in self.owners]
        if not shared:
            return 0.0, None
        votes = Counter(item for gram in shared for item in self.owners[gram])
        best = min(votes, key=lambda item: (-votes[item], item))
        return len(shared) / len(grams), best


def benchmark_index(benchmarks: Sequence[str] = BENCHMARKS, n: int = DEFAULT_NGRAM) -> BenchmarkIndex:
    """The index over the prompts of the bundled ``benchmarks`` (``humaneval``, ``mbppplus``)."""
    unknown = sorted(set(benchmarks) - set(BENCHMARKS))
    if unknown:
        raise UsageError(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    texts: dict[str, str] = {}
    for name in benchmarks:
        texts.update(benchmark_prompts(name))
    return BenchmarkIndex.build(texts, n)


@dataclass
class DecontaminationReport:
    """Rows dropped by :func:`decontaminate`, each with the benchmark item it matched and the overlap."""

    benchmarks: list[str]
    n: int
    threshold: float
    benchmark_items: int
    benchmark_items_too_short: int
    rows_in: int
    dropped: list[dict[str, object]] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        return len(self.dropped)

    def to_dict(self) -> dict[str, object]:
        return {
            "benchmarks": self.benchmarks,
            "n": self.n,
            "threshold": self.threshold,
            "benchmark_items": self.benchmark_items,
            "benchmark_items_too_short": self.benchmark_items_too_short,
            "rows_in": self.rows_in,
            "rows_dropped": self.rows_dropped,
            "dropped": self.dropped,
        }


def decontaminate(
    dataset: Dataset,
    benchmarks: Sequence[str] = BENCHMARKS,
    n: int = DEFAULT_NGRAM,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> tuple[Dataset, DecontaminationReport]:
    """Drop rows whose ``question`` overlaps the ``benchmarks`` (see the module docstring); keep the rest in
    order.

    ``progress`` is called with the number of rows checked after each batch.
    """
    if n < 1:
        raise UsageError(f"n-gram length must be at least 1, got {n}")
    if not 0 <= threshold <= 1:
        raise UsageError(f"overlap threshold must be within [0, 1], got {threshold}")
    index = benchmark_index(benchmarks, n)
    report = DecontaminationReport(
        benchmarks=list(benchmarks),
        n=n,
        threshold=float(threshold),
        benchmark_items=index.items,
        benchmark_items_too_short=index.items_too_short,
        rows_in=len(dataset),
    )
    dropped: set[int] = set()
    position = 0
    for batch in dataset.select_columns(["id", "question"]).iter(batch_size=batch_size):
        for row_id, question in zip(batch["id"], batch["question"], strict=True):
            fraction, item = index.match(question)
            if item is not None and fraction >= threshold:
                dropped.add(position)
                report.dropped.append({"id": row_id, "benchmark_id": item, "overlap": round(fraction, 4)})
            position += 1
        if progress is not None:
            progress(len(batch["id"]))
    if dropped:
        dataset = dataset.select([i for i in range(len(dataset)) if i not in dropped])
    return dataset, report
