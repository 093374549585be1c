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


def parse_object(line: str, where: str) -> dict:
    """One line as a JSON object; ``where`` (``file:line``) starts every error message."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AcecoderError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise AcecoderError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def read_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of ``path``."""
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                yield lineno, parse_object(line, f"{path}:{lineno}")
