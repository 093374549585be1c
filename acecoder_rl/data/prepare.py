"""The ``prepare`` pipeline: AceCode rows in, OpenRLHF-ready training files out.

load -> validate -> (hard subset) -> (decontaminate) -> (system prompt) -> write, into ``OUT_DIR``:

* ``train.jsonl`` and ``train.parquet``: one row per kept question with ``id``, ``source``,
  ``context_messages`` (OpenRLHF ``--data.input_key``) and ``test_cases`` (``--data.label_key``), in input
  order.
* ``prepare_stats.json``: the row count after each step, every skipped row with its errors, every dropped row
  with the reason, the options and the input fingerprint.

The output is a pure function of the input rows and the options: the same input gives byte-identical files (no
timestamps, fixed batch sizes, fixed key order). ``prepare_stats.json`` is written last and records the
checksums of the two data files, so it marks a complete result: a rerun with the same input and options finds
it and stops, while an interrupted run (data files partly written to ``*.tmp``, no stats file, or checksums
that do not match) is redone from the start. Redoing is simpler than continuing and costs little next to
training.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from acecoder_rl import __version__
from acecoder_rl.data.decontaminate import DEFAULT_NGRAM, DEFAULT_THRESHOLD, decontaminate
from acecoder_rl.data.hard_subset import DEFAULT_MODELS, select_hard
from acecoder_rl.data.loading import LineError, OnError, load_acecode, source_fingerprint, validate_rows
from acecoder_rl.data.prompts import SYSTEM_PROMPTS, add_system_prompt
from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.jsonl import to_json

if TYPE_CHECKING:
    from datasets import Dataset

#: Bump when the same input and options would give other output files (conversion, selection, format).
PIPELINE_VERSION = 1
OUTPUT_COLUMNS = ("id", "source", "context_messages", "test_cases")
JSONL_NAME, PARQUET_NAME, STATS_NAME = "train.jsonl", "train.parquet", "prepare_stats.json"
_WRITE_BATCH = 1000


@dataclass(frozen=True)
class PrepareOptions:
    """Everything besides the input that decides the output; all of it goes into the run's fingerprint."""

    subset: Literal["all", "hard"] = "all"
    hard_models: tuple[str, ...] = DEFAULT_MODELS
    mean_percentile: float = 50.0
    std_percentile: float = 50.0
    decontaminate: bool = True
    ngram: int = DEFAULT_NGRAM
    overlap_threshold: float = DEFAULT_THRESHOLD
    system_prompt: str = "none"
    on_error: OnError = "skip"
    split: str = "train"

    def __post_init__(self) -> None:
        # Normalise types so that equal settings give equal fingerprints (50 and 50.0, a list and a tuple).
        for name in ("mean_percentile", "std_percentile", "overlap_threshold"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "hard_models", tuple(self.hard_models))
        if self.subset not in ("all", "hard"):
            raise UsageError(f"subset must be 'all' or 'hard', not {self.subset!r}")
        if self.system_prompt not in SYSTEM_PROMPTS:
            raise UsageError(
                f"system prompt must be one of {', '.join(SYSTEM_PROMPTS)}, not {self.system_prompt!r}"
            )
        if self.on_error not in ("skip", "fail"):
            raise UsageError(f"on_error must be 'skip' or 'fail', not {self.on_error!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hard_models"] = list(self.hard_models)
        return data


@dataclass
class PrepareResult:
    """Where the files are, what ``prepare_stats.json`` says, and whether an earlier result was reused."""

    out_dir: Path
    stats: dict[str, Any]
    reused: bool
    paths: dict[str, Path] = field(default_factory=dict)


def prepare(
    source: str,
    out_dir: str | Path,
    options: PrepareOptions = PrepareOptions(),
    *,
    progress: bool = False,
    cache_dir: str | None = None,
) -> PrepareResult:
    """Run the pipeline on ``source`` (any :func:`~acecoder_rl.data.load_acecode` source) into ``out_dir``.

    ``progress`` shows rich progress bars on stderr. Raises :class:`AcecoderError` for unreadable input, for
    ``on_error="fail"`` on a malformed row, and when no valid row is left.
    """
    out = Path(out_dir)
    paths = {name: out / name for name in (JSONL_NAME, PARQUET_NAME, STATS_NAME)}
    bad_lines: list[LineError] | None = [] if options.on_error == "skip" else None  # else the first raises
    dataset = load_acecode(source, options.split, cache_dir=cache_dir, bad_lines=bad_lines)
    input_fingerprint = source_fingerprint(source, dataset)
    fingerprint = _digest(
        json.dumps([PIPELINE_VERSION, input_fingerprint, options.to_dict()], sort_keys=True).encode()
    )
    previous = _complete_result(paths, fingerprint)
    if previous is not None:
        return PrepareResult(out, previous, reused=True, paths=paths)

    out.mkdir(parents=True, exist_ok=True)
    paths[STATS_NAME].unlink(missing_ok=True)  # from here on, the directory does not hold a complete result
    with _progress_bars(progress) as track:
        dataset, validation = validate_rows(
            dataset, options.on_error, bad_lines=bad_lines or (), progress=track("validating", len(dataset))
        )
        if len(dataset) == 0:
            problems = validation.problems()
            detail = f"; first problem: {problems[0]}" if problems else ""
            raise AcecoderError(f"no valid rows in {source!r} ({validation.rows_in} rows read){detail}")
        counts: dict[str, int | None] = {
            "rows_in": validation.rows_in,
            "skipped_malformed": validation.rows_skipped,
            "after_validation": len(dataset),
            "after_hard_subset": None,
            "after_decontamination": None,
        }
        hard = None
        if options.subset == "hard":
            dataset, hard = select_hard(
                dataset, options.hard_models, options.mean_percentile, options.std_percentile
            )
            counts["after_hard_subset"] = len(dataset)
        contamination = None
        if options.decontaminate:
            dataset, contamination = decontaminate(
                dataset,
                n=options.ngram,
                threshold=options.overlap_threshold,
                progress=track("decontaminating", len(dataset)),
            )
            counts["after_decontamination"] = len(dataset)
        dataset = add_system_prompt(dataset.select_columns(list(OUTPUT_COLUMNS)), options.system_prompt)
        counts["rows_out"] = len(dataset)
        outputs = _write_outputs(dataset, paths, track("writing", len(dataset)))

    stats = {
        "acecoder_rl_version": __version__,
        "pipeline_version": PIPELINE_VERSION,
        "fingerprint": fingerprint,
        "input": {"dataset": source, "split": options.split, "fingerprint": input_fingerprint},
        "options": options.to_dict(),
        "counts": counts,
        "validation": validation.to_dict(),
        "hard_subset": hard.to_dict() if hard else None,
        "decontamination": contamination.to_dict() if contamination else None,
        "outputs": outputs,
    }
    _write_atomically(paths[STATS_NAME], (to_json(stats, indent=2) + "\n").encode())
    return PrepareResult(out, stats, reused=False, paths=paths)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _complete_result(paths: dict[str, Path], fingerprint: str) -> dict[str, Any] | None:
    """The stats of a finished run with this fingerprint whose data files are intact, else None."""
    try:
        stats = json.loads(paths[STATS_NAME].read_text(encoding="utf-8"))
        if stats.get("fingerprint") != fingerprint:
            return None
        for name in (JSONL_NAME, PARQUET_NAME):
            if _file_digest(paths[name]) != stats["outputs"][name]["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return stats


def _output_row(row: dict[str, Any]) -> dict[str, Any]:
    """The output record, with a fixed key order (``role`` before ``content``, as chat templates have it)."""
    return {
        "id": row["id"],
        "source": row["source"],
        "context_messages": [{"role": m["role"], "content": m["content"]} for m in row["context_messages"]],
        "test_cases": list(row["test_cases"]),
    }


def _output_schema():
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("context_messages", pa.list_(message)),
            ("test_cases", pa.list_(pa.string())),
        ]
    )


def _write_outputs(
    dataset: Dataset, paths: dict[str, Path], advance: Callable[[int], None]
) -> dict[str, Any]:
    """Stream ``dataset`` into the jsonl and parquet files by batches; each appears only when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _output_schema()
    jsonl_tmp = paths[JSONL_NAME].with_name(JSONL_NAME + ".tmp")
    parquet_tmp = paths[PARQUET_NAME].with_name(PARQUET_NAME + ".tmp")
    rows = 0
    with (
        jsonl_tmp.open("w", encoding="utf-8", newline="\n") as jsonl,
        pq.ParquetWriter(parquet_tmp, schema) as parquet,
    ):
        for batch in dataset.iter(batch_size=_WRITE_BATCH):
            columns = list(batch)
            records = [
                _output_row(dict(zip(columns, values, strict=True)))
                for values in zip(*batch.values(), strict=True)
            ]
            jsonl.writelines(to_json(record) + "\n" for record in records)
            parquet.write_table(pa.Table.from_pylist(records, schema=schema))
            rows += len(records)
            advance(len(records))
        if rows == 0:
            parquet.write_table(schema.empty_table())
    for tmp, name in ((jsonl_tmp, JSONL_NAME), (parquet_tmp, PARQUET_NAME)):
        os.replace(tmp, paths[name])
    return {
        JSONL_NAME: {"rows": rows, "sha256": _file_digest(paths[JSONL_NAME])},
        PARQUET_NAME: {"rows": rows, "sha256": _file_digest(paths[PARQUET_NAME])},
    }


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yield ``track(description, total) -> advance(n)``; with ``enabled`` false, the bars are not drawn."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), disable=not enabled) as bars:

        def track(description: str, total: int) -> Callable[[int], None]:
            task = bars.add_task(description, total=total)
            return lambda n: bars.advance(task, n)

        yield track
