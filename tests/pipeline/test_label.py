"""Step 3, ``data label``: the built-in tiny model on the quickstart tasks, several models at an endpoint,
resuming, and what the next steps read."""

from __future__ import annotations

import json

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.data.pipeline.labeling import samples_path
from acecoder_rl.data.quickstart import quickstart_rows


@pytest.fixture
def quickstart(tmp_path):
    path = tmp_path / "quickstart.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in quickstart_rows()), encoding="utf-8")
    return path


def test_builtin_tiny_model_end_to_end(tmp_path, quickstart, kit, capsys):
    """The built-in model answers with whole candidate programs, so the samples score 0, 1/3, 2/3 or 1."""
    out = tmp_path / "labeled"
    assert main(["data", "label", "--dataset", str(quickstart), "--model", "builtin:tiny-llama", "-n", "4",
                 "--max-new-tokens", "2", "--seed", "3", "-o", str(out)]) == 0
    rows = kit.read_jsonl(out / "labeled.jsonl")
    assert [row["id"] for row in rows] == [row["id"] for row in quickstart_rows()]
    rates = set()
    for row in rows:
        inferences = row["inferences"]
        assert [i["completion_id"] for i in inferences] == [0, 1, 2, 3]
        assert {i["model_name"] for i in inferences} == {"builtin:tiny-llama"}
        for inference in inferences:
            assert len(inference["test_results"]) == len(row["test_cases"]) == 3
            assert inference["pass_rate"] == sum(inference["test_results"]) / 3
            assert inference["completion"].startswith("def f(x): return ")
            rates.add(inference["pass_rate"])
    assert len(rates) > 1  # some signal to pair on
    stats = json.loads((out / "label_stats.json").read_text())
    model = stats["models"]["builtin:tiny-llama"]
    assert stats["rows"] == 12 and model["samples"] == 48 and model["statuses"] == {"ok": 48}
    assert stats["this_run"]["generation"]["builtin:tiny-llama"]["backend"] == "transformers"
    assert "builtin:tiny-llama: 48 samples" in capsys.readouterr().out

    # What the next steps read: the hard subset and the pairs.
    assert main(["data", "prepare", "--dataset", str(out / "labeled.jsonl"), "--subset", "hard",
                 "--hard-models", "builtin:tiny-llama", "--no-decontaminate",
                 "-o", str(tmp_path / "hard")]) == 0
    assert main(["data", "pairs", "--dataset", str(out / "labeled.jsonl"),
                 "-o", str(tmp_path / "pairs")]) == 0
    stats = json.loads((tmp_path / "pairs" / "pairs_stats.json").read_text())
    assert stats["rows"] == 12 and stats["candidate_pairs"] == 12 * 6 and stats["pairs"] > 0
    for pair in kit.read_jsonl(tmp_path / "pairs" / "pairs.jsonl"):
        assert pair["chosen_pass_rate"] == 1.0 and pair["rejected_pass_rate"] == pytest.approx(1 / 3)


def test_several_models_and_a_resumed_run(tmp_path, kit, endpoint):
    rows = [dict(row, id=f"q{i}") for i, row in enumerate(quickstart_rows()[:3])]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    def respond(request):
        body = request["body"]
        return kit.chat_answer([f"def f(x): return x  # {body['model']}"] * body["n"])

    endpoint.respond = respond
    out = tmp_path / "out"
    argv = ["data", "label", "--dataset", str(data), "--api-base", endpoint.url, "--model", "coder-a",
            "--model", "coder-b", "-n", "2", "--concurrency", "2", "-o", str(out)]
    assert main(argv) == 0
    assert len(endpoint.requests) == 6
    labeled = kit.read_jsonl(out / "labeled.jsonl")
    assert [[(i["model_name"], i["completion_id"]) for i in row["inferences"]] for row in labeled] == [
        [("coder-a", 0), ("coder-a", 1), ("coder-b", 2), ("coder-b", 3)]] * 3
    assert all(i["completion"].endswith(f"# {i['model_name']}") for row in labeled for i in row["inferences"])

    # Interrupted after coder-a's first row and before coder-b: only the rest is asked for again.
    first = samples_path(out, "coder-a")
    first.write_text(first.read_text().splitlines(keepends=True)[0])
    samples_path(out, "coder-b").unlink()
    (out / "labeled.jsonl").unlink()
    endpoint.requests.clear()
    assert main(argv) == 0
    asked = sorted(request["body"]["model"] for request in endpoint.requests)
    assert asked == ["coder-a"] * 2 + ["coder-b"] * 3
    assert kit.read_jsonl(out / "labeled.jsonl") == labeled

    # Other settings would mix two runs in one file.
    assert main([*argv[:-2], "-n", "3", "-o", str(out)]) == 2


def test_a_samples_file_from_another_input_is_refused(tmp_path, kit, endpoint, capsys):
    endpoint.respond = lambda request: kit.chat_answer(["def f(x): return x"] * request["body"]["n"])
    data = tmp_path / "rows.jsonl"
    rows = quickstart_rows()[:2]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["data", "label", "--dataset", str(data), "--api-base", endpoint.url, "--model", "m", "-n", "1",
            "-o", str(out)]
    assert main(argv) == 0
    data.write_text("".join(json.dumps(row) + "\n" for row in reversed(rows)), encoding="utf-8")
    assert main(argv) == 1
    assert "does not match" in capsys.readouterr().err


def test_a_refused_request_stops_the_run_naming_the_row(tmp_path, quickstart, kit, endpoint, capsys):
    endpoint.respond = lambda request: kit.Answer(400, {"error": {"message": "prompt too long"}})
    assert main(["data", "label", "--dataset", str(quickstart), "--api-base", endpoint.url, "--model", "m",
                 "-o", str(tmp_path / "out")]) == 1
    refused = "row 'quickstart-add_one': the endpoint refused the request: HTTP 400: prompt too long"
    assert f"{quickstart}:1: {refused}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "m", "--model", "m"], "give each --model once"),
        (["--model", "m", "--temperature", "0"], "temperature 0 (greedy) gives 16 identical samples"),
        (["--model", "m", "--api-key-env", "K"], "--api-key-env only applies with --api-base"),
    ],
)
def test_usage_errors(tmp_path, quickstart, capsys, args, message):
    assert main(["data", "label", "--dataset", str(quickstart), *args, "-o", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
