"""Step 1, ``data synthesize-tests``: seed questions/programs -> one-function questions with ~20 assert tests.

Each seed is sent once (AceCoder: GPT-4o-mini, temperature 0.7, JSON output, 8,192 tokens) with the prompt
of :func:`~acecoder_rl.data.pipeline.prompts.synthesis_messages`. The reply must be a JSON object with a
non-empty ``question`` and a ``tests`` list (a code fence around it is tolerated); a test is kept when it is
a string that parses as Python (surrounding whitespace removed) and is an ``assert`` (after ``import``
statements, if any), once (repeats dropped). A reply that is no such object, or keeps no test, is **skipped
and counted** with its reason in ``rejected.jsonl`` — AceCoder's scripts turned it into a row whose only test
was ``assert False``. A truncated reply is not valid JSON: AceCoder's parser cut such a reply back to its
last complete test; here it is rejected.

Output, in ``OUT_DIR``: ``synthesized.jsonl`` (AceCode rows: ``id``, ``source``, ``question``,
``test_cases``, ``context_messages`` = the question as the user turn, and the seed's program under the same
key, for ``filter-tests --reference-key``), ``rejected.jsonl`` (``id``, ``reason``, ``detail``, the reply)
and ``synthesize_stats.json``. A seed is in exactly one of the two files, and a rerun skips the seeds in
either (delete ``rejected.jsonl`` to ask again for those).
"""

from __future__ import annotations

import ast
import json
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acecoder_rl.data.pipeline.generation import BackendSpec, Reply, open_backend
from acecoder_rl.data.pipeline.io import (
    JsonlAppender,
    check_settings,
    iter_rows,
    progress_bar,
    read_lines,
    write_json,
)
from acecoder_rl.data.pipeline.prompts import synthesis_messages
from acecoder_rl.errors import AcecoderError
from acecoder_rl.eval.generation import GenerationSettings

OUTPUT, REJECTED, STATS = "synthesized.jsonl", "rejected.jsonl", "synthesize_stats.json"
#: Why a reply was skipped.
REASONS = ("invalid_json", "no_question", "no_valid_tests", "request_refused")
DEFAULT_SETTINGS = GenerationSettings(n=1, temperature=0.7, top_p=1.0, max_new_tokens=8192)
_DEFAULT_SOURCE = "synthesized"
_RUN_COUNTS = ("seeds_sent", "seeds_skipped_as_done", "invalid_tests_dropped", "repeated_tests_dropped")


@dataclass(frozen=True)
class SynthesisOptions:
    """Which seed fields hold the question and the program (a seed needs one of them), and whether to ask the
    endpoint for JSON output (``response_format``; some servers refuse it)."""

    question_key: str = "question"
    program_key: str = "program"
    json_mode: bool = True


@dataclass(frozen=True)
class Seed:
    id: str
    source: str
    question: str | None
    program: str | None


@dataclass(frozen=True)
class ParsedReply:
    """A usable reply: the question, its valid tests in reply order, and how many tests were dropped."""

    question: str
    tests: list[str]
    invalid_tests: int
    repeated_tests: int


class ReplyRejected(Exception):
    """A reply that gives no row; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_assert_test(test: str) -> bool:
    """Whether ``test`` parses as Python and is an ``assert``, possibly after imports (``import math;
    assert ...``)."""
    with warnings.catch_warnings():  # "invalid escape sequence" and the like: still Python
        warnings.simplefilter("ignore")
        try:
            body = ast.parse(test).body
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte
            return False
    return (bool(body) and isinstance(body[-1], ast.Assert)
            and all(isinstance(statement, (ast.Import, ast.ImportFrom)) for statement in body[:-1]))


def _json_text(reply: str) -> str:
    """The reply without a Markdown fence around the JSON (```json ... ``` anywhere, or a bare ``` ...```)."""
    text = reply.strip()
    start = text.find("```json")
    if start >= 0:
        text = text[start + len("```json"):]
    elif text.startswith("```"):
        text = text[3:]
    else:
        return text
    end = text.rfind("```")
    return text[:end] if end >= 0 else text


def parse_reply(reply: str) -> ParsedReply:
    """The question and tests of a reply, or :class:`ReplyRejected` (module docstring)."""
    try:
        data = json.loads(reply)  # a raw JSON reply may hold ``` inside its strings: try it whole first
    except ValueError:
        try:
            data = json.loads(_json_text(reply))
        except ValueError as exc:
            raise ReplyRejected("invalid_json", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ReplyRejected("invalid_json", f"expected a JSON object, got {type(data).__name__}")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ReplyRejected("no_question", "no non-empty string 'question'")
    tests = data.get("tests")
    if not isinstance(tests, list):
        raise ReplyRejected("no_valid_tests", "'tests' is not a list")
    kept: dict[str, None] = {}
    invalid = repeated = 0
    for test in tests:
        text = test.strip() if isinstance(test, str) else None
        if text is None or not is_assert_test(text):
            invalid += 1
        elif text in kept:
            repeated += 1
        else:
            kept[text] = None
    if not kept:
        raise ReplyRejected("no_valid_tests", f"none of its {len(tests)} tests is an assert that parses")
    return ParsedReply(question.strip(), list(kept), invalid, repeated)


def _seed(where: str, row: dict[str, Any], options: SynthesisOptions) -> Seed:
    raw_id = row.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        raise AcecoderError(f"{where}: field id: expected a non-empty string or an integer")
    texts: dict[str, str | None] = {}
    for key in (options.question_key, options.program_key):
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise AcecoderError(f"{where}: field {key}: expected a string, got {type(value).__name__}")
        texts[key] = value if value and value.strip() else None
    if texts[options.question_key] is None and texts[options.program_key] is None:
        raise AcecoderError(
            f"{where}: a seed needs a question (field {options.question_key}) or a program "
            f"(field {options.program_key})"
        )
    source = row.get("source")
    return Seed(str(raw_id), source if isinstance(source, str) and source.strip() else _DEFAULT_SOURCE,
                texts[options.question_key], texts[options.program_key])


def read_seeds(dataset: str, options: SynthesisOptions) -> list[Seed]:
    """Every seed, checked before any request is paid for; ids must be unique (a rerun resumes by id)."""
    seeds: list[Seed] = []
    first: dict[str, str] = {}
    for where, row in iter_rows(dataset):
        seed = _seed(where, row, options)
        if seed.id in first:
            raise AcecoderError(f"{where}: field id: {seed.id!r} already given at {first[seed.id]}")
        first[seed.id] = where
        seeds.append(seed)
    if not seeds:
        raise AcecoderError(f"{dataset}: no seeds")
    return seeds


def _row(seed: Seed, parsed: ParsedReply, program_key: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": seed.id,
        "source": seed.source,
        "question": parsed.question,
        "test_cases": parsed.tests,
        "context_messages": [{"role": "user", "content": parsed.question}],
    }
    if seed.program is not None:
        row[program_key] = seed.program
    return row


def synthesize_tests(
    dataset: str,
    out_dir: Path,
    backend: BackendSpec,
    settings: GenerationSettings = DEFAULT_SETTINGS,
    options: SynthesisOptions = SynthesisOptions(),
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Run step 1 on the seeds in ``dataset`` (see the module docstring); returns the stats it writes."""
    seeds = read_seeds(dataset, options)
    check_settings(out_dir, "synthesize", {
        **backend.describe(), **asdict(options), "n": settings.n, "temperature": settings.temperature,
        "top_p": settings.top_p, "max_new_tokens": settings.max_new_tokens, "seed": settings.seed,
    })
    run: Counter[str] = Counter()
    with JsonlAppender(out_dir / OUTPUT) as written, JsonlAppender(out_dir / REJECTED) as rejected:
        pending = [seed for seed in seeds if seed.id not in written.done and seed.id not in rejected.done]
        run["seeds_skipped_as_done"] = len(seeds) - len(pending)
        backend_stats: dict[str, Any] = {}
        if pending:
            bar = progress_bar(len(pending), "synthesizing tests", progress)
            with open_backend(backend, seed=settings.seed) as generator:
                for start in range(0, len(pending), generator.chunk_rows):
                    chunk = pending[start:start + generator.chunk_rows]
                    replies = generator.generate(
                        [synthesis_messages(seed.question, seed.program) for seed in chunk], settings,
                        json_output=options.json_mode)
                    for seed, reply in zip(chunk, replies, strict=True):
                        _record(seed, reply, written, rejected, run, options.program_key)
                    written.flush()
                    rejected.flush()
                    run["seeds_sent"] += len(chunk)
                    bar.update(len(chunk))
                backend_stats = generator.stats()
            bar.close()
    stats = _stats(out_dir, len(seeds), run, backend_stats)
    write_json(out_dir / STATS, stats)
    return stats


def _record(seed: Seed, reply: Reply, written: JsonlAppender, rejected: JsonlAppender, run: Counter[str],
            program_key: str) -> None:
    """Write one seed's outcome to the one file it belongs in."""
    if reply.error is not None:
        rejected.write({"id": seed.id, "reason": "request_refused", "detail": reply.error})
        return
    try:
        parsed = parse_reply(reply.texts[0])
    except ReplyRejected as exc:
        rejected.write({"id": seed.id, "reason": exc.reason, "detail": exc.detail, "reply": reply.texts[0]})
        return
    written.write(_row(seed, parsed, program_key))
    run["invalid_tests_dropped"] += parsed.invalid_tests
    run["repeated_tests_dropped"] += parsed.repeated_tests


def _stats(out_dir: Path, seeds: int, run: Counter[str], backend_stats: dict[str, Any]) -> dict[str, Any]:
    """Totals over the output files (every run so far), then what this run did."""
    tests = [len(row["test_cases"]) for row in read_lines(out_dir / OUTPUT)]
    reasons = Counter(row["reason"] for row in read_lines(out_dir / REJECTED))
    return {
        "seeds": seeds,
        "rows_written": len(tests),
        "seeds_rejected": sum(reasons.values()),
        "rejected_by_reason": {reason: reasons.get(reason, 0) for reason in REASONS},
        "tests": sum(tests),
        "tests_per_row": {"min": min(tests, default=0), "mean": sum(tests) / len(tests) if tests else 0.0,
                          "max": max(tests, default=0)},
        "this_run": {**{key: run.get(key, 0) for key in _RUN_COUNTS}, "generation": backend_stats},
    }
