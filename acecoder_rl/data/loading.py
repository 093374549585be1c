"""Load AceCode-style rows from any source into a ``datasets.Dataset``, and drop (but count) malformed rows.

Every local format goes through the ``datasets`` loaders themselves (``json``/``parquet``/``arrow`` builders,
``load_from_disk``), so data prepared here is read exactly as the trainer's ``datasets`` code will read it,
and large files are memory-mapped rather than held in Python objects.

A line of a JSON Lines file that is no JSON object stops the ``datasets`` JSON reader with an error that names
neither the file's line nor, often, the problem. Only then is the file read here line by line to find such
lines: one is the error, or, when the caller keeps a list of them, they are left out of a copy that the same
loader reads, and reported with the malformed rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

from acecoder_rl.data.bundled import ACECODE_SAMPLE, BUNDLED_FILES, converted_rows
from acecoder_rl.data.schema import RowError, acecode_features, validate_row
from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.jsonl import line_problem

if TYPE_CHECKING:
    from datasets import Dataset

#: File suffix -> ``datasets`` packaged builder that reads it.
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".arrow": "arrow"}

OnError = Literal["skip", "fail"]
#: The kind of a :class:`LineError` in reports, next to the row errors' :class:`~acecoder_rl.data.ErrorKind`.
MALFORMED_LINE = "malformed_line"


@dataclass(frozen=True)
class LineError:
    """A line of a JSON Lines file that is not one JSON object, which ``datasets`` cannot read nor name."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.path, "line": self.line, "kind": MALFORMED_LINE, "message": self.message}


def is_local_source(source: str) -> bool:
    """Whether ``source`` is a local path (existing, or path-shaped) rather than a bundled or Hub name."""
    if source in BUNDLED_FILES:
        return False
    return (
        Path(source).expanduser().exists()
        or source.startswith((".", "/", "~"))
        or Path(source).suffix in FILE_BUILDERS
    )


def load_acecode(
    source: str,
    split: str = "train",
    *,
    cache_dir: str | None = None,
    bad_lines: list[LineError] | None = None,
) -> Dataset:
    """Load AceCode rows from ``source``.

    ``source`` is one of: ``sample`` (the bundled real AceCode-87K row), ``humaneval`` / ``mbppplus`` (the
    bundled benchmarks converted to AceCode rows), a local ``.jsonl``/``.json``/``.parquet``/``.arrow`` file,
    a directory written by ``Dataset.save_to_disk`` (or ``DatasetDict.save_to_disk``: ``split`` picks the
    split), or else a Hugging Face Hub dataset name such as ``TIGER-Lab/AceCode-87K``. ``split`` names the
    split for Hub datasets and ``DatasetDict`` directories; a single local file is its own ``split``.
    ``cache_dir`` overrides the ``datasets`` cache for the file and Hub loaders.

    A JSON Lines file with a line that is not a JSON object raises :class:`AcecoderError` naming the file and
    the first such line; with a ``bad_lines`` list, those lines are left out and appended to it instead (pass
    it on to :func:`validate_rows`, which reports them with the malformed rows). Rows are returned as read;
    call :func:`validate_rows` before trusting them.
    """
    import datasets

    if source == "sample":
        return _load_file(ACECODE_SAMPLE, split, cache_dir, bad_lines)
    if source in BUNDLED_FILES:
        return datasets.Dataset.from_list(converted_rows(source), features=acecode_features(), split=split)
    if is_local_source(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise AcecoderError(f"dataset path {source!r} does not exist")
        if path.is_dir():
            return _load_directory(path, split)
        return _load_file(path, split, cache_dir, bad_lines)
    try:
        loaded = datasets.load_dataset(source, split=split, cache_dir=cache_dir)
    # ConnectionError, DatasetNotFoundError, FileNotFoundError, unknown split: all OSError or ValueError.
    except (OSError, ValueError) as exc:
        raise AcecoderError(
            f"{source!r} is not a bundled name ({', '.join(BUNDLED_FILES)}) or a local path, "
            f"and loading it from the Hugging Face Hub failed: {exc}"
        ) from exc
    return _expect_dataset(loaded, source)


def _load_file(path: Path, split: str, cache_dir: str | None, bad_lines: list[LineError] | None) -> Dataset:
    builder = FILE_BUILDERS.get(path.suffix)
    if builder is None:
        raise UsageError(
            f"cannot read {str(path)!r}: expected one of {', '.join(FILE_BUILDERS)} or a directory"
        )
    try:
        return _expect_dataset(_run_builder(builder, path, split, cache_dir), str(path))
    except _builder_errors() as exc:
        failure = exc
    # Find the lines at fault (see the module's docstring).
    if builder != "json" or not _is_json_lines(path):
        _raise_document_error(path, builder, failure)
    found = list(islice(_malformed_lines(path), 1 if bad_lines is None else None))  # one is enough to fail
    if not found:
        raise AcecoderError(f"cannot read {str(path)!r} as {builder}: {_first_line(failure)}") from failure
    if bad_lines is None:
        raise AcecoderError(str(found[0])) from None
    bad_lines.extend(found)
    skipped = {error.line for error in found}
    with tempfile.TemporaryDirectory(prefix="acecoder-rl-") as tmp:
        kept = Path(tmp) / path.name
        with path.open("rb") as source, kept.open("wb") as sink:
            sink.writelines(line for number, line in enumerate(source, 1) if number not in skipped)
        try:
            # The rows are copied into the ``datasets`` cache: the copy may go once loaded.
            loaded = _run_builder(builder, kept, split, cache_dir)
        except _builder_errors() as exc:
            raise AcecoderError(
                f"cannot read {str(path)!r} as {builder} without its {len(skipped)} malformed line(s): "
                f"{_first_line(exc)}"
            ) from exc
    return _expect_dataset(loaded, str(path))


def _builder_errors() -> tuple[type[Exception], ...]:
    """What a ``datasets`` file builder raises on a file it cannot read; evaluated only once one is raised."""
    import datasets
    import pyarrow as pa

    # ValueError: also pyarrow's ArrowInvalid and the pandas JSON reader's errors, raised before any row.
    return datasets.exceptions.DatasetGenerationError, pa.ArrowException, ValueError


def _run_builder(builder: str, path: Path, split: str, cache_dir: str | None) -> object:
    import datasets

    with _quiet_logger(f"datasets.packaged_modules.{builder}.{builder}"):
        loaded = datasets.load_dataset(
            builder, data_files={split: str(path)}, split=split, cache_dir=cache_dir
        )
    if builder == "json" and isinstance(loaded, datasets.Dataset):
        # pyarrow's JSON reader lets bytes that are not UTF-8 through, to fail when a row is read: check now.
        loaded.data.table.validate(full=True)
    return loaded


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence one logger for a while: a ``datasets`` builder logs the error it then raises (a 2nd line)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message (``datasets`` adds paragraphs of context), cause first."""
    cause = exc.__cause__ or exc
    return next((line for line in str(cause).splitlines() if line.strip()), type(cause).__name__)


def _is_json_lines(path: Path) -> bool:
    """A ``.jsonl`` file, or a ``.json`` one whose first non-blank line is a JSON object by itself."""
    if path.suffix == ".jsonl":
        return True
    with path.open("rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    return line_problem(first) is None


def _malformed_lines(path: Path) -> Iterator[LineError]:
    """The lines of a JSON Lines file that are no row, in order (blank lines are not rows at all)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip() and (problem := line_problem(line) or _surrogate_problem(line)) is not None:
                yield LineError(str(path), number, problem)


def _surrogate_problem(line: bytes) -> str | None:
    """Why a line that is one JSON object is still no row: a string with an unpaired surrogate escape, valid
    JSON that pyarrow refuses, as it is no Unicode text (None when there is none)."""
    if b"\\u" not in line:
        return None
    try:
        json.dumps(json.loads(line), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "a string holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text"
    return None


def _raise_document_error(path: Path, builder: str, failure: Exception) -> NoReturn:
    """The error for a whole-document file (``.json`` array or object, parquet, arrow) that did not load."""
    if builder == "json":
        try:
            json.loads(path.read_bytes())
        except json.JSONDecodeError as exc:
            raise AcecoderError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
        except UnicodeDecodeError as exc:
            raise AcecoderError(f"{path}: not UTF-8 text ({exc.reason} at byte offset {exc.start})") from None
    raise AcecoderError(f"cannot read {str(path)!r} as {builder}: {_first_line(failure)}") from failure


def _load_directory(path: Path, split: str) -> Dataset:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise AcecoderError(
            f"{str(path)!r} is a directory but not one written by save_to_disk: {exc}"
        ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise AcecoderError(f"{str(path)!r} has no split {split!r} (it has: {', '.join(loaded)})")
        loaded = loaded[split]
    return _expect_dataset(loaded, str(path))


def _expect_dataset(loaded: object, source: str) -> Dataset:
    import datasets

    if not isinstance(loaded, datasets.Dataset):
        raise AcecoderError(f"{source!r} did not load as a single table (got {type(loaded).__name__})")
    return loaded


def source_fingerprint(source: str, dataset: Dataset) -> str:
    """A digest that changes whenever the rows :func:`load_acecode` would return for ``source`` may change.

    Bundled and local sources are hashed by content (every file of a ``save_to_disk`` directory, with its
    relative name). A Hub dataset is identified by the fingerprint ``datasets`` gives the loaded table, which
    is derived from its cached files and revision; nothing is downloaded to compute it.
    """
    if source in BUNDLED_FILES:
        return "sha256:" + _sha256_files([BUNDLED_FILES[source]], BUNDLED_FILES[source].parent)
    if is_local_source(source):
        path = Path(source).expanduser()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        return "sha256:" + _sha256_files(files, path if path.is_dir() else path.parent)
    return f"datasets:{dataset._fingerprint}"


def _sha256_files(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        # fsencode: the name's own bytes, also for a name that is not UTF-8 (same digest for one that is).
        digest.update(os.fsencode(f"{file.relative_to(root).as_posix()}\0{file.stat().st_size}\0"))
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ValidationReport:
    """What :func:`validate_rows` kept and skipped. ``skipped`` maps row index -> that row's errors;
    ``bad_lines`` are the file's lines that were no rows at all. ``rows_in`` counts both."""

    rows_in: int
    skipped: dict[int, list[RowError]] = field(default_factory=dict)
    bad_lines: list[LineError] = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        return len(self.skipped) + len(self.bad_lines)

    @property
    def rows_kept(self) -> int:
        return self.rows_in - self.rows_skipped

    def problems(self) -> list[str]:
        """One line per problem: the malformed lines, then every error of every skipped row."""
        return [str(line) for line in self.bad_lines] + [
            str(error) for errors in self.skipped.values() for error in errors
        ]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: one entry per skipped row with its id (null when unusable), index and every error, and
        one per malformed line with its file, line number and reason."""
        return {
            "rows_in": self.rows_in,
            "rows_skipped": self.rows_skipped,
            "skipped_rows": [
                {"index": index, "id": errors[0].row_id, "errors": [error.to_dict() for error in errors]}
                for index, errors in self.skipped.items()
            ],
            "skipped_lines": [line.to_dict() for line in self.bad_lines],
        }


def validate_rows(
    dataset: Dataset,
    on_error: OnError = "skip",
    *,
    bad_lines: Sequence[LineError] = (),
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Check every row against :mod:`acecoder_rl.data.schema`; return the valid rows and a report.

    ``on_error="skip"`` drops malformed rows and lists each in the report (never silently); ``"fail"`` raises
    :class:`AcecoderError` naming the first bad row, its field and the problem. ``bad_lines`` are the lines
    :func:`load_acecode` left out of ``dataset``: counted and listed as skipped rows (or, with ``"fail"``,
    the first is the error). ``progress`` is called with the number of rows checked after each batch.

    Rows are read batch by batch and errors are gathered in plain Python rather than inside
    ``Dataset.filter``: a cached ``filter`` would not re-run the function, and the report would lose the
    errors.
    """
    if on_error not in ("skip", "fail"):
        raise UsageError(f"on_error must be 'skip' or 'fail', not {on_error!r}")
    if bad_lines and on_error == "fail":
        raise AcecoderError(str(bad_lines[0]))
    report = ValidationReport(rows_in=len(dataset) + len(bad_lines), bad_lines=list(bad_lines))
    seen_ids: set[str] = set()
    index = 0
    for batch in dataset.iter(batch_size=batch_size):
        size = len(next(iter(batch.values()))) if batch else 0
        for offset in range(size):
            row = {column: values[offset] for column, values in batch.items()}
            errors = validate_row(row, index, seen_ids)
            if errors:
                if on_error == "fail":
                    raise AcecoderError(f"malformed row: {errors[0]}")
                report.skipped[index] = errors
            index += 1
        if progress is not None:
            progress(size)
    if report.skipped:
        dataset = dataset.select([i for i in range(len(dataset)) if i not in report.skipped])
    return _with_canonical_types(dataset), report


def _with_canonical_types(dataset: Dataset) -> Dataset:
    """Give JSON-typed AceCode columns their real types back once only valid rows are left.

    The ``json`` loader types a column that mixes types (say, one row with a string ``test_cases``) as opaque
    JSON, which later steps cannot read through Arrow. After the bad rows are gone, the rest conform to the
    schema and are re-encoded with the canonical types (extra keys dropped). Other columns are left as they
    are, so in the usual case nothing is rewritten.
    """
    from datasets.features import Json

    def has_json(feature: object) -> bool:
        if isinstance(feature, Json):
            return True
        if isinstance(feature, dict):
            return any(has_json(inner) for inner in feature.values())
        return has_json(feature.feature) if hasattr(feature, "feature") else False

    canonical = acecode_features()
    retyped = [c for c in dataset.column_names if c in canonical and has_json(dataset.features[c])]
    if not retyped:
        return dataset
    features = dataset.features.copy()
    features.update({column: canonical[column] for column in retyped})
    return dataset.map(
        lambda batch: {column: [_conform(v, canonical[column]) for v in batch[column]] for column in retyped},
        batched=True,
        features=features,
        desc="normalising column types",
    )


def _conform(value: object, feature: object) -> object:
    """``value`` cut to the shape of ``feature``: struct keys it does not declare are dropped."""
    if value is None:
        return None
    if isinstance(feature, dict):
        return {key: _conform(value.get(key), inner) for key, inner in feature.items()}
    if hasattr(feature, "feature"):  # List / LargeList
        return [_conform(item, feature.feature) for item in value]
    return value
