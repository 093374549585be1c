"""The problems an evaluation runs on: a benchmark name or any AceCode-format dataset, validated up front.

Every benchmark is read through :func:`acecoder_rl.data.load_acecode`, so HumanEval, MBPP+ and user data
reach the model and the reward engine in one shape (AceCode rows: ``question``, ``context_messages``,
``test_cases``). A malformed row is an error here, before any minute is spent generating.
"""

from __future__ import annotations

from dataclasses import dataclass

from acecoder_rl.errors import AcecoderError

#: ``--benchmark`` names -> the ``load_acecode`` source they stand for. Anything else is passed through.
BENCHMARKS = {"humaneval": "humaneval", "mbppplus": "mbppplus", "acecode-sample": "sample"}
_COLUMNS = ("id", "source", "question", "context_messages", "test_cases")


@dataclass(frozen=True)
class Problem:
    """One evaluation problem: the prompt in both forms and the asserts that decide it."""

    id: str
    question: str
    messages: tuple[dict[str, str], ...]
    tests: tuple[str, ...]


def load_problems(benchmark: str) -> list[Problem]:
    """The problems of ``benchmark`` (a :data:`BENCHMARKS` name or any ``load_acecode`` source), in order."""
    from acecoder_rl.data import load_acecode, validate_rows

    dataset = load_acecode(BENCHMARKS.get(benchmark, benchmark))
    missing = [column for column in _COLUMNS if column not in dataset.column_names]
    if missing:
        raise AcecoderError(
            f"benchmark {benchmark!r} is not in the AceCode row format: no column(s) " + ", ".join(missing)
        )
    try:
        dataset, _ = validate_rows(dataset.select_columns(list(_COLUMNS)), on_error="fail")
    except AcecoderError as exc:
        raise AcecoderError(f"benchmark {benchmark!r}: {exc}") from None
    if len(dataset) == 0:
        raise AcecoderError(f"benchmark {benchmark!r} has no rows")
    return [
        Problem(
            id=row["id"],
            question=row["question"],
            messages=tuple({"role": m["role"], "content": m["content"]} for m in row["context_messages"]),
            tests=tuple(row["test_cases"]),
        )
        for row in dataset
    ]
