"""The one interface every path to the reward implements.

The local :class:`~acecoder_rl.reward.RewardEngine`, the HTTP client of the reward service and the Ray
reward pool all satisfy :class:`RewardScorer`, so trainer plug-ins pick one by configuration and the tests
check that all of them return identical verdicts on one fixture set.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from acecoder_rl.reward.labels import Tests, parse_tests
from acecoder_rl.reward.results import RewardResult


def validate_batch(completions: Sequence[str], test_cases: Sequence[object]) -> list[Tests]:
    """The input checks every scorer makes before any work, so all paths fail with the same messages; the
    rows' tests in their parsed form (``labels.parse_tests``: assert strings or a tests object)."""
    if len(completions) != len(test_cases):
        raise ValueError(f"got {len(completions)} completions but {len(test_cases)} test lists")
    parsed = []
    for i, (completion, tests) in enumerate(zip(completions, test_cases)):
        if not isinstance(completion, str):
            raise ValueError(f"completions[{i}] must be a str, got {type(completion).__name__}")
        parsed.append(parse_tests(tests, f"test_cases[{i}]"))
    return parsed


@runtime_checkable
class RewardScorer(Protocol):
    def score(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        """Results in input order; raises ValueError for malformed input."""
        ...

    async def ascore(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        ...

    def close(self) -> None:
        ...
