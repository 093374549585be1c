"""select_hard against hand-computed results.

Pass rates are multiples of 1/4 so that means, stds and percentiles are exact in binary floating point.

Rows, with the rates of the two selecting models A = qwen_coder_2.5 and B = llama3.1_instruct
(C = codellama_instruct is present too and must be ignored):

    row  A            B            C      mean   std (population)
    r0   0, 0         0, 0         1, 1   0      0
    r1   0, 1         0, 1                0.5    0.5
    r2   1, 1         1, 1                1      0
    r3   0, 0.5       0.5, 0.5            0.375  sqrt(0.046875) = 0.2165
    r4   0.25         0.75                0.5    0.25
    r5   1, 0.5       -                   0.75   0.25
    r6   -            -            0.5    (no A/B inference: excluded)
    r7   0, 0, 0, 1   -                   0.25   sqrt(0.1875) = 0.4330

Scored rows: 7 (r6 excluded). Sorted means: 0, 0.25, 0.375, 0.5, 0.5, 0.75, 1.
* p50 (linear): position 0.5 * 6 = 3 -> 0.5. Kept: r0 r1 r3 r4 r7 (mean <= 0.5).
  Their stds sorted: 0, 0.2165, 0.25, 0.4330, 0.5; p50: position 2 -> 0.25. Kept: r1 r4 r7 (std >= 0.25).
* p40 of means: position 2.4 -> 0.375 + 0.4 * (0.5 - 0.375) = 0.425. Kept: r0 r3 r7.
  Their stds: 0, 0.2165, 0.4330; p50 -> 0.2165. Kept: r3 r7.
* mean p100 keeps all 7; std p0 keeps all of them.
* mean p50, std p100: max std among r0 r1 r3 r4 r7 is 0.5 -> only r1.
"""

from __future__ import annotations

import json
import math
import warnings

import datasets
import pytest

from acecoder_rl.data import select_hard
from acecoder_rl.data.hard_subset import UnmatchedModelWarning
from acecoder_rl.data.schema import acecode_features
from acecoder_rl.errors import AcecoderError

A, B, C = "qwen_coder_2.5", "llama3.1_instruct", "codellama_instruct"
TABLE = {
    "r0": {A: [0, 0], B: [0, 0], C: [1, 1]},
    "r1": {A: [0, 1], B: [0, 1]},
    "r2": {A: [1, 1], B: [1, 1]},
    "r3": {A: [0, 0.5], B: [0.5, 0.5]},
    "r4": {A: [0.25], B: [0.75]},
    "r5": {A: [1, 0.5]},
    "r6": {C: [0.5]},
    "r7": {A: [0, 0, 0, 1]},
}


@pytest.fixture
def table(make_row) -> datasets.Dataset:
    rows = []
    for row_id, by_model in TABLE.items():
        inferences = [
            {"model_name": model, "completion_id": i, "completion": "pass", "pass_rate": float(rate)}
            for model, rates in by_model.items()
            for i, rate in enumerate(rates)
        ]
        rows.append(make_row(row_id, inferences=inferences))
    return datasets.Dataset.from_list(rows, features=acecode_features())


@pytest.mark.parametrize(
    ("mean_percentile", "std_percentile", "expected"),
    [
        (50, 50, ["r1", "r4", "r7"]),
        (40, 50, ["r3", "r7"]),
        (100, 0, ["r0", "r1", "r2", "r3", "r4", "r5", "r7"]),
        (50, 100, ["r1"]),
    ],
)
def test_hard_subset_matches_hand_computed_rows(table, mean_percentile, std_percentile, expected):
    kept, report = select_hard(table, (A, B), mean_percentile, std_percentile)
    assert kept["id"] == expected
    assert report.rows_kept == len(expected)


def test_report_records_counts_and_thresholds(table):
    _, report = select_hard(table)
    assert report.models == [A, B]
    assert (report.rows_in, report.rows_without_inferences, report.rows_scored) == (8, 1, 7)
    assert (report.mean_threshold, report.rows_after_mean) == (0.5, 5)
    assert (report.std_threshold, report.rows_kept) == (0.25, 3)
    assert report.inferences_per_model == {A: 15, B: 9}
    assert report.unmatched_models == []
    _, report = select_hard(table, (A, B), 40, 50)
    assert math.isclose(report.mean_threshold, 0.425)
    assert math.isclose(report.std_threshold, math.sqrt(0.046875))


def test_result_does_not_depend_on_batching_or_row_order(table):
    reordered = table.select([7, 6, 5, 4, 3, 2, 1, 0])
    kept, _ = select_hard(reordered)
    assert kept["id"] == ["r7", "r4", "r1"]


def test_unmatched_model_name_warns_and_is_reported(table):
    with pytest.warns(UnmatchedModelWarning, match="'llama3_instruct' matches no inference"):
        kept, report = select_hard(table, (A, "llama3_instruct"))
    assert report.unmatched_models == ["llama3_instruct"]
    # Only A's rates count now: r0 0, r1 .5, r2 1, r3 .25, r4 .25, r5 .75, r7 .25 -> p50 = .25: r0 r3 r4 r7;
    # their stds (r4 has a single rate now) 0, .25, 0, .433 -> p50 = 0 + 0.5 * (.25 - 0) = .125: r3 r7.
    assert kept["id"] == ["r3", "r7"]


def test_matching_models_give_no_warning(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select_hard(table)


def test_no_matching_inference_anywhere_is_an_error(table):
    with pytest.warns(UnmatchedModelWarning), pytest.raises(AcecoderError, match="no row has an inference"):
        select_hard(table, ("gpt_nothing",))


def test_sample_row_hard_subset():
    """The real row: A = qwen_coder_2.5 has 15 x 1.0 and one 7/19; B has 13 x 1.0 and 3 x 0.0 (16 each)."""
    from acecoder_rl.data import load_acecode

    kept, report = select_hard(load_acecode("sample"))
    rates = [1.0] * 15 + [7 / 19] + [1.0] * 13 + [0.0] * 3
    mean = sum(rates) / 32
    assert math.isclose(report.mean_threshold, mean)
    assert math.isclose(report.std_threshold, math.sqrt(sum((r - mean) ** 2 for r in rates) / 32))
    assert kept["id"] == ["oss_1"]


def test_rows_without_any_inferences(tmp_path, make_row):
    """A file whose rows all have ``inferences: []`` (typed list<null> by the json loader)."""
    from acecoder_rl.data import compute_stats, load_acecode, validate_rows

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(make_row(f"r{i}", inferences=[])) + "\n" for i in range(2)))
    ds, _ = validate_rows(load_acecode(str(path)))
    assert compute_stats(ds).inferences == 0
    with pytest.warns(UnmatchedModelWarning), pytest.raises(AcecoderError, match="no row has an inference"):
        select_hard(ds)
