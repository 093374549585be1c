"""The one interface every path to the reward implements.

The local :class:`~acecoder_rl.reward.RewardEngine`, the HTTP client of the reward service and the Ray
reward pool all satisfy :class:`RewardScorer`, so trainer plug-ins pick one by configuration and the tests
check that all of them return identical verdicts on one fixture set.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from acecoder_rl.reward.results import RewardResult


@runtime_checkable
class RewardScorer(Protocol):
    def score(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        """Results in input order; raises ValueError for malformed input."""
        ...

    async def ascore(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        ...

    def close(self) -> None:
        ...
