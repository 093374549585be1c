"""The prepare pipeline: outputs, stats, determinism and resuming."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from acecoder_rl.data import PrepareOptions, prepare
from acecoder_rl.data.prompts import R1_SYSTEM_PROMPT
from acecoder_rl.errors import AcecoderError, UsageError

FILES = ("train.jsonl", "train.parquet", "prepare_stats.json")


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def mixed_input(tmp_path, make_row, write_jsonl):
    """Three good rows, two malformed ones, and one copy of a HumanEval prompt."""
    from acecoder_rl.data.bundled import benchmark_prompts

    copied = "Implement this:\n" + benchmark_prompts("humaneval")["HumanEval/2"]
    rows = [
        make_row("good_1"),
        make_row("bad_syntax", test_cases=["assert f(1) =="]),
        make_row("good_2"),
        make_row("contaminated", question=copied, context_messages=[{"role": "user", "content": copied}]),
        make_row(None),
        make_row(
            "good_3", context_messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]
        ),
    ]
    return str(write_jsonl(tmp_path / "input.jsonl", rows))


def test_outputs_and_stats(tmp_path, mixed_input, make_row):
    result = prepare(mixed_input, tmp_path / "out", PrepareOptions(system_prompt="r1"))
    assert not result.reused
    rows = _read_jsonl(tmp_path / "out" / "train.jsonl")
    assert [r["id"] for r in rows] == ["good_1", "good_2", "good_3"]
    assert all(list(r) == ["id", "source", "context_messages", "test_cases"] for r in rows)
    assert rows[0]["test_cases"] == make_row()["test_cases"]
    assert rows[0]["context_messages"] == [
        {"role": "system", "content": R1_SYSTEM_PROMPT},
        {"role": "user", "content": make_row()["question"]},
    ]
    assert rows[2]["context_messages"][0] == {"role": "system", "content": R1_SYSTEM_PROMPT + "\n\nS"}
    assert pq.read_table(tmp_path / "out" / "train.parquet").to_pylist() == rows

    stats = json.loads((tmp_path / "out" / "prepare_stats.json").read_text())
    assert stats == result.stats
    assert stats["counts"] == {
        "rows_in": 6,
        "skipped_malformed": 2,
        "after_validation": 4,
        "after_hard_subset": None,
        "after_decontamination": 3,
        "rows_out": 3,
    }
    skipped = stats["validation"]["skipped_rows"]
    assert [(s["index"], s["id"], s["errors"][0]["field"], s["errors"][0]["kind"]) for s in skipped] == [
        (1, "bad_syntax", "test_cases[0]", "test_syntax"),
        (4, None, "id", "missing_field"),
    ]
    assert [(d["id"], d["benchmark_id"]) for d in stats["decontamination"]["dropped"]] == [
        ("contaminated", "HumanEval/2")
    ]
    assert stats["options"]["system_prompt"] == "r1" and stats["input"]["dataset"] == mixed_input
    assert stats["outputs"]["train.jsonl"]["rows"] == 3


def test_hard_subset_step_is_recorded(tmp_path):
    result = prepare("sample", tmp_path, PrepareOptions(subset="hard", decontaminate=False))
    assert result.stats["counts"]["after_hard_subset"] == 1
    assert result.stats["counts"]["after_decontamination"] is None
    assert result.stats["hard_subset"]["rows_scored"] == 1
    assert result.stats["decontamination"] is None


def test_fail_on_error_raises_with_the_row_id(tmp_path, mixed_input):
    with pytest.raises(AcecoderError, match=r"row 'bad_syntax': field test_cases\[0\]: test_syntax"):
        prepare(mixed_input, tmp_path / "out", PrepareOptions(on_error="fail"))
    assert not (tmp_path / "out" / "prepare_stats.json").exists()


def test_no_valid_rows_is_an_error(tmp_path, make_row, write_jsonl):
    path = write_jsonl(tmp_path / "bad.jsonl", [make_row("x", test_cases=[])])
    with pytest.raises(AcecoderError, match=r"no valid rows .*1 rows read.*row 'x': field test_cases: empty"):
        prepare(str(path), tmp_path / "out")


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError):
        PrepareOptions(subset="easy")
    with pytest.raises(UsageError):
        PrepareOptions(system_prompt="r2")


def test_two_runs_are_byte_identical(tmp_path, mixed_input):
    options = PrepareOptions(subset="all", system_prompt="r1")
    prepare(mixed_input, tmp_path / "a", options)
    prepare(mixed_input, tmp_path / "b", options)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_complete_result_is_reused(tmp_path, mixed_input):
    first = prepare(mixed_input, tmp_path / "out")
    mtimes = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in FILES}
    again = prepare(
        mixed_input, tmp_path / "out", PrepareOptions(mean_percentile=50)
    )  # same options as defaults
    assert again.reused and again.stats == first.stats
    assert {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in FILES} == mtimes


def test_changed_options_or_input_are_redone(tmp_path, mixed_input, make_row, write_jsonl):
    prepare(mixed_input, tmp_path / "out")
    changed = prepare(mixed_input, tmp_path / "out", PrepareOptions(decontaminate=False))
    assert not changed.reused and changed.stats["counts"]["rows_out"] == 4
    write_jsonl(tmp_path / "input.jsonl", [make_row("only")])
    redone = prepare(mixed_input, tmp_path / "out", PrepareOptions(decontaminate=False))
    assert not redone.reused
    assert [r["id"] for r in _read_jsonl(tmp_path / "out" / "train.jsonl")] == ["only"]


def test_interrupted_runs_are_redone(tmp_path, mixed_input):
    reference = tmp_path / "ref"
    prepare(mixed_input, reference)
    expected = {name: (reference / name).read_bytes() for name in FILES}
    out = tmp_path / "out"

    # 1. Killed while writing: partial temporary files, no stats.
    out.mkdir()
    (out / "train.jsonl.tmp").write_bytes(expected["train.jsonl"][:50])
    (out / "train.parquet.tmp").write_bytes(b"PAR1")
    assert not prepare(mixed_input, out).reused
    assert {name: (out / name).read_bytes() for name in FILES} == expected
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)

    # 2. A data file truncated after the stats were written: the checksum no longer matches.
    (out / "train.jsonl").write_bytes(expected["train.jsonl"][:-10])
    assert not prepare(mixed_input, out).reused
    assert (out / "train.jsonl").read_bytes() == expected["train.jsonl"]

    # 3. Unreadable stats file.
    (out / "prepare_stats.json").write_text("{not json")
    assert not prepare(mixed_input, out).reused
    assert {name: (out / name).read_bytes() for name in FILES} == expected
