"""Fixtures for the data-pipeline tests: every test runs with the Hugging Face libraries offline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from acecoder_rl.data.bundled import ACECODE_SAMPLE


@pytest.fixture(autouse=True)
def _offline(hf_offline) -> None:
    """Apply the shared ``hf_offline`` fixture to every test here."""


@pytest.fixture(scope="session")
def sample_row() -> dict[str, Any]:
    """The real AceCode-87K row ``oss_1``, as parsed JSON."""
    return json.loads(ACECODE_SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def make_row(sample_row: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """A small valid row (id ``row_id``) built from the real one; keyword arguments replace fields."""

    def build(row_id: str = "r0", **fields: Any) -> dict[str, Any]:
        row = {
            "id": row_id,
            "source": "oss",
            "question": sample_row["question"],
            "test_cases": sample_row["test_cases"][:2],
            "inferences": sample_row["inferences"][:2],
            "context_messages": sample_row["context_messages"],
        }
        row.update(fields)
        return row

    return build


@pytest.fixture
def write_jsonl() -> Callable[[Path, Iterable[dict[str, Any]]], Path]:
    def write(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path

    return write
