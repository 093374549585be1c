"""The pipeline end to end through the CLI: seeds -> synthesize-tests (a real HTTP endpoint on loopback) ->
filter-tests -> label -> pairs -> prepare --subset hard, each step reading the file the step before wrote."""

from __future__ import annotations

import json

from acecoder_rl.cli.app import main


def test_seeds_to_pairs(tmp_path, seeds, endpoint, kit, monkeypatch, capsys):
    TASKS, read_jsonl_file = kit.TASKS, kit.read_jsonl
    monkeypatch.setenv("FAKE_API_KEY", "sk-test")
    endpoint.respond = kit.synthesis_answers()
    synth = tmp_path / "synth"
    assert main(["data", "synthesize-tests", "--dataset", str(seeds), "--api-base", endpoint.url,
                 "--model", "gpt-4o-mini", "--api-key-env", "FAKE_API_KEY", "-o", str(synth)]) == 0

    # What was asked: AceCoder's settings, JSON output, the key from the named variable.
    first = endpoint.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    body = first["body"]
    assert (body["model"], body["temperature"], body["top_p"], body["n"], body["max_tokens"]) == (
        "gpt-4o-mini", 0.7, 1.0, 1, 8192)
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "around 20 test cases" in body["messages"][1]["content"]
    assert len(endpoint.requests) == 8  # 7 seeds, one of them refused with a 429 first

    rows = {row["id"]: row for row in read_jsonl_file(synth / "synthesized.jsonl")}
    assert set(rows) == {TASKS[key].task_id for key in ("kept", "fenced", "retried", "kept_too")}
    kept = rows[TASKS["kept"].task_id]
    # the invalid tests and the repeated one are out, the wrong ones still in
    assert kept["test_cases"] == TASKS["kept"].good_tests() + TASKS["kept"].bad_tests()
    assert kept["context_messages"] == [{"role": "user", "content": kept["question"]}]
    assert kept["program"] == TASKS["kept"].problem["canonical_solution"] and kept["source"] == "mbppplus"
    rejected = {row["id"]: row["reason"] for row in read_jsonl_file(synth / "rejected.jsonl")}
    assert rejected == {TASKS["not_json"].task_id: "invalid_json",
                        TASKS["no_tests"].task_id: "no_valid_tests",
                        TASKS["refused"].task_id: "request_refused"}
    stats = json.loads((synth / "synthesize_stats.json").read_text())
    assert stats["rejected_by_reason"] == {"invalid_json": 1, "no_question": 0, "no_valid_tests": 1,
                                           "request_refused": 1}
    assert (stats["seeds"], stats["rows_written"], stats["tests"]) == (7, 4, 8 + 7 + 8 + 7)
    run = stats["this_run"]
    assert (run["invalid_tests_dropped"], run["repeated_tests_dropped"]) == (2, 1)
    generation = run["generation"]
    assert (generation["requests"], generation["retries"], generation["refused"]) == (8, 1, 1)

    filtered = tmp_path / "filtered"
    assert main(["data", "filter-tests", "--dataset", str(synth / "synthesized.jsonl"),
                 "--reference-key", "program", "-o", str(filtered)]) == 0
    rows = {row["id"]: row for row in read_jsonl_file(filtered / "train.jsonl")}
    assert set(rows) == {TASKS["kept"].task_id, TASKS["kept_too"].task_id}
    assert rows[TASKS["kept"].task_id]["test_cases"] == TASKS["kept"].good_tests()  # order kept
    assert rows[TASKS["kept"].task_id]["tests_before_filter"] == 8
    dropped = {row["id"]: row for row in read_jsonl_file(filtered / "dropped.jsonl")}
    assert {key: row["reason"] for key, row in dropped.items()} == {
        TASKS["fenced"].task_id: "too_few_tests_left", TASKS["retried"].task_id: "reference_passes_too_few"}
    assert dropped[TASKS["fenced"].task_id]["reference_passed"] == 4
    stats = json.loads((filtered / "filter_stats.json").read_text())
    assert (stats["rows_in"], stats["rows_kept"], stats["tests_in"], stats["tests_kept"]) == (4, 2, 30, 13)
    assert stats["tests_removed_from_kept_rows"] == 2

    endpoint.requests.clear()
    endpoint.respond = kit.label_answers(max_choices=3)
    labeled = tmp_path / "labeled"
    assert main(["data", "label", "--dataset", str(filtered / "train.jsonl"), "--api-base", endpoint.url,
                 "--model", "fake-coder", "-n", "5", "-o", str(labeled)]) == 0
    # n = 5 from a server that gives 3 choices at most: 3, then the 2 missing; sampling as AceCoder's.
    assert sorted(request["body"]["n"] for request in endpoint.requests) == [2, 2, 5, 5]
    (request,) = [request for request in endpoint.requests if request["body"]["n"] == 5
                  and TASKS["kept"].name in request["body"]["messages"][0]["content"]]
    body = request["body"]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 1.0, 1024)
    assert "response_format" not in body and "Authorization" not in request["headers"]
    prompt = body["messages"][0]["content"]
    assert prompt.startswith("Please provide a self-contained Python script")
    rows = {row["id"]: row for row in read_jsonl_file(labeled / "labeled.jsonl")}
    square = rows[TASKS["kept"].task_id]  # 6 tests, inputs 1..6: thresholds 100, 4, 5, 100, 0
    tests = square["test_cases"]
    assert f"{tests[0]}\n{tests[1]}\n" in prompt and tests[2] not in prompt  # the first 2 tests are shown
    assert [i["pass_rate"] for i in square["inferences"]] == [1.0, 3 / 6, 4 / 6, 1.0, 0.0]
    assert [i["test_results"] for i in square["inferences"]][1] == [1, 1, 1, 0, 0, 0]
    assert [i["completion_id"] for i in square["inferences"]] == [0, 1, 2, 3, 4]
    assert {i["model_name"] for i in square["inferences"]} == {"fake-coder"}
    assert set(square["inferences"][0]) == {"model_name", "completion_id", "completion", "pass_rate",
                                            "test_results"}
    tetrahedral = rows[TASKS["kept_too"].task_id]
    assert [i["pass_rate"] for i in tetrahedral["inferences"]] == [1.0, 3 / 7, 4 / 7, 1.0, 0.0]
    stats = json.loads((labeled / "label_stats.json").read_text())
    assert stats["rows"] == 2 and stats["models"]["fake-coder"]["samples"] == 10
    assert stats["models"]["fake-coder"]["all_pass_samples"] == 4

    pairs_dir = tmp_path / "pairs"
    assert main(["data", "pairs", "--dataset", str(labeled / "labeled.jsonl"), "-o", str(pairs_dir)]) == 0
    pairs = read_jsonl_file(pairs_dir / "pairs.jsonl")
    # square_perimeter: only (1.0, 0.5); tetrahedral_number: (1.0, 3/7) and (1.0, 4/7), a gap of 0.43.
    assert [(p["id"], p["chosen_pass_rate"], p["rejected_pass_rate"]) for p in pairs] == [
        (TASKS["kept"].task_id, 1.0, 0.5), (TASKS["kept_too"].task_id, 1.0, 3 / 7),
        (TASKS["kept_too"].task_id, 1.0, 4 / 7)]
    first = pairs[0]
    assert first["model_name"] == "fake-coder"
    assert first["chosen"] == [{"role": "assistant", "content": square["inferences"][0]["completion"]}]
    assert first["rejected"] == [{"role": "assistant", "content": square["inferences"][1]["completion"]}]
    assert first["prompt"][0]["role"] == "user" and f"{tests[0]}\n\"\"\"" in first["prompt"][0]["content"]
    stats = json.loads((pairs_dir / "pairs_stats.json").read_text())
    assert (stats["candidate_pairs"], stats["pairs"], stats["repeated_pairs"]) == (20, 3, 3)
    assert stats["failed"] == {"chosen_pass_rate": 6, "gap": 6, "rejected_pass_rate": 8}

    # The labelled rows feed the hard subset as AceCode-87K does.
    hard = tmp_path / "hard"
    assert main(["data", "prepare", "--dataset", str(labeled / "labeled.jsonl"), "--subset", "hard",
                 "--hard-models", "fake-coder", "--no-decontaminate", "-o", str(hard)]) == 0
    assert "after hard subset:" in capsys.readouterr().out
