"""Step 3, ``data label``: sample programs for every question from one or more models and score them.

AceCoder sampled 16 programs per question and model (temperature 0.7, top-p 1.0; ``Constants.py``,
``inference_generated_prompts.py`` at AceCoder@e37ef2a), asking with the question and its first 2 tests
(:func:`~acecoder_rl.data.pipeline.prompts.solution_instruction`), and stored each program's test pass rate.
Here every sample is scored by the sandboxed reward engine against the row's tests as they are (after
``filter-tests``, the filtered ones): ``pass_rate`` = passed / ``len(test_cases)``. AceCoder's stored rates
divided by the number of tests *before* filtering (``consolidate_dataset.py``), so on AceCode-87K rows whose
tests were filtered, a program that passes every stored test can have a rate below 1; they are not
comparable with the rates written here.

Output, in ``OUT_DIR``: ``labeled.jsonl``, the input rows with ``inferences`` replaced by
``[{model_name, completion_id, completion, pass_rate, test_results}]`` (the models in the order given,
``completion_id`` counting across them as in AceCode-87K; ``completion`` is the whole reply), which
``data prepare --subset hard --hard-models MODEL`` and ``data pairs`` read; ``label_stats.json``; and
``samples/<model>.jsonl``, one line per row and model (the samples, their rates and statuses). The samples
files are what a rerun resumes (per model, by row id); ``labeled.jsonl`` is then rebuilt from them, which
costs a read of the input. Models run one after another, so only one is loaded at a time.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from acecoder_rl.data.pipeline.generation import BackendSpec, ChatBackend, open_backend
from acecoder_rl.data.pipeline.io import (
    JsonlAppender,
    check_settings,
    chunks,
    iter_acecode_rows,
    pending_acecode_rows,
    progress_bar,
    read_lines,
    write_json,
)
from acecoder_rl.data.pipeline.prompts import solution_chat
from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.eval.generation import GenerationSettings
from acecoder_rl.jsonl import to_json
from acecoder_rl.reward import RewardConfig, RewardEngine

OUTPUT, STATS, SAMPLES = "labeled.jsonl", "label_stats.json", "samples"
DEFAULT_SETTINGS = GenerationSettings(n=16, temperature=0.7, top_p=1.0, max_new_tokens=1024)


def samples_path(out_dir: Path, model: str) -> Path:
    """``samples/<model>.jsonl``: the name made safe for a file, with a digest so that two names never
    share a file."""
    digest = hashlib.sha256(model.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return out_dir / SAMPLES / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model)[:80]}-{digest}.jsonl"


def label(
    dataset: str,
    out_dir: Path,
    models: Sequence[BackendSpec],
    settings: GenerationSettings = DEFAULT_SETTINGS,
    *,
    prompt_tests: int = 2,
    reward: RewardConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run step 3 on the AceCode rows of ``dataset`` (module docstring); returns the stats it writes."""
    names = [spec.model for spec in models]
    if not names or len(set(names)) != len(names):
        raise UsageError("give each --model once (at least one)")
    if prompt_tests < 0:
        raise UsageError("--prompt-tests must be >= 0")
    check_settings(out_dir, "label", {
        "models": [spec.describe() for spec in models], "n": settings.n, "temperature": settings.temperature,
        "top_p": settings.top_p, "max_new_tokens": settings.max_new_tokens, "seed": settings.seed,
        "prompt_tests": prompt_tests,
    })
    (out_dir / SAMPLES).mkdir(parents=True, exist_ok=True)
    generation: dict[str, Any] = {}
    with ExitStack() as stack:
        engine: RewardEngine | None = None
        for spec in models:
            with JsonlAppender(samples_path(out_dir, spec.model)) as written:
                total, rows = pending_acecode_rows(dataset, written.done)
                if not total:
                    continue
                if engine is None:
                    engine = stack.enter_context(RewardEngine(reward or RewardConfig()))
                bar = progress_bar(total, f"labelling with {spec.model}", progress)
                with open_backend(spec, seed=settings.seed) as generator:
                    for chunk in chunks(rows, generator.chunk_rows):
                        for row_samples in _sample_chunk(chunk, spec.model, generator, engine, settings,
                                                         prompt_tests):
                            written.write(row_samples)
                        written.flush()
                        bar.update(len(chunk))
                    generation[spec.model] = generator.stats()
                bar.close()
    rows = _merge(dataset, out_dir, names)
    stats = _stats(out_dir, names, rows, settings, generation)
    write_json(out_dir / STATS, stats)
    return stats


def _sample_chunk(chunk: list[tuple[str, dict[str, Any]]], model: str, generator: ChatBackend,
                  engine: RewardEngine, settings: GenerationSettings, prompt_tests: int
                  ) -> Iterator[dict[str, Any]]:
    """One ``samples/`` line per row of ``chunk``: ``settings.n`` replies, each scored on the row's tests."""
    replies = generator.generate([solution_chat(row, prompt_tests) for _, row in chunk], settings)
    for (where, row), reply in zip(chunk, replies, strict=True):
        if reply.error is not None:  # every row needs all its samples: stop, the rows so far are kept
            raise AcecoderError(
                f"{where}: row {row['id']!r}: the endpoint refused the request: {reply.error}")
    completions = [text for reply in replies for text in reply.texts]
    tests = [row["test_cases"] for _, row in chunk for _ in range(settings.n)]
    results = iter(engine.score(completions, tests))
    for (_, row), reply in zip(chunk, replies, strict=True):
        samples = []
        for text in reply.texts:
            result = next(results)
            samples.append({"completion": text, "pass_rate": result.pass_rate,
                            "test_results": result.test_results, "status": result.status.value})
        yield {"id": row["id"], "model_name": model, "samples": samples}


def _merge(dataset: str, out_dir: Path, names: Sequence[str]) -> int:
    """Write ``labeled.jsonl`` from the input and the samples files, read side by side (they hold the rows
    in input order); returns the number of rows."""
    readers = [(name, samples_path(out_dir, name), read_lines(samples_path(out_dir, name))) for name in names]
    temporary = out_dir / (OUTPUT + ".tmp")
    count = 0
    with temporary.open("w", encoding="utf-8") as handle:
        for where, row in iter_acecode_rows(dataset):
            inferences: list[dict[str, Any]] = []
            for name, path, reader in readers:
                line = next(reader, None)
                if line is None or line["id"] != row["id"]:
                    found = "nothing" if line is None else f"row {line['id']!r}"
                    raise AcecoderError(
                        f"{path} does not match {dataset}: {found} where {where} has row {row['id']!r}; "
                        "it was made from another input: use another -o"
                    )
                for sample in line["samples"]:
                    inferences.append({"model_name": name, "completion_id": len(inferences),
                                       "completion": sample["completion"], "pass_rate": sample["pass_rate"],
                                       "test_results": sample["test_results"]})
            handle.write(to_json({**row, "inferences": inferences}) + "\n")
            count += 1
    os.replace(temporary, out_dir / OUTPUT)
    return count


def _stats(out_dir: Path, names: Sequence[str], rows: int, settings: GenerationSettings,
           generation: dict[str, Any]) -> dict[str, Any]:
    per_model = {}
    for name in names:
        rates: list[float] = []
        statuses: Counter[str] = Counter()
        rows_solved = 0
        for line in read_lines(samples_path(out_dir, name)):
            samples = line["samples"]
            rates.extend(sample["pass_rate"] for sample in samples)
            statuses.update(sample["status"] for sample in samples)
            rows_solved += any(sample["pass_rate"] == 1.0 for sample in samples)
        per_model[name] = {
            "samples": len(rates),
            "pass_rate_mean": sum(rates) / len(rates) if rates else 0.0,
            "all_pass_samples": sum(rate == 1.0 for rate in rates),
            "rows_with_an_all_pass_sample": rows_solved,
            "statuses": dict(sorted(statuses.items())),
        }
    return {
        "rows": rows,
        "samples_per_row_and_model": settings.n,
        "models": per_model,
        "this_run": {"generation": generation},
    }
