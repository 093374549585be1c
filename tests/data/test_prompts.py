"""System-prompt injection."""

from __future__ import annotations

import datasets
import pytest

from acecoder_rl.data import SYSTEM_PROMPTS, add_system_prompt
from acecoder_rl.data.prompts import R1_SYSTEM_PROMPT, with_system_prompt
from acecoder_rl.data.schema import acecode_features
from acecoder_rl.errors import UsageError


def test_r1_prompt_asks_for_think_and_answer_tags():
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert tag in R1_SYSTEM_PROMPT
    assert set(SYSTEM_PROMPTS) == {"none", "r1"}


def test_r1_prepends_a_system_message(make_row):
    ds = datasets.Dataset.from_list([make_row("a"), make_row("b")], features=acecode_features())
    out = add_system_prompt(ds, "r1")
    for before, after in zip(ds["context_messages"], out["context_messages"], strict=True):
        assert after[0] == {"role": "system", "content": R1_SYSTEM_PROMPT}
        assert after[1:] == [{"role": m["role"], "content": m["content"]} for m in before]


def test_none_leaves_rows_alone(make_row):
    ds = datasets.Dataset.from_list([make_row("a")], features=acecode_features())
    assert add_system_prompt(ds, "none") is ds


def test_an_existing_system_message_is_merged_not_duplicated():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}]
    assert with_system_prompt(messages, "P") == [
        {"role": "system", "content": "P\n\nBe brief."},
        {"role": "user", "content": "q"},
    ]


def test_unknown_prompt_is_usage_error(make_row):
    ds = datasets.Dataset.from_list([make_row("a")], features=acecode_features())
    with pytest.raises(UsageError, match="unknown system prompt 'r2'"):
        add_system_prompt(ds, "r2")
