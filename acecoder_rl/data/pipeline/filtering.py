"""Step 2, ``data filter-tests``: keep the tests a reference solution passes, and the questions that keep
enough of them.

Synthesized tests are a model's guesses: some are wrong. AceCoder ran each question's tests against a
strong model's greedy answer (Qwen2.5-Coder-32B-Instruct) and kept only the tests it passed; a question
whose reference passed 3 tests or fewer was dropped, then one left with fewer than 5 tests
(``consolidate_dataset.py``, ``generate_main_dataset.py`` at AceCoder@e37ef2a). The same here, through the
sandboxed reward engine, per test, with the reference taken from a field of the row (``reference_key``) or
generated (``reference_model``: greedy, asked with the question and its first ``prompt_tests`` tests, as
AceCoder asked its models).

Output, in ``OUT_DIR``: ``train.jsonl`` (the kept rows, ``test_cases`` cut to the passed tests in their order,
``tests_before_filter`` = how many there were, and no ``inferences``: their pass rates were measured on the
tests before filtering), ``dropped.jsonl`` (``id``, ``reason``, the counts and the reference's status) and
``filter_stats.json``. A row is in exactly one of the two files; a rerun skips the rows in either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acecoder_rl.data.pipeline.generation import BackendSpec, ChatBackend, open_backend
from acecoder_rl.data.pipeline.io import (
    JsonlAppender,
    check_settings,
    chunks,
    pending_acecode_rows,
    progress_bar,
    read_lines,
    write_json,
)
from acecoder_rl.data.pipeline.prompts import solution_chat
from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.eval.generation import GenerationSettings
from acecoder_rl.reward import RewardConfig

OUTPUT, DROPPED, STATS = "train.jsonl", "dropped.jsonl", "filter_stats.json"
#: Why a row was dropped, in the order the rule checks.
REASONS = ("reference_refused", "reference_passes_too_few", "too_few_tests_left")
#: AceCoder's reference: greedy, the 1,024 new tokens its vLLM inference used by default.
REFERENCE_SETTINGS = GenerationSettings(n=1, temperature=0.0, max_new_tokens=1024)
_SCORE_ROWS = 256  # rows per engine call when nothing is generated


@dataclass(frozen=True)
class FilterRule:
    """AceCoder's thresholds: keep a row when its reference passes MORE than ``min_reference_pass`` tests and
    at least ``min_tests`` tests remain."""

    min_reference_pass: int = 3
    min_tests: int = 5

    def __post_init__(self) -> None:
        if self.min_reference_pass < 0 or self.min_tests < 1:
            raise UsageError("need --min-reference-pass >= 0 and --min-tests >= 1")

    def verdict(self, passed: int, remaining: int) -> str | None:
        """None to keep the row, else the reason it is dropped (AceCoder checked in this order)."""
        if passed <= self.min_reference_pass:
            return "reference_passes_too_few"
        if remaining < self.min_tests:
            return "too_few_tests_left"
        return None


def filter_tests(
    dataset: str,
    out_dir: Path,
    *,
    reference_key: str | None = None,
    reference_model: BackendSpec | None = None,
    rule: FilterRule = FilterRule(),
    settings: GenerationSettings = REFERENCE_SETTINGS,
    prompt_tests: int = 2,
    reward: RewardConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run step 2 on the AceCode rows of ``dataset`` (module docstring); returns the stats it writes."""
    from acecoder_rl.reward import RewardEngine

    if (reference_key is None) == (reference_model is None):
        raise UsageError("give exactly one of a reference key and a reference model")
    if reference_model is not None and (settings.n != 1 or settings.temperature != 0):
        raise UsageError("the reference is one greedy answer: n = 1, temperature 0")
    reference: dict[str, Any] = ({"reference_key": reference_key} if reference_model is None else
                                 {**reference_model.describe(), "prompt_tests": prompt_tests,
                                  "max_new_tokens": settings.max_new_tokens})
    check_settings(out_dir, "filter", {**reference, **asdict(rule)})
    run: Counter[str] = Counter()
    with JsonlAppender(out_dir / OUTPUT) as kept, JsonlAppender(out_dir / DROPPED) as dropped:
        check = None if reference_key is None else lambda where, row: _reference_in(where, row, reference_key)
        total, rows = pending_acecode_rows(dataset, kept.done | dropped.done, check)
        bar = progress_bar(total, "filtering tests", progress)
        with ExitStack() as stack:
            generator = (None if reference_model is None or not total else
                         stack.enter_context(open_backend(reference_model, seed=settings.seed)))
            engine = stack.enter_context(RewardEngine(reward or RewardConfig()) if total else nullcontext())
            size = generator.chunk_rows if generator is not None else _SCORE_ROWS
            for chunk in chunks(rows, size):
                references = (_references_from_key(chunk, reference_key) if generator is None else
                              _generated_references(chunk, generator, settings, prompt_tests))
                scored = [(row, ref) for (_, row), ref in zip(chunk, references, strict=True)
                          if ref.error is None]
                outcomes = iter(engine.score([ref.text for _, ref in scored],
                                             [row["test_cases"] for row, _ in scored]) if scored else [])
                for (_, row), ref in zip(chunk, references, strict=True):
                    result = next(outcomes) if ref.error is None else None
                    _record(row, ref, result, rule, kept, dropped, run)
                kept.flush()
                dropped.flush()
                bar.update(len(chunk))
            backend_stats = generator.stats() if generator is not None else None
        bar.close()
    stats = _stats(out_dir, rule, run, backend_stats)
    write_json(out_dir / STATS, stats)
    return stats


@dataclass(frozen=True)
class _Reference:
    text: str
    generated: bool
    error: str | None = None


def _reference_in(where: str, row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        found = "is missing" if value is None else f"is {type(value).__name__} {value!r:.40}"
        raise AcecoderError(
            f"{where}: field {key}: the reference solution {found}; expected a non-empty string")
    return value


def _references_from_key(chunk: list[tuple[str, dict[str, Any]]], key: str) -> list[_Reference]:
    return [_Reference(_reference_in(where, row, key), generated=False) for where, row in chunk]


def _generated_references(chunk: list[tuple[str, dict[str, Any]]], generator: ChatBackend,
                          settings: GenerationSettings, prompt_tests: int) -> list[_Reference]:
    chats = [solution_chat(row, prompt_tests) for _, row in chunk]
    return [_Reference("", True, reply.error) if reply.error is not None else _Reference(reply.texts[0], True)
            for reply in generator.generate(chats, settings)]


def _record(row: dict[str, Any], reference: _Reference, result: Any, rule: FilterRule, kept: JsonlAppender,
            dropped: JsonlAppender, run: Counter[str]) -> None:
    """Write one row's outcome to the one file it belongs in."""
    tests = row["test_cases"]
    if result is None:
        dropped.write({"id": row["id"], "reason": "reference_refused", "tests": len(tests),
                       "detail": reference.error})
        return
    run[f"reference_status_{result.status.value}"] += 1
    passing = [test for test, passed in zip(tests, result.test_results, strict=True) if passed]
    reason = rule.verdict(len(passing), len(passing))
    if reason is None:
        out = {key: value for key, value in row.items() if key != "inferences"}
        kept.write({**out, "test_cases": passing, "tests_before_filter": len(tests)})
        return
    record = {"id": row["id"], "reason": reason, "tests": len(tests), "reference_passed": len(passing),
              "reference_status": result.status.value, "reference_error": result.error}
    if reference.generated:
        record["reference"] = reference.text
    dropped.write(record)


def _totals(rows: Iterator[dict[str, Any]]) -> tuple[int, int, int]:
    count = before = after = 0
    for row in rows:
        count += 1
        before += row["tests_before_filter"]
        after += len(row["test_cases"])
    return count, before, after


def _stats(out_dir: Path, rule: FilterRule, run: Counter[str], backend_stats: dict[str, Any] | None
           ) -> dict[str, Any]:
    """Totals over the output files (every run so far), then what this run did."""
    rows_kept, tests_before_kept, tests_kept = _totals(read_lines(out_dir / OUTPUT))
    reasons: Counter[str] = Counter()
    tests_dropped_rows = 0
    for record in read_lines(out_dir / DROPPED):
        reasons[record["reason"]] += 1
        tests_dropped_rows += record["tests"]
    return {
        "rule": asdict(rule),
        "rows_in": rows_kept + sum(reasons.values()),
        "rows_kept": rows_kept,
        "rows_dropped": sum(reasons.values()),
        "dropped_by_reason": {reason: reasons.get(reason, 0) for reason in REASONS},
        "tests_in": tests_before_kept + tests_dropped_rows,
        "tests_kept": tests_kept,
        "tests_removed_from_kept_rows": tests_before_kept - tests_kept,
        "this_run": {"reference_status": {key.removeprefix("reference_status_"): value
                                          for key, value in sorted(run.items())},
                     "generation": backend_stats},
    }
