"""The interfaces of the paths to the reward: what a trainer plug-in and what the service use.

The local :class:`~acecoder_rl.reward.RewardEngine`, the HTTP client of the reward service and the Ray
reward pool all satisfy :class:`RewardScorer`, so trainer plug-ins pick one by configuration and the tests
check that all of them return identical verdicts on one fixture set. The service runs on the two that score
on CPUs of their own (the engine, the Ray pool), and reads their progress and health: :class:`ServedScorer`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """Scores completions against their tests (each row's: assert strings or a tests object, as
    :func:`validate_batch` takes them); every path to the reward is one."""

    def score(self, completions: Sequence[str], test_cases: Sequence[object]) -> list[RewardResult]:
        """Results in input order; raises ValueError for malformed input."""
        ...

    async def ascore(self, completions: Sequence[str], test_cases: Sequence[object]) -> list[RewardResult]:
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class ServedScorer(RewardScorer, Protocol):
    """A scorer the reward service runs on (``acecoder-rl serve``: a RewardEngine, or with ``--ray`` a
    RayRewardPool): besides scoring, the service reads its progress (stall watchdog) and what ``/health``
    reports about it."""

    @property
    def stats(self) -> Mapping[str, int]:
        """Counters; ``executed`` (programs run to a verdict) is how the service sees progress."""
        ...

    @property
    def worker_restarts(self) -> int:
        """Workers (or Ray actors) replaced after dying."""
        ...

    @property
    def features(self) -> Mapping[str, object]:
        """What it reports about itself: ``isolation`` (bwrap, process, ray), and ``workers`` where its worker
        count is not ``RewardConfig.n_workers`` (a Ray pool's workers over all of its actors)."""
        ...
