"""`acecoder-rl eval` usage, and the completions file's rules (strict by default, errors name file:line)."""

import json
import os
import subprocess
import sys

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.errors import AcecoderError
from acecoder_rl.eval.completions import read_completions

IDS = ["HumanEval/0", "HumanEval/1", "Mbpp/2", "Mbpp/3"]
ADD = "def add(a, b):\n    return a + b"


@pytest.fixture
def add_rows(tmp_path, write_jsonl):
    """Two small problems in the AceCode row format, on `add`."""

    def row(row_id, tests):
        question = "Write add(a, b)."
        return {
            "id": row_id,
            "source": "user",
            "question": question,
            "test_cases": tests,
            "context_messages": [{"role": "user", "content": question}],
        }

    return write_jsonl(
        tmp_path / "add.jsonl",
        [
            row("p1", ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]),
            row("p2", ["assert add(2, 2) == 4"]),
        ],
    )


def test_n_samples_give_counts_and_pass_at_k(tmp_path, add_rows, write_jsonl):
    wrong = "def add(a, b):\n    return a * b"  # passes add(2, 2) == 4 and add(0, 0), not add(1, 2)
    completions = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "p1", "completions": [ADD, wrong, "```python\n" + ADD + "\n```", "no code here"]},
            {"id": "p2", "completions": [wrong, wrong, wrong, "def add(a, b): return 0"]},
        ],
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "--benchmark",
                str(add_rows),
                "--completions",
                str(completions),
                "-k",
                "2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["id"], r["n"], r["c"]) for r in results] == [("p1", 4, 2), ("p2", 4, 3)]
    assert results[0]["pass@1"] == 0.5 and results[0]["pass@2"] == pytest.approx(1 - 1 / 6)
    assert results[1]["pass@1"] == 0.75 and results[1]["pass@2"] == 1.0
    assert [s["pass_rate"] for s in results[0]["samples"]] == [1.0, 0.5, 1.0, 0.0]
    assert [s["status"] for s in results[0]["samples"]][3] in ("no_code", "syntax_error")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == [1, 2] and summary["n"] == 4
    assert summary["pass@1"] == pytest.approx(0.625) and summary["pass@2"] == pytest.approx((5 / 6 + 1) / 2)
    assert (summary["samples"], summary["correct_samples"], summary["problems_solved"]) == (8, 5, 2)
    assert "| pass@1 | pass@2 |" in (out / "summary.md").read_text()


def test_allow_partial_evaluates_only_the_covered_problems(tmp_path, add_rows, write_jsonl):
    completions = write_jsonl(tmp_path / "c.jsonl", [{"id": "p2", "completion": ADD}])
    out = tmp_path / "out"
    argv = ["eval", "--benchmark", str(add_rows), "--completions", str(completions), "-o", str(out)]
    assert main(argv) == 1
    assert main([*argv, "--allow-partial"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["problems"], summary["problems_in_benchmark"], summary["partial"]) == (1, 2, True)
    assert summary["pass@1"] == 1.0 and "PARTIAL" in (out / "summary.md").read_text()


def test_lone_surrogates_are_written_as_valid_json(tmp_path, add_rows, write_jsonl):
    # A completion holding "\udcff" (a valid JSON escape UTF-8 cannot encode), from a file whose name is not
    # UTF-8 either (it reaches summary.md).
    samples = [ADD + "  # \udcff", "x = '\ud800'"]
    name = os.fsdecode(b"c\xff.jsonl")
    completions = write_jsonl(tmp_path / name, [{"id": "p1", "completions": samples}])
    out = tmp_path / "out"
    argv = ["eval", "--benchmark", str(add_rows), "--completions", str(completions), "--allow-partial"]
    assert main([*argv, "-o", str(out)]) == 0
    [result] = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [s["completion"] for s in result["samples"]] == samples
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["completions_file"] == str(completions)
    assert "c\\udcff.jsonl" in (out / "summary.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [{"id": "HumanEval/0", "completion": "x"}, {"id": "nope", "completion": "x"}],
            "{path}:2: id 'nope' is not a problem of this benchmark",
        ),
        (
            [{"id": "HumanEval/0", "completion": "x"}, "", {"task_id": "HumanEval/0", "completion": "y"}],
            "{path}:3: id 'HumanEval/0' already given on line 1",
        ),
        (
            [{"id": "HumanEval/0", "completions": ["a", "b"]}, {"id": "HumanEval/1", "completion": "a"}],
            "{path}:2: 1 completion(s) for 'HumanEval/1', but earlier lines have 2",
        ),
        ([{"id": "HumanEval/0", "completion": "x", "completions": ["x"]}], "{path}:1: give exactly one of"),
        (
            [{"id": "HumanEval/0", "completions": []}],
            "{path}:1: field 'completions' must be a non-empty list",
        ),
        ([{"id": "HumanEval/0", "completion": 3}], "{path}:1: field 'completion' must be a string"),
        (
            [{"id": "HumanEval/0", "task_id": "HumanEval/1", "completion": "x"}],
            "{path}:1: 'id' 'HumanEval/0' and",
        ),
        ([{"completion": "x"}], "{path}:1: no 'id' (or 'task_id') field"),
        (["[1, 2]"], "{path}:1: expected a JSON object"),
        (["{oops"], "{path}:1: not valid JSON"),
        (
            [{"id": "HumanEval/0", "completion": "x"}],
            "{path}: no completions for 3 of 4 problems (HumanEval/1, Mbpp/2",
        ),
    ],
)
def test_completion_file_errors_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "c.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    with pytest.raises(AcecoderError) as caught:
        read_completions(path, IDS)
    assert str(caught.value).startswith(message.format(path=path))


def test_partial_reads_keep_file_order(tmp_path, write_jsonl):
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "Mbpp/3", "completion": "b"}, {"id": "Mbpp/2", "completion": "a"}]
    )
    assert read_completions(path, IDS, allow_partial=True) == {"Mbpp/3": ["b"], "Mbpp/2": ["a"]}


def test_file_errors_exit_1_with_one_line(tmp_path, add_rows, capsys, write_jsonl):
    completions = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "p1", "completion": ADD}, {"id": "zz", "completion": ADD}]
    )
    assert (
        main(["eval", "--benchmark", str(add_rows), "--completions", str(completions), "-o", str(tmp_path)])
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert err == f"acecoder-rl: error: {completions}:2: id 'zz' is not a problem of this benchmark"


def test_malformed_benchmark_line_exits_1_naming_file_and_line(tmp_path, add_rows, capsys, write_jsonl):
    completions = write_jsonl(tmp_path / "c.jsonl", [{"id": "p1", "completion": ADD}])
    lines = add_rows.read_text().splitlines()
    add_rows.write_text("\n".join([lines[0], lines[1][:-1]]) + "\n")  # the second row lost its last brace
    argv = ["eval", "--benchmark", str(add_rows), "--completions", str(completions), "-o", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    column = len(lines[1])
    assert err == (
        f"acecoder-rl: error: {add_rows}:2: not valid JSON (Expecting ',' delimiter at column {column})\n"
    )


def test_completions_that_are_not_utf8_exit_1_naming_file_and_line(tmp_path, add_rows, capsys):
    completions = tmp_path / "c.jsonl"
    completions.write_bytes(b'{"id": "p1", "completion": "x"}\n{"id": "p2", "completion": "\xff"}\n')
    argv = ["eval", "--benchmark", str(add_rows), "--completions", str(completions), "-o", str(tmp_path / "o")]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"acecoder-rl: error: {completions}:2: not UTF-8 text (byte 0xff at byte offset 28)\n"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --model and --completions"),
        (["--model", "m", "--completions", "{c}"], "exactly one of --model and --completions"),
        (["--completions", "{c}", "--temperature", "0.5"], "--temperature only applies with --model"),
        (["--completions", "{c}", "-n", "3"], "-n 3, but"),
        (["--completions", "{c}", "-k", "5"], "k <= n"),
        (["--completions", "{c}", "-k", "1,x"], "comma-separated integers"),
        (["--model", "m", "--allow-partial"], "--allow-partial only applies with --completions"),
        (
            ["--model", "m", "-n", "4", "--temperature", "0"],
            "temperature 0 (greedy) gives 4 identical samples",
        ),
        (["--model", "m", "-n", "2", "-k", "1,5"], "k <= n"),
    ],
)
def test_bad_usage_exits_2(tmp_path, add_rows, capsys, write_jsonl, extra, message):
    completions = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "p1", "completion": ADD}, {"id": "p2", "completion": ADD}]
    )
    argv = ["eval", "--benchmark", str(add_rows), "-o", str(tmp_path / "out")]
    assert main(argv + [arg.format(c=completions) for arg in extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_benchmark_is_a_one_line_error(tmp_path, capsys, write_jsonl):
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {
                "id": "x",
                "source": "s",
                "question": "q",
                "test_cases": [],
                "context_messages": [{"role": "user", "content": "q"}],
            }
        ],
    )
    completions = write_jsonl(tmp_path / "c.jsonl", [{"id": "x", "completion": ADD}])
    assert (
        main(["eval", "--benchmark", str(bad), "--completions", str(completions), "-o", str(tmp_path)]) == 1
    )
    assert "test_cases" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--benchmark",
                str(tmp_path / "missing.jsonl"),
                "--completions",
                str(completions),
                "-o",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "does not exist" in capsys.readouterr().err


def test_help_and_process_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "acecoder_rl", "eval", "--benchmark", "humaneval", "-o", "x"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "exactly one of --model and --completions" in proc.stderr
    assert main(["eval", "--help"]) == 0
