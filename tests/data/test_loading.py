"""load_acecode on every supported source, through the real ``datasets`` loaders, and validate_rows."""

from __future__ import annotations

import json
import shutil

import datasets
import pytest

from acecoder_rl.data import load_acecode, validate_rows
from acecoder_rl.data.loading import LineError, source_fingerprint
from acecoder_rl.data.schema import ErrorKind, acecode_features
from acecoder_rl.errors import AcecoderError, UsageError


def test_sample_is_the_real_acecode_row():
    ds = load_acecode("sample")
    assert ds.num_rows == 1
    assert ds.features == acecode_features()
    row = ds[0]
    assert (row["id"], row["source"], len(row["test_cases"]), len(row["inferences"])) == (
        "oss_1",
        "oss",
        19,
        80,
    )
    assert row["context_messages"] == [{"content": row["question"], "role": "user"}]


@pytest.fixture
def rows(make_row):
    return [make_row(f"r{i}") for i in range(3)]


def _ids(ds: datasets.Dataset) -> list[str]:
    return ds["id"]


def test_jsonl_file(tmp_path, rows, write_jsonl):
    ds = load_acecode(str(write_jsonl(tmp_path / "rows.jsonl", rows)))
    assert _ids(ds) == ["r0", "r1", "r2"]
    assert ds[1]["test_cases"] == rows[1]["test_cases"]


def test_json_array_file(tmp_path, rows):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert _ids(load_acecode(str(path))) == ["r0", "r1", "r2"]


def test_parquet_file(tmp_path, rows):
    path = tmp_path / "rows.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    ds = load_acecode(str(path))
    assert _ids(ds) == ["r0", "r1", "r2"]
    assert ds[2]["inferences"] == rows[2]["inferences"]


def test_arrow_file_and_save_to_disk_directory(tmp_path, rows):
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(saved))
    assert _ids(load_acecode(str(saved))) == ["r0", "r1", "r2"]
    arrow = tmp_path / "rows.arrow"
    shutil.copy(next(saved.glob("*.arrow")), arrow)
    assert _ids(load_acecode(str(arrow))) == ["r0", "r1", "r2"]


def test_dataset_dict_directory_picks_the_split(tmp_path, rows):
    saved = tmp_path / "dict"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:2]), "test": datasets.Dataset.from_list(rows[2:])}
    ).save_to_disk(str(saved))
    assert _ids(load_acecode(str(saved))) == ["r0", "r1"]
    assert _ids(load_acecode(str(saved), split="test")) == ["r2"]
    with pytest.raises(AcecoderError, match="no split 'dev'"):
        load_acecode(str(saved), split="dev")


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "rows.jsonl"
    with pytest.raises(AcecoderError, match=f"dataset path '{missing}' does not exist"):
        load_acecode(str(missing))


def test_unsupported_file_type_is_usage_error(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id\n1\n")
    with pytest.raises(UsageError, match="rows.csv"):
        load_acecode(str(path))


def test_plain_directory_is_rejected(tmp_path):
    with pytest.raises(AcecoderError, match="not one written by save_to_disk"):
        load_acecode(str(tmp_path))


def test_corrupt_jsonl_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "a"\n')
    with pytest.raises(AcecoderError, match="broken.jsonl"):
        load_acecode(str(path))


def _lines_file(path, make_row, bad_lines: dict[int, bytes]):
    """Five valid rows (r0..r4), with ``bad_lines`` (line number -> bytes) put in at their line numbers."""
    good = iter(json.dumps(make_row(f"r{i}")).encode() for i in range(5))
    total = 5 + len(bad_lines)
    path.write_bytes(b"\n".join(bad_lines.get(n) or next(good) for n in range(1, total + 1)) + b"\n")
    return str(path)


MALFORMED = {
    "truncated": (b'{"id": "x", "source": ', "not valid JSON (Expecting value at column 23)"),
    "not JSON": (b"this is not json", "not valid JSON (Expecting value at column 1)"),
    "an array": (b"[1, 2, 3]", "expected a JSON object, got list"),
    "two objects": (b'{"id": "x"} {"id": "y"}', "not valid JSON (Extra data at column 13)"),
    "not UTF-8": (b'{"id": "\xff"}', "not UTF-8 text (byte 0xff at byte offset 8)"),
    "a lone surrogate": (b'{"id": "\\udcff"}', "a string holds an unpaired surrogate escape"),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_line_is_an_error_naming_file_and_line(tmp_path, make_row, kind):
    line, message = MALFORMED[kind]
    path = _lines_file(tmp_path / "rows.jsonl", make_row, {3: line})
    if kind == "two objects":  # pyarrow reads it as two rows: nothing to report unless another line fails
        path = _lines_file(tmp_path / "rows.jsonl", make_row, {3: line, 5: b"{oops"})
    with pytest.raises(AcecoderError) as caught:
        load_acecode(path)
    assert str(caught.value).startswith(f"{path}:3: {message}")
    assert "\n" not in str(caught.value)


def test_malformed_lines_are_skipped_and_reported_when_asked(tmp_path, make_row):
    path = _lines_file(tmp_path / "rows.json", make_row, {2: b"{oops", 5: b"[]", 7: b"   "})
    bad_lines: list[LineError] = []
    ds = load_acecode(path, bad_lines=bad_lines)
    assert _ids(ds) == ["r0", "r1", "r2", "r3", "r4"]
    assert [(error.path, error.line) for error in bad_lines] == [(path, 2), (path, 5)]  # a blank line is no row
    kept, report = validate_rows(ds, "skip", bad_lines=bad_lines)
    assert (report.rows_in, report.rows_skipped, report.rows_kept, len(kept)) == (7, 2, 5, 5)
    assert report.to_dict()["skipped_lines"] == [
        {"file": path, "line": 2, "kind": "malformed_line", "message": "not valid JSON (Expecting property name "
         "enclosed in double quotes at column 2)"},
        {"file": path, "line": 5, "kind": "malformed_line", "message": "expected a JSON object, got list"},
    ]
    with pytest.raises(AcecoderError, match=f"^{path}:2: not valid JSON"):
        validate_rows(ds, "fail", bad_lines=bad_lines)


def test_a_broken_json_document_names_line_and_column(tmp_path, rows):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, indent=1)[:-3] + ",,]")
    with pytest.raises(AcecoderError, match=rf"^{path}:\d+:\d+: not valid JSON \(Expecting"):
        load_acecode(str(path), bad_lines=[])  # a document's lines are not rows: nothing to skip


def test_unreachable_hub_name_is_a_clear_error():
    with pytest.raises(
        AcecoderError, match="'nobody-here/no-such-dataset' is not a bundled name .* Hugging Face Hub"
    ):
        load_acecode("nobody-here/no-such-dataset")


def test_validate_rows_skip_counts_and_lists_every_bad_row(tmp_path, make_row, write_jsonl):
    rows = [
        make_row("ok_1"),
        make_row("bad_syntax", test_cases=["assert f(1) =="]),
        make_row("ok_2"),
        make_row("bad_role", context_messages=[{"role": "robot", "content": "q"}]),
        make_row("ok_1"),
        make_row("bad_tests", test_cases="assert f(1) == 1"),  # makes the json loader type test_cases as JSON
    ]
    ds = load_acecode(str(write_jsonl(tmp_path / "rows.jsonl", rows)))
    kept, report = validate_rows(ds, "skip")
    assert _ids(kept) == ["ok_1", "ok_2"]
    assert kept.features == acecode_features()  # the JSON-typed column got its real type back
    assert (report.rows_in, report.rows_skipped, report.rows_kept) == (6, 4, 2)
    summary = {
        index: [(e.row_id, e.field, e.kind) for e in errors] for index, errors in report.skipped.items()
    }
    assert summary == {
        1: [("bad_syntax", "test_cases[0]", ErrorKind.TEST_SYNTAX)],
        3: [("bad_role", "context_messages[0].role", ErrorKind.BAD_ROLE)],
        4: [("ok_1", "id", ErrorKind.DUPLICATE_ID)],
        5: [("bad_tests", "test_cases", ErrorKind.WRONG_TYPE)],
    }
    listed = report.to_dict()["skipped_rows"]
    assert [(r["index"], r["id"], r["errors"][0]["kind"]) for r in listed] == [
        (1, "bad_syntax", "test_syntax"),
        (3, "bad_role", "bad_role"),
        (4, "ok_1", "duplicate_id"),
        (5, "bad_tests", "wrong_type"),
    ]


def test_validate_rows_fail_names_row_and_field(tmp_path, make_row, write_jsonl):
    rows = [
        make_row("ok"),
        make_row("broken_7", inferences=[dict(make_row()["inferences"][0], pass_rate=2.0)]),
    ]
    ds = load_acecode(str(write_jsonl(tmp_path / "rows.jsonl", rows)))
    with pytest.raises(
        AcecoderError, match=r"row 'broken_7': field inferences\[0\].pass_rate: pass_rate_out_of_range"
    ):
        validate_rows(ds, "fail")


def test_validate_rows_names_the_index_when_the_id_is_missing(make_row):
    ds = datasets.Dataset.from_list([make_row("a"), make_row(None)], features=acecode_features())
    with pytest.raises(AcecoderError, match=r"row #1: field id: missing_field"):
        validate_rows(ds, "fail")


def test_source_fingerprint_follows_content(tmp_path, rows, write_jsonl):
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    first = source_fingerprint(str(path), load_acecode(str(path)))
    assert source_fingerprint(str(path), load_acecode(str(path))) == first
    write_jsonl(path, rows[:2])
    assert source_fingerprint(str(path), load_acecode(str(path))) != first


def test_mixed_type_columns_get_their_real_types_back(tmp_path, make_row, write_jsonl):
    inference = dict(make_row()["inferences"][0], test_results=[1, 0])  # a key the schema does not know
    rows = [
        make_row("ok", inferences=[inference]),
        make_row("bad_rate", inferences=[dict(inference, pass_rate="high")]),
    ]
    ds = load_acecode(str(write_jsonl(tmp_path / "rows.jsonl", rows)))
    assert ds.features["inferences"] != acecode_features()["inferences"]
    kept, _ = validate_rows(ds)
    assert kept.features == acecode_features()
    assert kept[0]["inferences"] == [{k: v for k, v in inference.items() if k != "test_results"}]


def test_consistent_extra_keys_are_left_alone(tmp_path, make_row, write_jsonl):
    from acecoder_rl.data import select_hard

    inference = dict(make_row()["inferences"][0], test_results=[1, 0])
    path = write_jsonl(tmp_path / "rows.jsonl", [make_row("a", inferences=[inference])])
    kept, _ = validate_rows(load_acecode(str(path)))
    assert kept[0]["inferences"] == [inference]
    assert select_hard(kept, [inference["model_name"]])[0]["id"] == ["a"]
