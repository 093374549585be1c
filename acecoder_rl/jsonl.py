"""Reading JSON Lines written by users: one object per line, errors that name the file and line."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from acecoder_rl.errors import AcecoderError


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
