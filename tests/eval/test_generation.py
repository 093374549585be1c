"""Generation: backend selection, the prompts both backends see, and a tiny random model end to end."""

import json
import sys
import types

import pytest

from acecoder_rl.cli.app import main
from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.eval import generation
from acecoder_rl.eval.generation import GenerationSettings, generate, select_backend
from acecoder_rl.eval.problems import load_problems
from acecoder_rl.eval.prompts import encode_prompts


@pytest.mark.parametrize(
    ("vllm", "cuda", "requested", "chosen"),
    [
        (True, True, "auto", "vllm"),
        (True, False, "auto", "transformers"),  # vLLM needs a GPU
        (False, True, "auto", "transformers"),
        (False, False, "auto", "transformers"),
        (True, True, "transformers", "transformers"),
        (True, True, "vllm", "vllm"),
    ],
)
def test_backend_selection(monkeypatch, vllm, cuda, requested, chosen):
    monkeypatch.setattr(generation, "_has_vllm", lambda: vllm)
    monkeypatch.setattr(generation, "_has_cuda", lambda: cuda)
    assert select_backend(requested) == chosen


@pytest.mark.parametrize(("vllm", "cuda"), [(False, True), (True, False)])
def test_asking_for_vllm_without_it_is_an_error(monkeypatch, vllm, cuda):
    monkeypatch.setattr(generation, "_has_vllm", lambda: vllm)
    monkeypatch.setattr(generation, "_has_cuda", lambda: cuda)
    with pytest.raises(AcecoderError, match="needs the vllm package"):
        select_backend("vllm")


def test_this_machine_has_no_vllm():
    assert select_backend("auto") == "transformers"


@pytest.fixture
def fake_vllm(monkeypatch, chat_tokenizer):
    """A stand-in for the ``vllm`` module (the only faked boundary): records the calls our code makes.
    Samples are ``p<prompt>s<sample>``, or ``calls["text"]`` when a test sets it."""
    calls = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["sampling"] = kwargs

    class LLM:
        def __init__(self, **kwargs):
            calls["llm"] = kwargs

        def get_tokenizer(self):
            return chat_tokenizer

        def generate(self, prompts, params):
            calls["prompts"] = prompts
            n = calls["sampling"]["n"]
            return [
                types.SimpleNamespace(
                    outputs=[
                        types.SimpleNamespace(text=calls.get("text", f"p{i}s{j}"), token_ids=[7] * (j + 1))
                        for j in range(n)
                    ]
                )
                for i in range(len(prompts))
            ]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    monkeypatch.setattr(generation, "_has_vllm", lambda: True)
    monkeypatch.setattr(generation, "_has_cuda", lambda: True)
    return calls


def test_vllm_path_gets_prompt_ids_and_explicit_sampling(fake_vllm, chat_tokenizer, four_rows):
    problems = load_problems(str(four_rows))
    settings = GenerationSettings(n=3, temperature=0.7, top_p=0.9, max_new_tokens=64, seed=5)
    result = generate("some/model", problems, settings)
    assert result.backend == "vllm" and result.prompt_style == "chat"
    assert (
        result.completions == [[f"p{i}s{j}" for j in range(3)] for i in range(4)] and result.tokens == 4 * 6
    )
    assert fake_vllm["llm"] == {"model": "some/model", "seed": 5}
    assert fake_vllm["sampling"] == {"n": 3, "temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 5}
    expected, _ = encode_prompts(chat_tokenizer, problems)
    assert fake_vllm["prompts"] == [{"prompt_token_ids": ids} for ids in expected]


def test_generated_lone_surrogate_is_written_as_valid_json(fake_vllm, tmp_path, four_rows):
    fake_vllm["text"] = "def f():\n    return '\udcff'"  # a str UTF-8 cannot encode
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", str(four_rows), "--model", "some/model", "-o", str(out)]) == 0
    for name in ("completions.jsonl", "results.jsonl"):
        lines = (out / name).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 4 and all("\\udcff" in line for line in lines)
    generated = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert [g["completions"] for g in generated] == [[fake_vllm["text"]]] * 4


def test_chat_and_plain_prompts(chat_tokenizer, plain_tokenizer, four_rows):
    problems = load_problems(str(four_rows))
    ids, style = encode_prompts(chat_tokenizer, problems)
    text = chat_tokenizer.decode(ids[0])
    assert style == "chat" and text.startswith("<|im_start|>user\n" + problems[0].question)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    ids, style = encode_prompts(chat_tokenizer, problems, "plain")
    assert style == "plain" and chat_tokenizer.decode(ids[0]) == problems[0].question
    ids, style = encode_prompts(plain_tokenizer, problems)  # no template: the question as raw text
    assert style == "plain" and plain_tokenizer.decode(ids[1]) == problems[1].question
    with pytest.raises(AcecoderError, match="no chat template"):
        encode_prompts(plain_tokenizer, problems, "chat")


def test_settings_are_checked():
    with pytest.raises(UsageError, match="identical samples"):
        GenerationSettings(n=2, temperature=0.0)
    with pytest.raises(UsageError):
        GenerationSettings(top_p=0.0)


def test_tiny_model_end_to_end(tmp_path, tiny_model, four_rows):
    out = tmp_path / "out"
    argv = [
        "eval",
        "--benchmark",
        str(four_rows),
        "--model",
        str(tiny_model),
        "-n",
        "2",
        "--max-new-tokens",
        "12",
        "--batch-size",
        "3",
        "--seed",
        "1",
        "-o",
        str(out),
    ]
    assert main(argv) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert (summary["problems"], summary["n"], summary["k"], summary["samples"]) == (4, 2, [1], 8)
    assert (
        summary["pass@1"] == 0.0 and summary["correct_samples"] == 0 and summary["model"] == str(tiny_model)
    )
    assert sum(summary["statuses"].values()) == 8
    settings = summary["settings"]
    assert (settings["backend"], settings["prompt_style"], settings["temperature"]) == (
        "transformers",
        "chat",
        0.8,
    )
    assert 0 < settings["generated_tokens"] <= 8 * 12 and summary["timing_s"]["generation"] > 0

    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ["HumanEval/0", "HumanEval/1", "Mbpp/2", "Mbpp/3"]
    assert all(r["n"] == 2 and r["c"] == 0 and r["pass@1"] == 0.0 and len(r["samples"]) == 2 for r in results)
    assert all(len(s["test_results"]) == len(s["test_status"]) > 0 for r in results for s in r["samples"])

    # completions.jsonl is what --completions reads: re-scoring it gives the same verdicts.
    generated = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert [g["completions"] for g in generated] == [[s["completion"] for s in r["samples"]] for r in results]
    rescored = tmp_path / "rescored"
    assert (
        main(
            [
                "eval",
                "--benchmark",
                str(four_rows),
                "--completions",
                str(out / "completions.jsonl"),
                "-o",
                str(rescored),
            ]
        )
        == 0
    )
    again = [json.loads(line) for line in (rescored / "results.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in again] == [r["samples"] for r in results]

    # Same seed, same completions (here through the Python API).
    problems = load_problems(str(four_rows))
    repeat = generate(
        str(tiny_model),
        problems,
        GenerationSettings(n=2, temperature=0.8, max_new_tokens=12, batch_size=3, seed=1),
    )
    assert repeat.completions == [g["completions"] for g in generated]


def test_tiny_model_greedy_is_deterministic(tiny_model, four_rows):
    problems = load_problems(str(four_rows))[:2]
    settings = GenerationSettings(max_new_tokens=8, batch_size=1)
    first = generate(str(tiny_model), problems, settings, backend="transformers")
    again = generate(str(tiny_model), problems, GenerationSettings(max_new_tokens=8, batch_size=1, seed=9))
    assert first.completions == again.completions  # greedy: the seed plays no part
    assert first.prompt_style == "chat" and all(len(samples) == 1 for samples in first.completions)


def test_unloadable_model_is_a_one_line_error(tmp_path, four_rows, capsys):
    assert (
        main(
            [
                "eval",
                "--benchmark",
                str(four_rows),
                "--model",
                str(tmp_path / "no-model"),
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 1
    )
    assert "cannot load model" in capsys.readouterr().err
