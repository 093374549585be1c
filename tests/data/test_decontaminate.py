"""Decontamination against the shipped HumanEval and MBPP+ prompts."""

from __future__ import annotations

import datasets
import pytest

from acecoder_rl.data import benchmark_index, decontaminate
from acecoder_rl.data.decontaminate import BenchmarkIndex, ngrams, normalize
from acecoder_rl.data.schema import acecode_features
from acecoder_rl.errors import UsageError

# HumanEval/0 reworded the way a dataset generator might: new framing, a renamed function, one word changed.
PLANTED_HUMANEVAL = (
    "You are tasked with implementing a function.\n"
    "def close_pairs(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than\n'
    "    given threshold.\n"
    "    >>> close_pairs([1.0, 2.0, 3.0], 0.5)\n    False\n"
    "    >>> close_pairs([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n"
    '    """'
)
# MBPP+ Mbpp/160, embedded in a longer AceCode-style question.
PLANTED_MBPP = (
    "You are given three integers a, b and n. Write a function that returns integers x and y that satisfy "
    "ax + by = n as a tuple, or return None if no solution exists. Make sure to handle negative numbers, "
    "large inputs, and the case where a or b is zero; return the pair with the smallest non-negative x."
)


def _dataset(make_row, questions: dict[str, str]) -> datasets.Dataset:
    rows = [
        make_row(row_id, question=q, context_messages=[{"role": "user", "content": q}])
        for row_id, q in questions.items()
    ]
    return datasets.Dataset.from_list(rows, features=acecode_features())


def test_normalisation_lowercases_and_splits_on_punctuation():
    assert normalize("Has_close_elements([1.0, 2.0]) -> BOOL!") == [
        "has",
        "close",
        "elements",
        "1",
        "0",
        "2",
        "0",
        "bool",
    ]
    assert ngrams("a b, c-d", 3) == {"a b c", "b c d"}
    assert ngrams("too short", 3) == set()


def test_planted_near_duplicates_are_dropped_and_unrelated_rows_kept(make_row, sample_row):
    ds = _dataset(
        make_row,
        {"oss_1": sample_row["question"], "planted_he": PLANTED_HUMANEVAL, "planted_mbpp": PLANTED_MBPP},
    )
    kept, report = decontaminate(ds)
    assert kept["id"] == ["oss_1"]
    assert report.rows_dropped == 2
    assert [(d["id"], d["benchmark_id"]) for d in report.dropped] == [
        ("planted_he", "HumanEval/0"),
        ("planted_mbpp", "Mbpp/160"),
    ]
    assert 0 < report.dropped[0]["overlap"] < 0.5  # the renamed function breaks the n-grams around each use
    assert (report.n, report.threshold, report.benchmarks) == (13, 0.0, ["humaneval", "mbppplus"])
    assert report.benchmark_items == 164 + 399


def test_threshold_is_the_fraction_of_the_rows_ngrams(make_row):
    from acecoder_rl.data.bundled import benchmark_prompts

    copy = "Implement the following function:\n" + benchmark_prompts("humaneval")["HumanEval/0"]
    ds = _dataset(make_row, {"copy_he": copy, "planted_he": PLANTED_HUMANEVAL, "planted_mbpp": PLANTED_MBPP})
    kept, report = decontaminate(ds, threshold=0.5)
    # Only the verbatim copy is mostly benchmark text.
    assert kept["id"] == ["planted_he", "planted_mbpp"]
    assert [(d["id"], d["benchmark_id"]) for d in report.dropped] == [("copy_he", "HumanEval/0")]
    assert report.dropped[0]["overlap"] > 0.9


def test_benchmark_selection_and_ngram_length(make_row):
    ds = _dataset(make_row, {"planted_he": PLANTED_HUMANEVAL})
    kept, _ = decontaminate(ds, benchmarks=("mbppplus",))
    assert kept["id"] == ["planted_he"]
    kept, _ = decontaminate(ds, n=60)  # longer than the question: no n-gram, no match
    assert kept["id"] == ["planted_he"]


def test_benchmark_rows_themselves_are_all_dropped():
    from acecoder_rl.data import load_acecode

    kept, report = decontaminate(load_acecode("humaneval"), benchmarks=("humaneval",))
    assert kept.num_rows == 0
    # Each row matches its own problem, except HumanEval/61, worded like HumanEval/56 (brackets "()" vs "<>"):
    # the tie goes to the first id in sorted order.
    assert {d["id"]: d["benchmark_id"] for d in report.dropped if d["id"] != d["benchmark_id"]} == {
        "HumanEval/61": "HumanEval/56"
    }


def test_index_counts_items_too_short_to_match():
    index = BenchmarkIndex.build({"a": "one two three four", "b": "one two"}, n=3)
    assert (index.items, index.items_too_short) == (2, 1)
    assert index.match("zero one two three") == (0.5, "a")
    assert benchmark_index(("mbppplus",), 13).items_too_short == 97


def test_bad_arguments_are_usage_errors(make_row):
    ds = _dataset(make_row, {"a": "q"})
    with pytest.raises(UsageError):
        decontaminate(ds, n=0)
    with pytest.raises(UsageError):
        decontaminate(ds, threshold=1.5)
    with pytest.raises(UsageError, match="unknown benchmark"):
        decontaminate(ds, benchmarks=("apps",))
