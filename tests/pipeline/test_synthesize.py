"""Step 1, ``data synthesize-tests``: what a reply needs to give a row, resuming, a local model, bad input."""

from __future__ import annotations

import json
import re

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.data.pipeline.prompts import synthesis_messages
from acecoder_rl.data.pipeline.synthesize import ReplyRejected, is_assert_test, parse_reply

GOOD = ["assert f(1) == 2", "assert f(2) == 3"]


@pytest.mark.parametrize(
    ("reply", "tests", "invalid", "repeated"),
    [
        (json.dumps({"question": "Q", "tests": GOOD}), GOOD, 0, 0),
        # a raw JSON reply whose question holds a code fence, as AceCode questions do
        (json.dumps({"question": "Q\n```python\ndef f(x):\n    pass\n```", "tests": GOOD}), GOOD, 0, 0),
        ("Sure:\n```json\n" + json.dumps({"question": "Q", "tests": GOOD}) + "\n```\nEnjoy.", GOOD, 0, 0),
        ("```\n" + json.dumps({"question": "Q", "tests": GOOD}) + "\n```", GOOD, 0, 0),
        (json.dumps({"question": "Q", "tests": [GOOD[0], " " + GOOD[0], "f(1)", "assert (", 7, None,
                                                GOOD[1]]}), GOOD, 4, 1),
        (json.dumps({"question": "Q", "tests": ["import math; assert f(4) == math.sqrt(16)"]}),
         ["import math; assert f(4) == math.sqrt(16)"], 0, 0),
    ],
)
def test_a_usable_reply(reply, tests, invalid, repeated):
    parsed = parse_reply(reply)
    assert (parsed.tests, parsed.invalid_tests, parsed.repeated_tests) == (tests, invalid, repeated)
    assert parsed.question.startswith("Q")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("I cannot do that.", "invalid_json"),
        ('{"question": "Q", "tests": ["assert f(1) == 2", "assert f(', "invalid_json"),  # cut at max tokens
        ("[1, 2]", "invalid_json"),
        (json.dumps({"tests": GOOD}), "no_question"),
        (json.dumps({"question": "  ", "tests": GOOD}), "no_question"),
        (json.dumps({"question": "Q", "tests": "assert f(1) == 2"}), "no_valid_tests"),
        (json.dumps({"question": "Q", "tests": []}), "no_valid_tests"),
        (json.dumps({"question": "Q", "tests": ["print(f(1))", "assert", "f(1) == 2"]}), "no_valid_tests"),
    ],
)
def test_a_reply_that_gives_no_row(reply, reason):
    with pytest.raises(ReplyRejected) as caught:
        parse_reply(reply)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("test", "valid"),
    [
        ("assert f(1) == 2", True),
        ("assert f('\\d') == 1", True),  # an invalid escape warns, still Python
        ("from math import pi\nassert f() == pi", True),
        ("x = f(1); assert x == 2", False),  # not independent: a statement before the assert
        ("assert f(1) == 2; print('ok')", False),
        ("f(1) == 2", False),
        ("assert f(1) ==", False),
        ("assert f('\0')", False),
        ("", False),
    ],
)
def test_what_counts_as_an_assert_test(test, valid):
    assert is_assert_test(test) is valid


def test_the_prompt_fits_the_seed():
    both, program, question = (synthesis_messages("Q?", "def f(): pass")[1]["content"],
                               synthesis_messages(None, "def f(): pass")[1]["content"],
                               synthesis_messages("Q?", None)[1]["content"])
    assert "Here is the original question:\nQ?\n" in both and "def f(): pass" in both
    assert "Here is the original question" not in program
    assert "Here is the reference program:\n```python" in program
    assert "Q?" in question and "```python" not in question
    assert all(text.endswith('{"question": ..., "tests":["assert ...", "assert ..."]}.\n')
               for text in (both, program, question))


def _run(seeds, out, endpoint, *extra):
    return main(["data", "synthesize-tests", "--dataset", str(seeds), "--api-base", endpoint.url,
                 "--model", "m", "-o", str(out), *extra])


def test_a_rerun_resumes(tmp_path, endpoint, kit):
    endpoint.respond = kit.synthesis_answers()
    rows = kit.seed_rows()
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in rows[:3]), encoding="utf-8")
    out = tmp_path / "out"
    assert _run(seeds, out, endpoint) == 0
    assert len(endpoint.requests) == 3
    # A crash in the middle of writing the last row: that row is redone, the others are not.
    written = (out / "synthesized.jsonl").read_bytes()
    (out / "synthesized.jsonl").write_bytes(written[:-20])
    endpoint.requests.clear()
    seeds.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert _run(seeds, out, endpoint) == 0
    asked = [kit.TASKS[key].name for key in kit.TASKS]
    redone = [next(name for name in asked if f"def {name}(" in request["body"]["messages"][1]["content"])
              for request in endpoint.requests]
    assert sorted(set(redone)) == sorted([kit.TASKS["fenced"].name] + asked[3:])  # fenced was row 2 of 2
    stats = json.loads((out / "synthesize_stats.json").read_text())
    assert (stats["seeds"], stats["rows_written"], stats["seeds_rejected"]) == (7, 4, 3)
    assert stats["this_run"]["seeds_skipped_as_done"] == 2
    ids = [json.loads(line)["id"] for line in (out / "synthesized.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids))  # no row twice

    endpoint.requests.clear()
    assert _run(seeds, out, endpoint) == 0 and endpoint.requests == []  # all done: nothing is asked


def test_a_rerun_with_other_settings_is_refused(tmp_path, seeds, endpoint, kit, capsys):
    endpoint.respond = kit.synthesis_answers()
    out = tmp_path / "out"
    assert _run(seeds, out, endpoint) == 0
    assert _run(seeds, out, endpoint, "--temperature", "0.2") == 2
    assert "other settings (temperature 0.7 -> 0.2)" in capsys.readouterr().err


def test_an_endpoint_that_stays_down_stops_the_run(tmp_path, seeds, endpoint, kit, capsys):
    endpoint.respond = lambda request: kit.Answer(503, {"error": {"message": "overloaded"}})
    assert _run(seeds, tmp_path / "out", endpoint, "--max-retries", "0") == 1
    assert "gave up after 0 retries: HTTP 503: overloaded" in capsys.readouterr().err


def test_a_local_model_whose_replies_are_no_json(tmp_path, seeds, capsys):
    out = tmp_path / "out"
    assert main(["data", "synthesize-tests", "--dataset", str(seeds), "--local-model", "builtin:tiny-llama",
                 "--max-new-tokens", "4", "-o", str(out)]) == 0
    stats = json.loads((out / "synthesize_stats.json").read_text())
    assert stats["rows_written"] == 0 and stats["rejected_by_reason"]["invalid_json"] == 7
    assert stats["this_run"]["generation"]["backend"] == "transformers"
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert all(record["reply"].startswith("def f(x): return") for record in rejected)  # candidate programs
    assert re.search(r"^seeds rejected: +7$", capsys.readouterr().out, re.MULTILINE)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "Q"}, ":2: field id: expected a non-empty string or an integer"),
        ({"id": 5, "source": "x"}, ":2: a seed needs a question (field question) or a program"),
        ({"id": "s", "question": ["Q"]}, ":2: field question: expected a string, got list"),
        ({"id": "a", "question": "Q"}, ":2: field id: 'a' already given at"),
    ],
)
def test_bad_seeds_are_named_before_anything_is_asked(tmp_path, endpoint, capsys, row, message):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "a", "program": "def f(): pass"}) + "\n" + json.dumps(row) + "\n")
    assert _run(seeds, tmp_path / "out", endpoint) == 1
    assert f"{seeds}{message}" in capsys.readouterr().err and endpoint.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "m"], "give --api-base URL --model M (an endpoint) or --local-model PATH"),
        (["--api-base", "http://127.0.0.1:9/v1"], "with --api-base give --model"),
        (["--local-model", "builtin:tiny-llama", "--concurrency", "4"],
         "--concurrency only applies with --api-base"),
        (["--api-base", "http://127.0.0.1:9/v1", "--model", "m", "--batch-size", "2"],
         "--batch-size only applies with a local model"),
    ],
)
def test_usage_errors(tmp_path, seeds, capsys, args, message):
    assert main(["data", "synthesize-tests", "--dataset", str(seeds), "-o", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err
