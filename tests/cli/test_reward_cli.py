import json
import subprocess
import sys

from acecoder_rl.cli.app import main

TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_score_keeps_order_and_extra_fields(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [
        {"id": "a", "completion": "def add(a, b):\n    return a + b", "test_cases": TESTS, "group": 1},
        {"id": "b", "completion": "```python\ndef add(a, b):\n    return a * b\n```", "test_cases": TESTS},
        {"id": "c", "completion": "", "test_cases": TESTS},
    ])
    out = tmp_path / "out.jsonl"
    assert main(["reward", "score", str(src), "-o", str(out), "--workers", "1", "--mode", "binary"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["group"] == 1 and rows[0]["reward"] == 1.0 and rows[0]["test_status"] == ["pass", "pass"]
    assert rows[1]["test_results"] == [0, 1] and rows[1]["score"] == 0.0 and rows[1]["pass_rate"] == 0.5
    assert rows[2]["status"] == "no_code"
    summary = capsys.readouterr().out
    assert "programs/s" in summary and "pass rate mean 0.5000" in summary


def test_prose_reply_is_no_code_and_takes_the_format_penalty(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [
        {"id": "prose", "completion": "I cannot help with that.", "test_cases": TESTS},
        {"id": "broken", "completion": "def add(a, b:\n    return a + b", "test_cases": TESTS},
    ])
    assert main(["reward", "score", str(src), "-o", str(out), "--workers", "1", "--format-penalty", "0.1"]) == 0
    prose, broken = [json.loads(line) for line in out.read_text().splitlines()]
    assert (prose["status"], prose["reward"], prose["code"]) == ("no_code", -0.1, "")
    assert (broken["status"], broken["reward"]) == ("syntax_error", 0.0)


def test_score_acecode_inferences(tmp_path):
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "acecoder_rl/data/resources/acecode/acecode_sample.jsonl"
    out = tmp_path / "out.jsonl"
    assert main(["reward", "score", str(sample), "--inferences", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 80 and all(r["pass_rate"] == r["recorded_pass_rate"] for r in rows)


def test_bad_input_names_file_line_and_field(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "completion": "x", "test_cases": TESTS}) + "\n{not json\n")
    assert main(["reward", "score", str(src), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert f"{src}:2: not valid JSON" in capsys.readouterr().err
    write_jsonl(src, [{"id": "a", "completion": "x", "test_cases": []}])
    assert main(["reward", "score", str(src), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert f"{src}:1: field 'test_cases'" in capsys.readouterr().err


def test_bad_usage_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "acecoder_rl", "reward", "score", "x.jsonl", "--mode", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "error" in proc.stderr


def test_help_on_every_level():
    for argv in (["--help"], ["reward", "--help"], ["reward", "score", "--help"]):
        assert main(argv) == 0


def test_lone_surrogates_get_their_result_lines_as_valid_json(tmp_path):
    # "\udcff" and "\ud800" are valid JSON escapes for strings that UTF-8 cannot encode.
    rows = [
        {"id": "s\udcff", "completion": "def add(a, b):\n    return a + b  # \udcff", "test_cases": TESTS},
        {"id": "lone-high", "completion": "x = '\ud800'", "test_cases": TESTS},
        {"id": "é", "completion": "def add(a, b):\n    return a + b  # é", "test_cases": TESTS},
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, rows)
    proc = subprocess.run([sys.executable, "-m", "acecoder_rl", "reward", "score", str(src), "-o", str(out),
                           "--workers", "1"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    results = [json.loads(line) for line in lines]
    assert [(r["id"], r["completion"]) for r in results] == [(r["id"], r["completion"]) for r in rows]
    assert all(len(r["test_results"]) == 2 for r in results)
    assert results[2]["reward"] == 1.0 and '"id": "é"' in lines[2]  # other text stays as it is
