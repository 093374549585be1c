"""Fixtures for the evaluation tests: Hugging Face offline, benchmark files, and a tiny random chat model."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from acecoder_rl.data.bundled import HUMANEVAL, MBPPPLUS, converted_rows

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(autouse=True)
def _offline(hf_offline) -> None:
    """Apply the shared ``hf_offline`` fixture to every test here."""


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(name="write_jsonl")
def write_jsonl_fixture() -> Callable[[Path, list[dict]], Path]:
    """``write_jsonl(path, rows)``: one JSON line per row; returns ``path``."""
    return write_jsonl


@pytest.fixture(scope="session")
def humaneval_problems() -> list[dict]:
    with gzip.open(HUMANEVAL, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def mbppplus_problems() -> list[dict]:
    return [json.loads(line) for line in MBPPPLUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def four_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user dataset (AceCode row format): two HumanEval and two MBPP+ rows."""
    rows = converted_rows("humaneval")[:2] + converted_rows("mbppplus")[:2]
    return write_jsonl(tmp_path_factory.mktemp("data") / "four.jsonl", rows)


def build_tokenizer(chat_template: str | None):
    """A byte-level BPE tokenizer trained here on a few lines of code (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\n", "Write a Python function.\n"]
    tokenizer.train_from_iterator(corpus * 10, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template,
    )


@pytest.fixture(scope="session")
def chat_tokenizer():
    return build_tokenizer(CHAT_TEMPLATE)


@pytest.fixture(scope="session")
def plain_tokenizer():
    return build_tokenizer(None)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Qwen2 chat model saved with ``save_pretrained``: loads through the real
    ``from_pretrained``, generates garbage quickly."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path = tmp_path_factory.mktemp("tiny-qwen2")
    tokenizer = build_tokenizer(CHAT_TEMPLATE)
    tokenizer.save_pretrained(path)  # loads back through AutoTokenizer, chat template included
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
    return path
