"""Reading a step's input and writing its output so that an interrupted run resumes where it stopped.

Input: a JSON Lines file is read line by line (memory stays flat, and an error names ``FILE:LINE``);
anything else :func:`acecoder_rl.data.load_acecode` reads (``sample``, parquet, a Hub name) is read through
it (an error names the row's position).

Output: each step appends one line per finished input row (:class:`JsonlAppender`) and flushes after each
chunk, so a rerun with the same ``-o`` finds the ids already written and skips them. A line cut short by a
crash is the last line of its file; it is removed and that row redone. The settings that decide the output
(model, sampling, thresholds) are kept next to it, and a rerun with other settings is refused rather than
mixing two runs in one file (:func:`check_settings`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from acecoder_rl.data.schema import validate_row
from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.jsonl import parse_object, read_objects, to_json

T = TypeVar("T")


def iter_rows(source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of ``source``; ``where`` starts error messages about the row."""
    path = Path(source).expanduser()
    if path.suffix == ".jsonl" and path.is_file():
        for lineno, row in read_objects(path):
            yield f"{path}:{lineno}", row
        return
    from acecoder_rl.data.loading import load_acecode

    for index, row in enumerate(load_acecode(source)):
        yield f"{source} row #{index}", row


def iter_acecode_rows(source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """:func:`iter_rows` for steps that need AceCode rows: the first row that breaks the schema
    (:mod:`acecoder_rl.data.schema`: tests that parse, messages, inferences) or repeats an id stops the run,
    naming the row and the field, before any work is spent on it."""
    seen: set[str] = set()
    for index, (where, row) in enumerate(iter_rows(source)):
        errors = validate_row(row, index, seen)
        if errors:
            raise AcecoderError(f"{where}: {errors[0]}")
        yield where, row


class JsonlAppender:
    """A JSON Lines output that a rerun appends to: :attr:`done` holds the ids its lines already have."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists():
            self._load()
        self._handle = path.open("a", encoding="utf-8")

    def _load(self) -> None:
        with self.path.open("rb") as handle:
            lines = handle.readlines()
        if lines and not lines[-1].endswith(b"\n"):  # a crash while writing the last row
            with self.path.open("r+b") as handle:
                if _is_row(lines[-1]):  # all of it but the line break
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"\n")
                else:  # cut short: that row is redone
                    handle.truncate(sum(len(line) for line in lines[:-1]))
                    lines.pop()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{self.path}:{lineno}"
            try:
                row = parse_object(line.decode("utf-8"), where)
            except UnicodeDecodeError:
                raise AcecoderError(f"{where}: not UTF-8; this file was not written by acecoder-rl") from None
            if not isinstance(row.get("id"), str):
                raise AcecoderError(f"{where}: no string 'id'; this file was not written by acecoder-rl")
            self.done.add(row["id"])

    def write(self, row: dict[str, Any]) -> None:
        self._handle.write(to_json(row) + "\n")
        self.done.add(row["id"])

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _is_row(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:  # not JSON, not UTF-8
        return False


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file this package wrote (none when it does not exist)."""
    if path.exists():
        for _, row in read_objects(path):
            yield row


def check_settings(out_dir: Path, step: str, settings: dict[str, Any]) -> None:
    """Record the settings of a step's run in ``OUT_DIR/<step>_settings.json``, or refuse to resume a run
    that was made with others."""
    path = out_dir / f"{step}_settings.json"
    settings = json.loads(to_json(settings))  # tuples as lists: what the file gives back
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in set(before) | set(settings) if before.get(key) != settings.get(key))
        if changed:
            shown = ", ".join(f"{key} {before.get(key)!r} -> {settings.get(key)!r}" for key in changed)
            raise UsageError(
                f"{out_dir} holds a {step} run made with other settings ({shown}); rerun with the same "
                "options to resume it, or give another -o"
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, settings)


def write_json(path: Path, value: Any) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(to_json(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


class _NoBar:
    def update(self, _count: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, description: str, enabled: bool = True) -> Any:
    """A tqdm bar on stderr over ``total`` rows (a no-op without tqdm, or when not ``enabled``)."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=description, unit="row", file=sys.stderr, dynamic_ncols=True)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), read lazily."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def pending_acecode_rows(
    source: str, done: set[str], check: Callable[[str, dict[str, Any]], object] | None = None
) -> tuple[int, Iterator[tuple[str, dict[str, Any]]]]:
    """How many rows of ``source`` are not ``done``, and those rows, read lazily. Counting reads (and checks,
    with ``check(where, row)`` too) the whole input first, so that a malformed row stops the run before any
    work is spent."""
    count = 0
    for where, row in iter_acecode_rows(source):
        if row["id"] not in done:
            count += 1
            if check is not None:
                check(where, row)
    return count, ((where, row) for where, row in iter_acecode_rows(source) if row["id"] not in done)
