"""What the README tells a new user to type is what the code does: the set-up line, the defaults a synopsis
shows, the completions-file example (run for real, then read by `acecoder-rl eval`), and the layout table
(every path in it exists, every package has a row)."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.reward.options import ENGINE_OPTIONS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def test_setup_updates_the_package_lists_first_and_ci_does_the_same():
    setup = _blocks("bash")[0]
    assert setup.startswith("apt-get update && apt-get install -y bubblewrap shellcheck && ")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "$SUDO apt-get update && $SUDO apt-get install -y bubblewrap shellcheck\n" in ci


def test_reward_score_synopsis_shows_the_real_defaults():
    synopsis = next(block for block in _blocks("bash") if block.startswith("acecoder-rl reward score"))
    shown = dict(re.findall(r"\[(--[a-z-]+) ([0-9.]+)\]", synopsis))
    defaults = {option.flag: option.default for option in ENGINE_OPTIONS}
    assert set(shown) == {"--timeout-per-test", "--timeout-per-program", "--memory-mb", "--all-pass-bonus",
                          "--format-penalty"}
    assert {flag: float(value) for flag, value in shown.items()} == {flag: defaults[flag] for flag in shown}


@pytest.mark.usefixtures("hf_offline")
def test_completions_file_example_feeds_eval(tmp_path, monkeypatch, capsys):
    (example,) = [block for block in _blocks("python") if "completions.jsonl" in block]
    rows = [{"id": f"p{i}", "source": "user", "question": "Write add(a, b).",
             "test_cases": [f"assert add({i}, 1) == {i + 1}"],
             "context_messages": [{"role": "user", "content": "Write add(a, b)."}]} for i in range(2)]
    benchmark = tmp_path / "add.jsonl"
    benchmark.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    outputs = [("p1", "def add(a, b):\n    return a + b"), ("p0", "def add(a, b):\n    return a - b"),
               ("p0", "```python\ndef add(a, b):\n    return a + b\n```"), ("p1", "I cannot help with that.")]
    (tmp_path / "generations.jsonl").write_text(
        "".join(json.dumps({"task_id": task, "output": output}) + "\n" for task, output in outputs))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(_write(tmp_path / "example.py", example)))
    assert main(["eval", "--benchmark", str(benchmark), "--completions", "completions.jsonl", "-o", "out"]) == 0
    assert "pass@1 50.00%" in capsys.readouterr().out
    results = {row["id"]: row for row in map(json.loads, (tmp_path / "out/results.jsonl").open())}
    assert [sample["status"] for sample in results["p1"]["samples"]] == ["ok", "no_code"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _layout_rows() -> list[tuple[list[str], str]]:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1]))
    return rows


def test_layout_table_matches_the_tree():
    rows = _layout_rows()
    listed = {path.rstrip("/") for paths, _ in rows for path in paths}
    assert sorted(path for path in listed if not (REPO / path).exists()) == []
    packages = {str(init.parent.relative_to(REPO)) for init in (REPO / "acecoder_rl").rglob("*/__init__.py")}
    assert packages - listed == set(), "packages without a row in the README's layout table"
    for paths, what in rows:  # a module a row names is in that row's directory
        for directory in (REPO / path for path in paths if (REPO / path).is_dir()):
            named = re.findall(r"`([a-z_]+\.py)`", what)
            assert all((directory / name).is_file() for name in named), (directory, named)
