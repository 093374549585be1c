"""Step 4, ``data pairs``: AceCoder's pair rule against hand-computed tables, the real AceCode-87K row, and
OpenRLHF 0.11's own reading of the output."""

from __future__ import annotations

import json

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.data.bundled import ACECODE_SAMPLE
from acecoder_rl.data.pipeline.pairs import PairCounts, PairOptions, PairRule, model_pairs, row_pairs

CHOSEN, GAP, REJECTED = "chosen_pass_rate", "gap", "rejected_pass_rate"

#: (higher pass rate, lower pass rate, rules failed by AceCoder's code rule, by the paper's strict rule)
RULE_TABLE = [
    (1.0, 0.6, [], [GAP]),  # a gap of exactly 0.4
    (0.8, 0.4, [], [CHOSEN, GAP]),  # chosen exactly 0.8
    (0.8, 0.3, [], [CHOSEN]),
    (0.9, 0.2, [], []),
    (17 / 20, 9 / 20, [], [GAP]),  # 0.85 - 0.45 is 0.39999999999999997 in floating point
    (19 / 20, 11 / 20, [], [GAP]),
    (0.7, 0.3, [CHOSEN], [CHOSEN, GAP]),
    (1.0, 0.7, [GAP], [GAP]),
    (1.0, 0.0, [REJECTED], [REJECTED]),
    (0.5, 0.0, [CHOSEN, REJECTED], [CHOSEN, REJECTED]),
    (0.5, 0.5, [CHOSEN, GAP], [CHOSEN, GAP]),
    (0.0, 0.0, [CHOSEN, GAP, REJECTED], [CHOSEN, GAP, REJECTED]),
]


@pytest.mark.parametrize(("high", "low", "code", "paper"), RULE_TABLE)
def test_the_rule(high, low, code, paper):
    assert PairRule().failures(high, low) == code
    assert PairRule(strict=True).failures(high, low) == paper


def test_other_thresholds():
    rule = PairRule(min_chosen=0.5, min_gap=0.2)
    assert rule.failures(0.5, 0.3) == [] and rule.failures(0.5, 0.31) == [GAP]
    assert PairRule(0.5, 0.2, strict=True).failures(0.5, 0.3) == [CHOSEN, GAP]


def _inferences(*items, model="m"):
    """(text, pass rate) -> inferences of one model, completion ids in order."""
    return [{"model_name": model, "completion_id": i, "completion": text, "pass_rate": rate}
            for i, (text, rate) in enumerate(items)]


#: One model's inferences of one question. "a" twice: B repeats A's text with A's rate.
QUESTION = _inferences(("a", 1.0), ("a", 1.0), ("c", 0.9), ("d", 0.5), ("e", 0.5), ("f", 0.2), ("g", 0.0))


def test_one_question_by_hand():
    """Sorted: a a c d e f g. For each, the lower ones from the lowest up (AceCoder's order):
    a: g (rejected 0), f ok, e ok, d ok, c (gap 0.1), a (gap 0); the second a: the same pairs again
    (repeated), c: g (rejected 0), f ok, e ok (a gap of exactly 0.4), d ok; d, e, f: chosen below 0.8."""
    counts = PairCounts()
    pairs = [(chosen["completion"], rejected["completion"])
             for chosen, rejected in model_pairs(QUESTION, PairRule(), counts)]
    assert pairs == [("a", "f"), ("a", "e"), ("a", "d"), ("c", "f"), ("c", "e"), ("c", "d")]
    assert (counts.candidate_pairs, counts.failed_any_rule, counts.repeated_pairs) == (21, 12, 3)
    assert counts.failed == {CHOSEN: 6, GAP: 7, REJECTED: 6}

    strict = PairCounts()
    pairs = [(chosen["completion"], rejected["completion"])
             for chosen, rejected in model_pairs(QUESTION, PairRule(strict=True), strict)]
    assert pairs == [("a", "f"), ("a", "e"), ("a", "d"), ("c", "f")]  # c-e and c-d: a gap of 0.4, not more
    assert strict.repeated_pairs == 3


def test_the_same_text_on_both_sides_is_no_pair():
    counts = PairCounts()
    assert list(model_pairs(_inferences(("x", 1.0), ("x", 0.5)), PairRule(), counts)) == []
    assert counts.identical_texts == 1


def _row(inferences, question="Write f.", row_id="q"):
    return {"id": row_id, "source": "t", "question": question,
            "test_cases": ["assert f(1) == 1", "assert f(2)"],
            "context_messages": [{"role": "user", "content": question}], "inferences": inferences}


def test_pairs_stay_within_one_model():
    inferences = _inferences(("m1-good", 1.0), ("m1-half", 0.5), model="m1") + \
        _inferences(("m2-low", 0.3), ("m2-good", 1.0), model="m2")
    for i, inference in enumerate(inferences):
        inference["completion_id"] = i
    pairs = list(row_pairs(_row(inferences), PairRule(), PairOptions(), PairCounts()))
    assert [(p["model_name"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        ("m1", "m1-good", "m1-half"), ("m2", "m2-good", "m2-low")]
    assert [(p["chosen_completion_id"], p["rejected_completion_id"]) for p in pairs] == [(0, 1), (3, 2)]
    only = list(row_pairs(_row(inferences), PairRule(), PairOptions(models=("m2",)), PairCounts()))
    assert [p["model_name"] for p in only] == ["m2"]


def test_the_prompt_and_ascii_questions():
    inferences = _inferences(("good", 1.0), ("half", 0.5))
    (pair,) = row_pairs(_row(inferences), PairRule(), PairOptions(), PairCounts())
    assert pair["prompt"] == [{"role": "user", "content": (
        "Please provide a self-contained Python script that solves the following problem in a markdown code "
        'block:\n```\n"""\nWrite f.\nassert f(1) == 1\n"""\n```\n')}]
    (pair,) = row_pairs(_row(inferences), PairRule(), PairOptions(prompt_tests=0), PairCounts())
    assert "assert" not in pair["prompt"][0]["content"]
    counts = PairCounts()
    assert list(row_pairs(_row(inferences, "Écrire f."), PairRule(), PairOptions(), counts)) == []
    assert counts.rows_not_ascii == 1
    assert len(list(row_pairs(_row(inferences, "Écrire f."), PairRule(), PairOptions(ascii_only=False),
                              PairCounts()))) == 1


def test_the_real_acecode_row(tmp_path, kit, capsys):
    """oss_1: 5 models x 16 inferences; only qwen_coder_2.5 has a rate strictly between 0 and 1 (7/19),
    paired with each of its distinct all-pass programs (every other low rate is 0)."""
    row = json.loads(ACECODE_SAMPLE.read_text(encoding="utf-8"))
    qwen = [i for i in row["inferences"] if i["model_name"] == "qwen_coder_2.5"]
    (low,) = [i for i in qwen if 0 < i["pass_rate"] < 1]
    winners = {i["completion"] for i in qwen if i["pass_rate"] == 1.0}
    out = tmp_path / "pairs"
    assert main(["data", "pairs", "--dataset", "sample", "-o", str(out),
                 "--model", "qwen_coder_2.5", "--model", "llama3_instruct"]) == 0
    assert "warning: model 'llama3_instruct' gave no pair" in capsys.readouterr().err
    pairs = kit.read_jsonl(out / "pairs.jsonl")
    assert {p["chosen"][0]["content"] for p in pairs} == winners and len(pairs) == len(winners) == 15
    assert {p["rejected"][0]["content"] for p in pairs} == {low["completion"]}
    assert {(p["id"], p["model_name"], p["rejected_pass_rate"]) for p in pairs} == {
        ("oss_1", "qwen_coder_2.5", 7 / 19)}
    stats = json.loads((out / "pairs_stats.json").read_text())
    assert (stats["candidate_pairs"], stats["pairs"], stats["rows_with_pairs"]) == (120, 15, 1)

    assert main(["data", "pairs", "--dataset", "sample", "-o", str(out)]) == 0  # every model
    stats = json.loads((out / "pairs_stats.json").read_text())
    assert (stats["candidate_pairs"], stats["pairs"]) == (5 * 120, 15)
    assert stats["pairs_per_model"] == {"qwen_coder_2.5": 15}


def test_openrlhf_reads_the_pairs(tmp_path):
    """OpenRLHF 0.11.2's reward-model dataset code, with --data.apply_chat_template --data.prompt_key prompt
    (the chosen/rejected keys are its defaults): the prompt is the chat up to the assistant's turn, chosen and
    rejected are that turn with each completion."""
    pytest.importorskip("openrlhf")
    from openrlhf.datasets.reward_dataset import preprocess_data

    from acecoder_rl.train.local.builtin_model import build_tokenizer

    tokenizer = build_tokenizer(["Write", "f."], [])  # ChatML
    (pair,) = row_pairs(_row(_inferences(("def f(x): return x", 1.0), ("def f(x): return 1", 0.5))),
                        PairRule(), PairOptions(), PairCounts())
    prompt, chosen, rejected, margin = preprocess_data(
        pair, prompt_key="prompt", chosen_key="chosen", rejected_key="rejected",
        apply_chat_template=tokenizer.apply_chat_template)
    assert prompt.startswith("<|im_start|>user\nPlease provide")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert chosen == "def f(x): return x<|im_end|>\n" and rejected == "def f(x): return 1<|im_end|>\n"
    assert margin == 0
