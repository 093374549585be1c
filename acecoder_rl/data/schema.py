"""The AceCode-87K row schema and the checks that decide whether a row is usable for RL training.

A row reaches the trainer as ``context_messages`` (the prompt) and ``test_cases`` (the reward's asserts); the
hard subset also reads ``inferences[*].pass_rate``. A row that breaks any of these would crash or silently
mis-score a training step hours into a run, so every row is checked up front and each problem is reported as a
:class:`RowError` naming the row, the field and the problem.

Rules (decided here, on purpose):

* ``id``, ``source``, ``question`` must be non-empty strings; ``id`` must be unique in the dataset.
* ``test_cases`` must be a non-empty list of non-blank strings that each parse as Python (:func:`ast.parse`).
  A test need not be a single ``assert``: the reward counts a test as passed when it runs without raising, and
  a few upstream tests set up a name before asserting on one line.
* ``context_messages`` must be a non-empty flat list of ``{role, content}`` with a ``role`` in :data:`ROLES`
  and a string ``content``.
* ``inferences`` may be absent or null (rows from HumanEval/MBPP or user data have none) but, when present,
  must be a list of ``{model_name: str, completion_id: int, completion: str, pass_rate: float in [0, 1]}``.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

ROLES = frozenset({"system", "user", "assistant"})
REQUIRED_STR_FIELDS = ("id", "source", "question")
INFERENCE_KEYS = {"model_name": str, "completion_id": int, "completion": str}


def acecode_features():
    """The ``datasets`` features of an AceCode-87K row, in the order the upstream JSON gives them.

    Converted rows (HumanEval, MBPP+) are built with these so that they concatenate with real AceCode rows,
    and so that an empty ``inferences`` list still has a type.
    """
    from datasets import Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "source": Value("string"),
            "question": Value("string"),
            "test_cases": List(Value("string")),
            "inferences": List(
                {
                    "completion": Value("string"),
                    "completion_id": Value("int64"),
                    "model_name": Value("string"),
                    "pass_rate": Value("float64"),
                }
            ),
            "context_messages": List({"content": Value("string"), "role": Value("string")}),
        }
    )


class ErrorKind(str, Enum):
    """The closed set of problems a row can have. The value is what reports and JSON show."""

    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY = "empty"
    DUPLICATE_ID = "duplicate_id"
    TEST_SYNTAX = "test_syntax"
    BAD_ROLE = "bad_role"
    PASS_RATE_RANGE = "pass_rate_out_of_range"


@dataclass(frozen=True)
class RowError:
    """One problem in one row: the row (``row_id``, or ``index`` when the id is unusable), field and kind."""

    index: int
    row_id: str | None
    field: str
    kind: ErrorKind
    message: str

    @property
    def where(self) -> str:
        return f"row {self.row_id!r}" if self.row_id is not None else f"row #{self.index}"

    def __str__(self) -> str:
        return f"{self.where}: field {self.field}: {self.kind.value}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "kind": self.kind.value, "message": self.message}


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _RowChecker:
    """Collects the errors of one row; one instance per row so that the ``where`` part is filled in once."""

    def __init__(self, index: int, row_id: str | None) -> None:
        self.index = index
        self.row_id = row_id
        self.errors: list[RowError] = []

    def add(self, field: str, kind: ErrorKind, message: str) -> None:
        self.errors.append(RowError(self.index, self.row_id, field, kind, message))

    def expect(self, field: str, value: object, expected: type, *, required: bool = True) -> bool:
        """True when ``value`` has the expected type, else records the error (a bool is not an int here)."""
        if value is None:
            if required:
                self.add(field, ErrorKind.MISSING_FIELD, "is missing")
            return False
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            self.add(field, ErrorKind.WRONG_TYPE, f"expected {expected.__name__}, got {_type_name(value)}")
            return False
        return True

    def check_str_field(self, field: str, value: object) -> None:
        if self.expect(field, value, str) and not value.strip():
            self.add(field, ErrorKind.EMPTY, "is an empty string")

    def check_tests(self, tests: object) -> None:
        if not self.expect("test_cases", tests, list):
            return
        if not tests:
            self.add("test_cases", ErrorKind.EMPTY, "has no tests")
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": valid code, not our concern here
            warnings.simplefilter("ignore")
            for i, test in enumerate(tests):
                field = f"test_cases[{i}]"
                if not self.expect(field, test, str):
                    continue
                if not test.strip():
                    self.add(field, ErrorKind.EMPTY, "is a blank test")
                    continue
                try:
                    ast.parse(test)
                except (SyntaxError, ValueError, RecursionError) as exc:  # ValueError: a NUL byte
                    self.add(field, ErrorKind.TEST_SYNTAX, f"does not parse as Python ({exc})")

    def check_messages(self, messages: object) -> None:
        if not self.expect("context_messages", messages, list):
            return
        if not messages:
            self.add("context_messages", ErrorKind.EMPTY, "has no messages")
        for i, message in enumerate(messages):
            field = f"context_messages[{i}]"
            if not self.expect(field, message, dict):
                continue
            role, content = message.get("role"), message.get("content")
            if self.expect(f"{field}.role", role, str) and role not in ROLES:
                self.add(f"{field}.role", ErrorKind.BAD_ROLE, f"{role!r} is not one of {sorted(ROLES)}")
            self.expect(f"{field}.content", content, str)

    def check_inferences(self, inferences: object) -> None:
        if not self.expect("inferences", inferences, list, required=False):
            return
        for i, inference in enumerate(inferences):
            field = f"inferences[{i}]"
            if not self.expect(field, inference, dict):
                continue
            for key, expected in INFERENCE_KEYS.items():
                self.expect(f"{field}.{key}", inference.get(key), expected)
            rate = inference.get("pass_rate")
            if isinstance(rate, int) and not isinstance(rate, bool):
                rate = float(rate)
            if self.expect(f"{field}.pass_rate", rate, float) and not (
                0.0 <= rate <= 1.0 and math.isfinite(rate)
            ):
                self.add(f"{field}.pass_rate", ErrorKind.PASS_RATE_RANGE, f"{rate!r} is outside [0, 1]")


def validate_row(row: Mapping[str, Any], index: int, seen_ids: set[str] | None = None) -> list[RowError]:
    """All problems of one row (empty list when it is usable).

    ``index`` is the row's position in the dataset; it identifies the row when its ``id`` is missing or not a
    string. Pass the same ``seen_ids`` set for every row of a dataset to flag repeated ids (the later rows are
    flagged).
    """
    raw_id = row.get("id")
    checker = _RowChecker(index, raw_id if isinstance(raw_id, str) and raw_id.strip() else None)
    for field in REQUIRED_STR_FIELDS:
        checker.check_str_field(field, row.get(field))
    if checker.row_id is not None and seen_ids is not None:
        if checker.row_id in seen_ids:
            checker.add("id", ErrorKind.DUPLICATE_ID, "appears in an earlier row")
        seen_ids.add(checker.row_id)
    checker.check_tests(row.get("test_cases"))
    checker.check_messages(row.get("context_messages"))
    checker.check_inferences(row.get("inferences"))
    return checker.errors
