"""Validation of the service's JSON bodies: every problem is a :class:`RequestError` naming the field.

Shared by the HTTP server (which turns a ``RequestError`` into a 400 with ``{"error", "field"}``) and by the
OpenRLHF protocol helpers. Pure functions, no web framework imported here.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from acecoder_rl.reward import labels
from acecoder_rl.reward.labels import Tests


class RequestError(ValueError):
    """A malformed request; ``field`` names the offending field or element (``"labels[3]"``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict:
        return {"error": str(self), "field": self.field}


def require_object(payload: object) -> dict:
    if not isinstance(payload, dict):
        raise RequestError(f"the request body must be a JSON object, got {json_type(payload)}")
    return payload


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def string_list(payload: dict, key: str) -> list[str]:
    """``payload[key]`` as a list of strings (required)."""
    if key not in payload:
        raise RequestError(f"missing field '{key}'", key)
    value = payload[key]
    if not isinstance(value, list):
        raise RequestError(f"field '{key}' must be an array of strings, got {json_type(value)}", key)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RequestError(f"{key}[{i}] must be a string, got {json_type(item)}", f"{key}[{i}]")
    return value


def parse_tests(value: object, field: str) -> Tests:
    """One program's tests: assert strings or a tests object, also as a JSON string (``labels.parse_tests``)."""
    try:
        return labels.parse_tests(value, field)
    except labels.LabelError as exc:
        raise RequestError(str(exc), exc.field) from None


def same_length(**columns: Sequence) -> None:
    sizes = {name: len(col) for name, col in columns.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{len_} {name}" for name, len_ in sizes.items())
        raise RequestError(f"the arrays must have the same length, got {desc}", ",".join(sizes))


SCORE_FIELDS = ("completions", "test_cases")


def parse_score_request(payload: object) -> tuple[list[str], list[list[str]]]:
    """``POST /v1/score`` body ``{"completions": [str], "test_cases": [[str]]}`` -> the two columns.

    Unknown top-level keys are rejected (a typo such as ``test_case`` fails loudly instead of scoring nothing).
    """
    body = require_object(payload)
    unknown = sorted(set(body) - set(SCORE_FIELDS))
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(map(repr, unknown))}; expected 'completions' and "
                           "'test_cases'", unknown[0])
    completions = string_list(body, "completions")
    if "test_cases" not in body:
        raise RequestError("missing field 'test_cases'", "test_cases")
    raw_tests = body["test_cases"]
    if not isinstance(raw_tests, list):
        raise RequestError(f"field 'test_cases' must be an array of arrays of strings, got {json_type(raw_tests)}",
                           "test_cases")
    tests = [parse_tests(t, f"test_cases[{i}]") for i, t in enumerate(raw_tests)]
    same_length(completions=completions, test_cases=tests)
    return completions, tests


def decode_json_list(text: str, field: str) -> object:
    """A label sent as a JSON string: decode it, with the error naming ``field``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"{field} is a string but not a JSON array of tests ({exc})"[:300], field) from None
