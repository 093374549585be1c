"""Step 2, ``data filter-tests``: the thresholds by hand-computed tables, a generated reference, errors."""

from __future__ import annotations

import json
import re

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.data.pipeline.filtering import FilterRule

#: (reference passes, what AceCoder's thresholds do with the row): drop at <= 3 passes, then below 5 tests.
TOO_FEW, LEFT = "reference_passes_too_few", "too_few_tests_left"
DEFAULT_TABLE = [(0, TOO_FEW), (1, TOO_FEW), (3, TOO_FEW), (4, LEFT), (5, None), (6, None), (20, None)]


@pytest.mark.parametrize(("passed", "verdict"), DEFAULT_TABLE)
def test_acecoder_thresholds(passed, verdict):
    assert FilterRule().verdict(passed, passed) == verdict


@pytest.mark.parametrize(
    ("rule", "passed", "remaining", "verdict"),
    [
        (FilterRule(1, 2), 1, 1, "reference_passes_too_few"),
        (FilterRule(1, 2), 2, 2, None),
        (FilterRule(0, 1), 1, 1, None),
        (FilterRule(5, 3), 5, 5, "reference_passes_too_few"),  # more than 5 needed, whatever remains
        (FilterRule(5, 3), 6, 6, None),
        (FilterRule(3, 8), 7, 7, "too_few_tests_left"),
        (FilterRule(3, 8), 8, 8, None),
    ],
)
def test_other_thresholds(rule, passed, remaining, verdict):
    assert rule.verdict(passed, remaining) == verdict


def _row(kit, row_id, good, bad):
    """A square_perimeter row whose canonical solution passes ``good`` of its tests and fails ``bad``,
    interleaved (so that keeping their order shows)."""
    name = kit.TASKS["kept"].name
    tests = []
    for i in range(max(good, bad)):
        tests += [f"assert {name}({i}) == {4 * i}"] if i < good else []
        tests += [f"assert {name}({i}) == {4 * i + 1}"] if i < bad else []
    question = f"Write {name}."
    return {"id": row_id, "source": "t", "question": question, "test_cases": tests,
            "context_messages": [{"role": "user", "content": question}],
            "program": kit.TASKS["kept"].problem["canonical_solution"]}


def _passing(tests):
    return [test for test in tests if int(test.rsplit("== ", 1)[1]) % 4 == 0]


@pytest.fixture
def rows(tmp_path, kit):
    table = [("r3", 3, 2), ("r4", 4, 0), ("r5", 5, 3), ("r7", 7, 1)]
    rows = [_row(kit, row_id, good, bad) for row_id, good, bad in table]
    rows[3]["inferences"] = [{"model_name": "m", "completion_id": 0, "completion": "x", "pass_rate": 0.5}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path, rows


@pytest.mark.parametrize(
    ("args", "kept", "dropped"),
    [
        ([], {"r5": 5, "r7": 7}, {"r3": "reference_passes_too_few", "r4": "too_few_tests_left"}),
        (["--min-reference-pass", "2", "--min-tests", "4"], {"r4": 4, "r5": 5, "r7": 7},
         {"r3": "too_few_tests_left"}),
        (["--min-reference-pass", "2", "--min-tests", "3"], {"r3": 3, "r4": 4, "r5": 5, "r7": 7}, {}),
        (["--min-reference-pass", "4", "--min-tests", "6"], {"r7": 7},
         {"r3": "reference_passes_too_few", "r4": "reference_passes_too_few", "r5": "too_few_tests_left"}),
    ],
)
def test_filter_end_to_end(tmp_path, kit, rows, args, kept, dropped):
    path, originals = rows
    out = tmp_path / "out"
    assert main(["data", "filter-tests", "--dataset", str(path), "--reference-key", "program", *args,
                 "-o", str(out)]) == 0
    written = {row["id"]: row for row in kit.read_jsonl(out / "train.jsonl")}
    assert {row_id: len(row["test_cases"]) for row_id, row in written.items()} == kept
    by_id = {row["id"]: row for row in originals}
    for row_id, row in written.items():
        assert row["test_cases"] == _passing(by_id[row_id]["test_cases"])  # the passed tests, in order
        assert row["tests_before_filter"] == len(by_id[row_id]["test_cases"]) and "inferences" not in row
        assert row["program"] == by_id[row_id]["program"]
    assert {row["id"]: row["reason"] for row in kit.read_jsonl(out / "dropped.jsonl")} == dropped
    stats = json.loads((out / "filter_stats.json").read_text())
    assert stats["rows_kept"] == len(kept) and sum(stats["dropped_by_reason"].values()) == len(dropped)
    assert stats["this_run"]["reference_status"] == {"ok": 4}


def test_a_generated_reference_is_greedy(tmp_path, kit, rows, endpoint):
    path, _ = rows
    program = kit.TASKS["kept"].problem["canonical_solution"]
    endpoint.respond = lambda request: kit.chat_answer([f"Here it is:\n```python\n{program}\n```"])
    out = tmp_path / "out"
    assert main(["data", "filter-tests", "--dataset", str(path), "--reference-model", "Qwen2.5-Coder-32B",
                 "--api-base", endpoint.url, "--prompt-tests", "1", "-o", str(out)]) == 0
    assert len(endpoint.requests) == 4
    for request in endpoint.requests:  # every row's first test (square_perimeter(0) == 0), only that one
        body = request["body"]
        assert (body["model"], body["n"], body["temperature"], body["max_tokens"]) == (
            "Qwen2.5-Coder-32B", 1, 0.0, 1024)
        shown = re.findall(r"^assert .*$", body["messages"][0]["content"], re.MULTILINE)
        assert shown == [f"assert {kit.TASKS['kept'].name}(0) == 0"]
    assert [row["id"] for row in kit.read_jsonl(out / "train.jsonl")] == ["r5", "r7"]
    dropped = kit.read_jsonl(out / "dropped.jsonl")
    assert dropped[0]["reference"].startswith("Here it is:") and dropped[0]["reference_passed"] == 3

    # A refused request drops its row (counted), it does not stop the run.
    endpoint.respond = lambda request: kit.Answer(400, {"error": {"message": "too long"}})
    again = tmp_path / "again"
    assert main(["data", "filter-tests", "--dataset", str(path), "--reference-model", "m",
                 "--api-base", endpoint.url, "-o", str(again)]) == 0
    stats = json.loads((again / "filter_stats.json").read_text())
    assert stats["dropped_by_reason"]["reference_refused"] == 4 and stats["rows_kept"] == 0


def test_a_rerun_skips_what_is_done(tmp_path, rows, kit):
    path, _ = rows
    out = tmp_path / "out"
    argv = ["data", "filter-tests", "--dataset", str(path), "--reference-key", "program", "-o", str(out)]
    assert main(argv) == 0
    kept = (out / "train.jsonl").read_text()
    assert main(argv) == 0
    assert (out / "train.jsonl").read_text() == kept
    stats = json.loads((out / "filter_stats.json").read_text())
    assert stats["rows_in"] == 4 and stats["this_run"]["reference_status"] == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"program": None}, ":2: field program: the reference solution is missing; expected a non-empty"),
        ({"program": 7}, ":2: field program: the reference solution is int 7"),
        ({"test_cases": ["assert (("]}, ":2: row 'r4': field test_cases[0]: test_syntax"),
        ({"id": "r3"}, ":2: row 'r3': field id: duplicate_id"),
    ],
)
def test_bad_rows_are_named(tmp_path, rows, capsys, change, message):
    path, originals = rows
    originals[1].update(change)
    path.write_text("".join(json.dumps(row) + "\n" for row in originals), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["data", "filter-tests", "--dataset", str(path), "--reference-key", "program",
                 "-o", str(out)]) == 1
    assert f"{path}{message}" in capsys.readouterr().err
    assert (out / "train.jsonl").read_text() == ""  # found before any row was scored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --reference-key and --reference-model"),
        (["--reference-key", "program", "--reference-model", "m"], "give exactly one of"),
        (["--reference-key", "program", "--prompt-tests", "1"],
         "--prompt-tests only applies with --reference-model"),
        (["--reference-key", "program", "--api-base", "http://x/v1"],
         "--api-base only applies with --reference-model"),
        (["--reference-model", "m", "--concurrency", "2"], "--concurrency only applies with --api-base"),
    ],
)
def test_usage_errors(tmp_path, rows, capsys, args, message):
    path, _ = rows
    assert main(["data", "filter-tests", "--dataset", str(path), *args, "-o", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
