"""Training rows for TRL: the prompt column renamed, the tests column kept, too-long prompts left out."""
from __future__ import annotations

import json

import pytest

from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import DataSection
from acecoder_rl.train.local.builtin_model import build_tokenizer
from acecoder_rl.train.local.data import load_training_rows


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(["Write", "a", "Python", "function"], ["def f(x): return x\n"])


def test_quickstart_rows_for_trl(tokenizer):
    rows = load_training_rows(DataSection(path="builtin:quickstart"), tokenizer)
    assert rows.dataset.column_names == ["prompt", "test_cases"] and rows.tests_column == "test_cases"
    assert len(rows.dataset) == 12 and rows.too_long == 0
    assert rows.dataset[0]["prompt"][0]["role"] == "user"


def test_own_columns_max_samples_and_prompt_length(tokenizer, tmp_path, hf_offline):
    path = tmp_path / "train.jsonl"
    rows = [{"id": str(i), "messages": [{"role": "user", "content": "Write a Python function " * (i + 1)}],
             "asserts": ["assert True"]} for i in range(5)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = DataSection(path=str(path), input_key="messages", label_key="asserts", max_samples=4,
                       prompt_max_len=20)
    loaded = load_training_rows(data, tokenizer)
    assert loaded.dataset.column_names == ["prompt", "asserts"] and loaded.tests_column == "asserts"
    # Row i has 4 (i + 1) words and the chat template adds 7 tokens: rows 0-2 fit in 20, row 3 does not.
    assert len(loaded.dataset) == 3 and loaded.too_long == 1
    with pytest.raises(AcecoderError, match="data.label_key: .* has no column 'tests'"):
        load_training_rows(DataSection(path=str(path), input_key="messages", label_key="tests"), tokenizer)
    with pytest.raises(AcecoderError, match="no rows .* to train on"):
        load_training_rows(DataSection(path=str(path), input_key="messages", label_key="asserts",
                                       prompt_max_len=5), tokenizer)
