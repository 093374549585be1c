"""`acecoder-rl data ...` end to end, in-process through ``main()`` (and once as a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.data.bundled import ACECODE_SAMPLE

pytestmark = pytest.mark.usefixtures("hf_offline")


def _sample() -> dict:
    return json.loads(ACECODE_SAMPLE.read_text(encoding="utf-8"))


def _write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def with_bad_row(tmp_path) -> str:
    good = _sample()
    bad = dict(good, id="oss_bad_42", test_cases=["assert parse_tokens([]) =="])
    return _write_rows(tmp_path / "rows.jsonl", [good, bad])


def test_prepare_sample_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["data", "prepare", "-o", str(out), "--subset", "hard", "--system-prompt", "r1"]) == 0
    printed = capsys.readouterr().out
    for line in ("rows in:                 1", "after hard subset:       1", "rows out:                1"):
        assert line in printed
    assert f"wrote {out / 'train.jsonl'}" in printed

    (row,) = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    sample = _sample()
    assert row["id"] == "oss_1" and row["source"] == "oss"
    assert row["test_cases"] == sample["test_cases"]
    assert [m["role"] for m in row["context_messages"]] == ["system", "user"]
    assert row["context_messages"][1]["content"] == sample["question"]
    assert pq.read_table(out / "train.parquet").to_pylist() == [row]
    stats = json.loads((out / "prepare_stats.json").read_text())
    assert stats["options"]["subset"] == "hard" and stats["counts"]["rows_out"] == 1

    assert main(["data", "prepare", "-o", str(out), "--subset", "hard", "--system-prompt", "r1"]) == 0
    assert "is up to date" in capsys.readouterr().out


def test_prepare_warns_about_unmatched_hard_model(tmp_path, capsys):
    args = [
        "data",
        "prepare",
        "-o",
        str(tmp_path),
        "--subset",
        "hard",
        "--hard-models",
        "qwen_coder_2.5,llama3_instruct",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "warning: hard subset model 'llama3_instruct' matches no inference" in captured.err
    assert "mean pass rate <= " in captured.out


def test_on_error_skip_counts_the_skipped_row(tmp_path, with_bad_row, capsys):
    assert main(["data", "prepare", "--dataset", with_bad_row, "-o", str(tmp_path / "out")]) == 0
    assert "skipped (malformed):     1" in capsys.readouterr().out
    stats = json.loads((tmp_path / "out" / "prepare_stats.json").read_text())
    assert stats["counts"]["skipped_malformed"] == 1
    assert stats["validation"]["skipped_rows"][0]["id"] == "oss_bad_42"


def test_on_error_fail_exits_nonzero_naming_the_row(tmp_path, with_bad_row, capsys):
    code = main(
        ["data", "prepare", "--dataset", with_bad_row, "--on-error", "fail", "-o", str(tmp_path / "out")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "acecoder-rl: error: malformed row: row 'oss_bad_42': field test_cases[0]: test_syntax"
    )
    assert err.count("\n") == 1  # one line, no traceback


def test_dataset_name_that_is_not_utf8_reaches_prepare_stats_intact(tmp_path, capsys):
    # The name's \xff byte is the lone surrogate \udcff in Python, which UTF-8 cannot encode.
    dataset = _write_rows(tmp_path / os.fsdecode(b"rows\xff.jsonl"), [_sample()])
    out = tmp_path / "out"
    assert main(["data", "prepare", "--dataset", dataset, "-o", str(out)]) == 0
    stats = json.loads((out / "prepare_stats.json").read_text(encoding="utf-8"))
    assert stats["input"]["dataset"] == dataset and stats["counts"]["rows_out"] == 1
    assert [json.loads(line)["id"] for line in (out / "train.jsonl").read_text().splitlines()] == ["oss_1"]
    capsys.readouterr()
    assert main(["data", "prepare", "--dataset", dataset, "-o", str(out)]) == 0
    assert "is up to date" in capsys.readouterr().out


def test_lone_surrogate_in_a_row_is_a_malformed_line(tmp_path, capsys):
    # pyarrow's JSON reader (the one the trainer's `datasets` uses too) refuses the "\udcff" escape.
    dataset = _write_rows(tmp_path / "rows.jsonl", [_sample(), dict(_sample(), question="Write f. \udcff")])
    assert main(["data", "prepare", "--dataset", dataset, "-o", str(tmp_path / "out")]) == 0
    assert f"  {dataset}:2: a string holds an unpaired surrogate escape" in capsys.readouterr().out
    assert main(["data", "prepare", "--dataset", dataset, "--on-error", "fail", "-o", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"acecoder-rl: error: {dataset}:2: a string holds") and err.count("\n") == 1
    assert not (tmp_path / "o2").exists()


@pytest.fixture
def with_bad_line(tmp_path) -> str:
    """Three rows with a truncated line between the first two (line 2 of 4)."""
    lines = [json.dumps(dict(_sample(), id=f"oss_{i}")) for i in range(3)]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join([lines[0], lines[1][:40], *lines[1:]]) + "\n", encoding="utf-8")
    return str(path)


def test_prepare_skips_and_counts_a_malformed_line(tmp_path, with_bad_line, capsys):
    out = tmp_path / "out"
    assert main(["data", "prepare", "--dataset", with_bad_line, "--no-decontaminate", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rows in:                 4" in printed and "skipped (malformed):     1" in printed
    assert f"  {with_bad_line}:2: not valid JSON (Unterminated string starting at column 34)" in printed
    stats = json.loads((out / "prepare_stats.json").read_text())
    assert stats["counts"]["rows_in"] == 4 and stats["counts"]["skipped_malformed"] == 1
    assert stats["validation"]["skipped_lines"] == [
        {"file": with_bad_line, "line": 2, "kind": "malformed_line",
         "message": "not valid JSON (Unterminated string starting at column 34)"}
    ]
    assert [json.loads(line)["id"] for line in (out / "train.jsonl").read_text().splitlines()] == [
        "oss_0", "oss_1", "oss_2"
    ]
    assert main(["data", "prepare", "--dataset", with_bad_line, "--no-decontaminate", "-o", str(out)]) == 0
    assert "is up to date" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["validate"], ["stats"], ["prepare", "--on-error", "fail"]])
def test_a_malformed_line_is_one_line_through_the_console_script(tmp_path, with_bad_line, command):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "c"))
    out = ["-o", str(tmp_path / "out")] if command[0] == "prepare" else []
    done = subprocess.run(
        [sys.executable, "-m", "acecoder_rl", "data", *command, *out, "--dataset", with_bad_line],
        capture_output=True, text=True, env=env, timeout=120,
    )
    where = f"{with_bad_line}:2: not valid JSON (Unterminated string starting at column 34)"
    assert "Traceback" not in done.stderr and "Failed to load JSON" not in done.stderr
    if command == ["stats"]:  # the line is left out and counted, like a malformed row
        assert done.returncode == 0 and "note: 1 malformed rows left out" in done.stdout
        assert "rows: 3" in done.stdout
    elif command == ["validate"]:
        assert done.returncode == 1 and done.stdout == where + "\n"
        assert done.stderr == (
            f"acecoder-rl: error: 1 of 4 rows in '{with_bad_line}' are malformed (malformed_line: 1)\n"
        )
    else:
        assert done.returncode == 1 and done.stderr == f"acecoder-rl: error: {where}\n"
        assert not (tmp_path / "out").exists()


def test_validate(tmp_path, with_bad_row, capsys):
    assert main(["data", "validate"]) == 0
    assert "1 rows in 'sample': all valid" in capsys.readouterr().out
    assert main(["data", "validate", "--dataset", with_bad_row]) == 1
    captured = capsys.readouterr()
    assert "row 'oss_bad_42': field test_cases[0]: test_syntax" in captured.out
    assert "1 of 2 rows" in captured.err and "test_syntax: 1" in captured.err


def test_stats_writes_png(tmp_path, capsys):
    png = tmp_path / "stats.png"
    assert main(["data", "stats", "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert "oss: 1" in out and "tests per row: min 19, mean 19.00, max 19" in out and "inferences: 80" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_dataset_path_is_one_line_exit_1(tmp_path, capsys):
    missing = tmp_path / "missing.parquet"
    assert main(["data", "stats", "--dataset", str(missing)]) == 1
    assert capsys.readouterr().err == f"acecoder-rl: error: dataset path '{missing}' does not exist\n"


@pytest.mark.parametrize(
    "args",
    [
        ["data", "prepare"],  # no -o
        ["data", "prepare", "-o", "x", "--subset", "easy"],
        ["data", "prepare", "-o", "x", "--mean-percentile", "150"],
        ["data", "prepare", "-o", "x", "--overlap-threshold", "-1"],
        ["data", "prepare", "-o", "x", "--ngram", "0"],
        ["data", "prepare", "-o", "x", "--system-prompt", "r2"],
        ["data", "prepare", "-o", "x", "--on-error", "ignore"],
        ["data", "prepare", "-o", "x", "--hard-models", " , ", "--subset", "hard"],
        ["data", "prepare", "-o", "x", "--hard-models", "a,b"],  # only meaningful with --subset hard
        ["data", "prepare", "-o", "x", "--no-decontaminate", "--ngram", "8"],
        ["data", "stats", "--dataset", "x.csv"],
        ["data", "frobnicate"],
    ],
)
def test_bad_usage_exits_2(tmp_path, monkeypatch, args, capsys):
    monkeypatch.chdir(tmp_path)
    if args[-1] == "x.csv":
        (tmp_path / "x.csv").write_text("id\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("acecoder-rl: error:") and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_console_script_subprocess(tmp_path):
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "cache")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "acecoder_rl",
            "data",
            "prepare",
            "--dataset",
            "humaneval",
            "--no-decontaminate",
            "-o",
            str(tmp_path / "he"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "rows out:                164" in done.stdout
    assert len((tmp_path / "he" / "train.jsonl").read_text().splitlines()) == 164
