"""verl custom reward functions (``custom_reward_function.path=reward_fns/verl_reward.py``).

How verl calls them (``verl/trainer/ppo/reward.py`` loads ``custom_reward_function.name`` from the file and
wraps it so that ``custom_reward_function.reward_kwargs`` are added as keyword arguments). Which managers
exist depends on the verl release:

- verl >= 0.7 (checked against 0.9.1): the reward loop. ``RewardLoopWorker`` Ray actors run each sample's
  ``run_single`` concurrently, calling ``compute_score(data_source=..., solution_str=..., ground_truth=...,
  extra_info=...)`` in threads; managers ``naive`` (default), ``dapo`` and ``rate_limited``
  (``reward.reward_manager.name``). ``batch`` and ``prime`` are not reward-loop managers there: verl
  refuses those names at start.
- verl <= 0.6 (``verl.workers.reward_manager``, still shipped by 0.9.1 with the same call paths): ``naive``
  and ``dapo`` call ``compute_score`` by keyword, one sample after another; ``batch`` calls
  ``compute_score_batch(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=...)`` once per
  batch; ``prime`` calls ``compute_score_prime(data_source, solution_str, ground_truth, extra_info)`` in a
  pool of forked processes and needs a number (see :class:`VerlPrimeComputeScore`).

The response is decoded without special tokens, ``ground_truth`` is the row's ``reward_model.ground_truth``.
A dict result must hold ``score`` (the training reward); every key goes to ``reward_extra_info``, one value
per sample, which verl stores as ``np.array`` columns of the batch (so every sample carries the same keys,
failed or not, whatever the backend) and averages in validation metrics (``acc`` is the core validation
variable when present). verl needs a number for every sample: one that cannot be scored gets 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from acecoder_rl.integrations.common import (
    ConfigError,
    Failure,
    FailureStreak,
    Outcome,
    RewardUnavailable,
    SharedScorer,
    describe_exception,
    logger,
    parse_tests_value,
    reward_of,
    sample_metrics,
    score_of,
    score_pairs,
    shared_scorer,
)
from acecoder_rl.reward.interface import RewardScorer

__all__ = ["VerlBatchComputeScore", "VerlComputeScore", "VerlPrimeComputeScore"]

ADAPTER = "verl"
# Keyword arguments verl itself passes to some reward functions; they do not concern this one.
_VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer", "sandbox_fusion_url",
                          "concurrent_semaphore", "memory_limit_mb"})


_LOUD = (ConfigError, RewardUnavailable)  # what stops the trainer instead of becoming reward 0


class _VerlBase:
    _shared: SharedScorer = shared_scorer()  # the backend used when the instance has no scorer of its own
    _fatal: tuple[type[Exception], ...] = (ConfigError,)

    def __init__(self, scorer: RewardScorer | None = None, max_failed_batches: int | None = None) -> None:
        self.scorer = scorer
        self._warned: set[str] = set()
        # Fail loudly (common's module docstring): a misconfigured backend raises at the first call, and so
        # does a streak of calls that scored nothing, instead of training on zeros.
        self.streak = FailureStreak(max_failed_batches)

    def _warn_unknown(self, kwargs: dict) -> None:
        """``reward_kwargs`` are not a way to configure this reward (``ACECODER_REWARD_CONFIG`` is): say so,
        once per name, instead of ignoring them silently."""
        unknown = sorted(set(kwargs) - _VERL_KWARGS - self._warned)
        self._warned.update(unknown)
        if unknown:
            logger.warning("acecoder-rl verl: ignoring keyword argument(s) %s; configure the reward with the "
                           "ACECODER_REWARD_* environment variables", ", ".join(unknown))

    def _run(self, solutions: Sequence[Any], ground_truths: Sequence[Any], fields: Sequence[str]
             ) -> list[dict[str, float]]:
        items: list[tuple[str, list[str]] | Failure] = []
        for solution, truth, field in zip(solutions, ground_truths, fields, strict=True):
            if not isinstance(solution, str):
                items.append(Failure(f"solution_str must be a string, got {type(solution).__name__}"))
                continue
            try:
                items.append((solution, parse_tests_value(truth, field)))
            except ValueError as exc:
                items.append(Failure(describe_exception(exc)))
        outcomes, latency = score_pairs(items, scorer=self.scorer, adapter=ADAPTER, shared=self._shared,
                                        fatal=self._fatal)
        self.streak.record(outcomes, ADAPTER)
        return [_as_verl(o, latency) for o in outcomes]

    def _run_one(self, solution_str: Any, ground_truth: Any, kwargs: dict) -> dict[str, float]:
        try:
            self._warn_unknown(kwargs)
            return self._run([solution_str], [ground_truth], ["ground_truth"])[0]
        except _LOUD:
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: verl would abort the step
            logger.exception("acecoder-rl verl: compute_score failed")
            return _as_verl(Failure(f"compute_score failed: {describe_exception(exc)}"), 0.0)


class VerlComputeScore(_VerlBase):
    """verl's ``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict``.

    ``ground_truth``: the row's tests (a list of assert strings, or a JSON string of one). ``data_source``
    and ``extra_info`` are not used: every sample routed here is scored as code. Returns::

        {"score": float,   # the training reward: RewardResult.reward (shaped)
         "acc": float,     # RewardResult.score in [0, 1] (pass rate, or all-pass in binary mode)
         **{key: float for key in SAMPLE_METRICS}}   # pass_rate, all_passed, code_found, status_*, ...

    A sample that cannot be scored gets ``score = acc = 0``, ``reward_error = 1`` and a WARNING log line.
    Raises (so that the trainer stops instead of training on zeros) only
    :class:`~acecoder_rl.integrations.common.ConfigError`, at the first call, for a bad ``ACECODER_REWARD_*``
    variable, and :class:`~acecoder_rl.integrations.common.RewardUnavailable` once
    ``$ACECODER_REWARD_MAX_FAILED_BATCHES`` calls in a row scored no sample.

    >>> compute_score = VerlComputeScore()
    >>> compute_score("acecode", "def add(a, b):\\n    return a + b", ["assert add(1, 2) == 3"])["score"]
    ... # doctest: +SKIP
    1.0
    """

    def __call__(self, data_source: Any = None, solution_str: Any = None, ground_truth: Any = None,
                 extra_info: Any = None, **kwargs: Any) -> dict[str, float]:
        return self._run_one(solution_str, ground_truth, kwargs)


_POOL_PROCESS_SCORER = SharedScorer(default_workers=1)


class VerlPrimeComputeScore(_VerlBase):
    """verl's ``prime`` manager (verl <= 0.6: ``reward_model.reward_manager=prime``,
    ``custom_reward_function.name=compute_score_prime``): ``compute_score_prime(data_source, solution_str,
    ground_truth, extra_info=None) -> float``, the shaped reward (``RewardResult.reward``); never raises.

    Why a function of its own: ``PrimeRewardManager`` takes a number, or ``result[0]`` of anything else (on
    :class:`VerlComputeScore`'s dict that is ``KeyError: 0``, and verl then rewards the whole batch 0 with
    only a print). It keeps no per-sample metrics: the batch's ``acc`` is this reward. A sample that cannot
    be scored gets 0.0 and a WARNING log line.

    Where it runs: for every batch the manager forks a ``ProcessPoolExecutor`` of 64 processes, sends each
    call there (pickled) and terminates the processes afterwards. Each process starts its own backend at
    its first sample (see :class:`~acecoder_rl.integrations.common.SharedScorer`) and scores one sample at a
    time, so a local engine there has one sandbox worker unless ``ACECODER_REWARD_CONFIG`` sets ``workers``;
    with ``ACECODER_REWARD_URL`` each process is only an HTTP client of the reward service. Not with
    ``ACECODER_REWARD_RAY=1``: verl runs the manager in a Ray worker, and Ray cannot be used in its forks
    (every sample fails with that reason).
    """

    _shared = _POOL_PROCESS_SCORER
    # verl's prime manager turns any exception of a call into 0.0 for the whole batch with only a print: a
    # raise cannot stop it, so here every failure stays a logged 0.0.
    _fatal = ()

    def __init__(self, scorer: RewardScorer | None = None) -> None:
        super().__init__(scorer, max_failed_batches=0)

    def __call__(self, data_source: Any = None, solution_str: Any = None, ground_truth: Any = None,
                 extra_info: Any = None, **kwargs: Any) -> float:
        return self._run_one(solution_str, ground_truth, kwargs)["score"]


class VerlBatchComputeScore(_VerlBase):
    """verl's batch form (``reward_model.reward_manager=batch``): ``compute_score_batch(data_sources,
    solution_strs, ground_truths, extra_infos=None, **kwargs) -> list[dict]``, one dict per sample as
    :class:`VerlComputeScore` returns; all samples are scored in one backend call. Raises only as
    :class:`VerlComputeScore` does.

    >>> compute_score_batch = VerlBatchComputeScore()
    >>> [d["score"] for d in compute_score_batch(["acecode"] * 2, ["def f():\\n    return 1", "nope"],
    ...                                          [["assert f() == 1"]] * 2)]   # doctest: +SKIP
    [1.0, 0.0]
    """

    def __call__(self, data_sources: Sequence[Any] = (), solution_strs: Sequence[Any] = (),
                 ground_truths: Sequence[Any] = (), extra_infos: Sequence[Any] | None = None,
                 **kwargs: Any) -> list[dict[str, float]]:
        try:
            self._warn_unknown(kwargs)
            if len(solution_strs) != len(ground_truths):
                failure = Failure(f"got {len(solution_strs)} solution_strs but "
                                  f"{len(ground_truths)} ground_truths")
                outcomes, latency = score_pairs([failure] * len(solution_strs), scorer=self.scorer,
                                                adapter=ADAPTER)
                return [_as_verl(o, latency) for o in outcomes]
            return self._run(list(solution_strs), list(ground_truths),
                             [f"ground_truths[{i}]" for i in range(len(ground_truths))])
        except _LOUD:
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: verl would abort the step
            logger.exception("acecoder-rl verl: compute_score_batch failed")
            failure = Failure(f"compute_score_batch failed: {describe_exception(exc)}")
            return [_as_verl(failure, 0.0) for _ in range(_length(solution_strs))]


def _length(values: Any) -> int:
    try:
        return len(values)
    except TypeError:
        return 0


def _as_verl(outcome: Outcome, latency_s: float) -> dict[str, float]:
    return {"score": reward_of(outcome), "acc": score_of(outcome), **sample_metrics(outcome, latency_s)}
