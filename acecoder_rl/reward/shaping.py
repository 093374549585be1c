"""Reward shaping: a program's verdicts to the numbers a trainer gets (score, reward with the configured bonus
and penalty), in one place that every path to the reward (API, CLI, plug-ins, service) goes through."""
from __future__ import annotations

from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.results import ProgramOutcome, ProgramStatus, RewardResult


def shape(outcome: ProgramOutcome, config: RewardConfig, *, cached: bool = False) -> RewardResult:
    """``score`` in [0, 1] (pass rate, or all-pass in binary mode); ``reward`` adds the configured shaping."""
    results = outcome.test_results
    all_pass = bool(results) and all(results)
    if outcome.status is ProgramStatus.NO_CODE:
        score, reward = 0.0, -config.format_penalty
    else:
        score = outcome.pass_rate if config.mode == "pass_rate" else float(all_pass)
        reward = score + (config.all_pass_bonus if all_pass else 0.0)
    return RewardResult(
        reward=reward, score=score, pass_rate=outcome.pass_rate, test_results=results,
        test_status=list(outcome.test_status), test_errors=list(outcome.test_errors), status=outcome.status,
        code=outcome.code, error=outcome.error, fallback_tests=outcome.fallback_tests,
        duration_s=outcome.duration_s, cached=cached,
    )
