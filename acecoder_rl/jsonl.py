"""JSON Lines from and for users: one object per line, errors that name the file and line, and output that
any text can be written in."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acecoder_rl.errors import AcecoderError


def to_json(value: Any, indent: int | None = None) -> str:
    """``json.dumps`` that leaves non-ASCII text readable, unless the text holds a lone surrogate.

    A ``"\\udcff"`` escape in a user's JSON, or a file name that is not UTF-8, gives a string that UTF-8
    cannot encode: writing it as is would fail and lose the file. Escaped (``ensure_ascii``), it is valid
    JSON that ``json.loads`` reads back to the same string.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, indent=indent)
    return text


def _load_object(line: str) -> tuple[dict | None, str | None]:
    """(the object, None), or (None, why ``line`` is not one JSON object)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        at = "" if exc.msg.endswith(" at") else " at"  # "Invalid control character at": the column follows
        return None, f"not valid JSON ({exc.msg}{at} column {exc.colno})"
    if not isinstance(row, dict):
        return None, f"expected a JSON object, got {type(row).__name__}"
    return row, None


def parse_object(line: str, where: str) -> dict:
    """One line as a JSON object; ``where`` (``file:line``) starts every error message."""
    row, problem = _load_object(line)
    if row is None:
        raise AcecoderError(f"{where}: {problem}")
    return row


def _decode(line: bytes) -> tuple[str | None, str | None]:
    """(the text without its line break, so that columns are the line's own; None), or (None, why ``line`` is
    not UTF-8)."""
    try:
        return line.decode("utf-8").rstrip("\r\n"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {line[exc.start]:#04x} at byte offset {exc.start})"


def line_problem(line: bytes) -> str | None:
    """Why one line of a JSON Lines file is not a JSON object in UTF-8 (None when it is one)."""
    text, problem = _decode(line)
    return problem if text is None else _load_object(text)[1]


def read_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of ``path``."""
    with path.open("rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                text, problem = _decode(line)
                if text is None:
                    raise AcecoderError(f"{path}:{lineno}: {problem}")
                yield lineno, parse_object(text, f"{path}:{lineno}")
