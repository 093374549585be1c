"""One evaluation from start to end: problems -> completions (a model or a file) -> verdicts -> files.

Everything is checked before the expensive part starts: the benchmark rows, the completions file, the k
values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from acecoder_rl.errors import UsageError
from acecoder_rl.eval.completions import read_completions
from acecoder_rl.eval.generation import Backend, GenerationSettings, generate
from acecoder_rl.eval.passk import reported_ks
from acecoder_rl.eval.problems import load_problems
from acecoder_rl.eval.scoring import score_problems
from acecoder_rl.eval.summary import summarize, write_outputs
from acecoder_rl.jsonl import to_json
from acecoder_rl.reward import RewardConfig

#: (what is being counted, total) -> a function called with each increment; the CLI draws progress bars.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def evaluate(
    benchmark: str,
    out_dir: Path,
    *,
    model: str | None = None,
    completions_file: Path | None = None,
    allow_partial: bool = False,
    generation: GenerationSettings | None = None,
    n: int | None = None,
    ks: Sequence[int] | None = None,
    backend: Backend = "auto",
    reward: RewardConfig | None = None,
    progress: ProgressFactory | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (or the completions in ``completions_file``) on ``benchmark``; return the summary.

    With a model, ``generation`` says how to sample (``generation.n`` samples per problem). With a file,
    ``n`` (optional) is the number of completions every line must have. Writes ``results.jsonl``,
    ``summary.json``, ``summary.md`` (and, after generating, ``completions.jsonl``, which ``completions_file``
    accepts) into ``out_dir``.
    """
    if (model is None) == (completions_file is None):
        raise UsageError("give exactly one of a model and a completions file")
    track = progress or (lambda _label, _total: lambda _step: None)
    reward = reward or RewardConfig()
    if model is not None:
        generation = generation or GenerationSettings()
        ks = _checked_ks(generation.n, ks)  # before any loading
    problems = load_problems(benchmark)
    problems_in_benchmark = len(problems)
    timing: dict[str, float] = {}
    if completions_file is not None:
        found = read_completions(completions_file, [p.id for p in problems], allow_partial=allow_partial)
        problems = [p for p in problems if p.id in found]
        completions = [found[p.id] for p in problems]
        samples = len(completions[0])
        if n is not None and n != samples:
            raise UsageError(f"-n {n}, but {completions_file} has {samples} completion(s) per problem")
        ks = _checked_ks(samples, ks)
        settings: dict[str, Any] = {"n": samples}
    else:
        samples = generation.n
        generated = generate(
            model,
            problems,
            generation,
            backend=backend,
            progress=track("generating", len(problems) * samples),
        )
        completions = generated.completions
        timing["generation"] = generated.seconds
        settings = {
            "backend": generated.backend,
            "prompt_style": generated.prompt_style,
            "n": generation.n,
            "temperature": generation.temperature,
            "top_p": generation.top_p,
            "max_new_tokens": generation.max_new_tokens,
            "batch_size": generation.batch_size,
            "seed": generation.seed,
            "generated_tokens": generated.tokens,
        }
    settings.update(
        timeout_per_test=reward.timeout_per_test, memory_mb=reward.memory_mb, salvage_code=reward.salvage_code
    )

    started = time.monotonic()
    results = score_problems(problems, completions, reward, track("scoring", len(problems) * samples))
    timing["scoring"] = time.monotonic() - started
    summary = summarize(
        results,
        ks,
        benchmark=benchmark,
        problems_in_benchmark=problems_in_benchmark,
        model=model,
        completions_file=None if completions_file is None else str(completions_file),
        settings=settings,
        timing_s=timing,
    )
    write_outputs(out_dir, results, summary)
    if model is not None:
        with (out_dir / "completions.jsonl").open("w", encoding="utf-8") as handle:
            for problem, samples_of in zip(problems, completions, strict=True):
                handle.write(to_json({"id": problem.id, "completions": samples_of}) + "\n")
    return summary


def _checked_ks(n: int, ks: Sequence[int] | None) -> tuple[int, ...]:
    try:
        return reported_ks(n, ks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
