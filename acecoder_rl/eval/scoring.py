"""Run every sample against its problem's tests in the reward engine and count the correct ones.

A sample is correct when ALL the problem's tests pass (``RewardResult.all_passed``), the benchmark rule; the
per-test pass rate is kept next to it for diagnosis. Samples go through the same engine, and the same code
extraction, as RL rewards, so an evaluation and a training signal never disagree about one program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from acecoder_rl.eval.passk import pass_at_k
from acecoder_rl.eval.problems import Problem
from acecoder_rl.reward import RewardConfig, RewardResult


@dataclass(frozen=True)
class ProblemResult:
    """One problem's samples, their verdicts, and ``c`` = how many passed every test."""

    id: str
    completions: list[str]
    results: list[RewardResult]

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def c(self) -> int:
        return sum(result.all_passed for result in self.results)

    def pass_at(self, k: int) -> float:
        return pass_at_k(self.n, self.c, k)

    def to_dict(self, ks: Sequence[int]) -> dict[str, Any]:
        """The ``results.jsonl`` line: counts, pass@k, and every sample with its verdicts."""
        return {
            "id": self.id,
            "n": self.n,
            "c": self.c,
            **{f"pass@{k}": self.pass_at(k) for k in ks},
            "samples": [
                {
                    "status": result.status.value,
                    "all_passed": result.all_passed,
                    "pass_rate": result.pass_rate,
                    "test_results": result.test_results,
                    "test_status": [status.value for status in result.test_status],
                    "error": result.error,
                    "completion": completion,
                }
                for completion, result in zip(self.completions, self.results, strict=True)
            ],
        }


def score_problems(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    config: RewardConfig,
    progress: Callable[[int], None] | None = None,
) -> list[ProblemResult]:
    """Score ``completions[i]`` (every sample) against ``problems[i]``'s tests; results in problem order."""
    from acecoder_rl.reward import RewardEngine

    pairs = [
        (completion, list(problem.tests))
        for problem, samples in zip(problems, completions, strict=True)
        for completion in samples
    ]
    verdicts: list[RewardResult] = []
    with RewardEngine(config) as engine:
        for result in engine.imap(pairs):
            verdicts.append(result)
            if progress is not None:
                progress(1)
    scored, position = [], 0
    for problem, samples in zip(problems, completions, strict=True):
        scored.append(ProblemResult(problem.id, list(samples), verdicts[position : position + len(samples)]))
        position += len(samples)
    return scored
