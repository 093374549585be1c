"""OpenRLHF 0.11 ``reward_func`` (``--reward.remote_url /path/to/reward_fns/openrlhf_reward.py``).

How OpenRLHF calls it (``openrlhf/utils/agent.py``, ``SingleTurnAgentExecutor``): the file is loaded with
``importlib`` in every vLLM rollout actor, and after each generation ``reward_func(queries, prompts, labels)``
runs through ``asyncio.to_thread``, one sample per call (lists of length 1), many samples at once. ``query``
is the decoded prompt + response with special tokens kept, ``prompt`` the chat-templated prompt, ``label``
the row's ``--data.label_key`` value (the ``test_cases`` list, or a JSON string of it). From the answer it
takes ``rewards`` -> ``torch.tensor([value])`` (the training reward), ``scores`` (dynamic filtering; falls
back to ``rewards``) and ``extra_logs``, each value of which becomes one number of the sample's ``info``
(``value.flatten()[0]`` for a tensor); every sample of a batch must carry the same ``extra_logs`` keys or
OpenRLHF fails when it splits the batch.

An exception inside ``reward_func`` is logged by OpenRLHF at INFO only and leaves that sample without a
reward; OpenRLHF then fails when it makes the step's experience (``reward_model_group is required when
rewards are not precomputed``, or a batch it cannot concatenate). So a sample that cannot be scored gets 0
and ``reward_error = 1`` instead, and only what means that the whole run would train on zeros raises, after
an ERROR line of our own: a configuration error (:class:`~acecoder_rl.integrations.common.ConfigError`) at
the first call, and a streak of calls with no sample scored
(:class:`~acecoder_rl.integrations.common.RewardUnavailable`).

Concurrent calls are not serialised: each one hands its program to the shared backend, whose ``score`` is
thread-safe and keeps all its sandbox workers busy with the programs of every pending call.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from acecoder_rl.integrations.common import (
    ConfigError,
    Failure,
    FailureStreak,
    Outcome,
    RewardUnavailable,
    describe_exception,
    logger,
    parse_tests_value,
    reward_of,
    sample_metrics,
    score_of,
    score_pairs,
)
from acecoder_rl.reward.results import SAMPLE_METRICS
from acecoder_rl.reward.interface import RewardScorer
from acecoder_rl.service.openrlhf_protocol import label_key_problem, response_from_query

__all__ = ["OpenRLHFReward"]

ADAPTER = "openrlhf"


class OpenRLHFReward:
    """OpenRLHF's ``reward_func(queries, prompts, labels, **kwargs) -> dict``.

    Returns, for ``n = len(queries)`` samples (OpenRLHF passes ``n = 1``):

    - ``"rewards"``: ``torch.float32`` tensor of shape ``[n]``, the shaped reward (``RewardResult.reward``);
    - ``"scores"``: ``torch.float32`` tensor of shape ``[n]`` in [0, 1] (``RewardResult.score``);
    - ``"extra_logs"``: ``{key: torch.float32 tensor of shape [n]}`` for every key of
      :data:`~acecoder_rl.reward.results.SAMPLE_METRICS` (pass rate, all passed, code found, one 0/1 flag
      per program status, latency, ``reward_error``), the keys of the reward service's ``extra_logs``.

    A sample that cannot be scored (malformed label, backend down) gets reward and score 0,
    ``reward_error = 1`` and a WARNING log line with the reason. Raises, with a one-line message logged at
    ERROR first: :class:`~acecoder_rl.integrations.common.ConfigError` for a bad ``ACECODER_REWARD_*``
    variable or a label that shows the wrong ``--data.label_key`` (``''``, chat messages);
    :class:`~acecoder_rl.integrations.common.RewardUnavailable` once ``max_failed_batches`` calls in a row
    scored no sample. Keyword arguments beyond the three (OpenRLHF's example ``reward_func`` takes
    ``**kwargs``) are accepted and not used.

    ``scorer``: score through this backend instead of the process's shared one (picked by environment
    variables, see :mod:`acecoder_rl.integrations.common`). ``max_failed_batches``: the streak limit
    [default: ``$ACECODER_REWARD_MAX_FAILED_BATCHES``, else 64; 0: never raise].

    >>> reward_func = OpenRLHFReward()
    >>> prompt = "<|im_start|>user\\nWrite add.<|im_end|>\\n<|im_start|>assistant\\n"
    >>> out = reward_func([prompt + "def add(a, b):\\n    return a + b<|im_end|>"], [prompt],
    ...                   [["assert add(1, 2) == 3"]])                          # doctest: +SKIP
    >>> out["rewards"], out["scores"], out["extra_logs"]["pass_rate"]         # doctest: +SKIP
    (tensor([1.]), tensor([1.]), tensor([1.]))
    """

    def __init__(self, scorer: RewardScorer | None = None, max_failed_batches: int | None = None) -> None:
        self.scorer = scorer
        self.max_failed_batches = max_failed_batches
        self.streak = FailureStreak(max_failed_batches)
        self._logged: set[str] = set()
        self._logged_lock = threading.Lock()

    def __call__(self, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any],
                 **kwargs: Any) -> dict:
        try:
            outcomes, latency = self._score(queries, prompts, labels)
        except (ConfigError, RewardUnavailable):
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: OpenRLHF would crash later
            logger.exception("acecoder-rl openrlhf: reward_func failed")
            n = len(queries) if isinstance(queries, Sequence) else 1
            outcomes, latency = [Failure(f"reward_func failed: {describe_exception(exc)}")] * n, 0.0
        self.streak.record(outcomes, ADAPTER)
        return _as_openrlhf(outcomes, latency)

    def _score(self, queries: Sequence[str], prompts: Sequence[str],
               labels: Sequence[Any]) -> tuple[list[Outcome], float]:
        n = len(queries)
        if len(prompts) != n or len(labels) != n:
            failure = Failure(f"got {n} queries, {len(prompts)} prompts and {len(labels)} labels")
            return score_pairs([failure] * n, scorer=self.scorer, adapter=ADAPTER)
        items: list[tuple[str, list[str]] | Failure] = []
        for i, (query, prompt, label) in enumerate(zip(queries, prompts, labels, strict=True)):
            problem = label_key_problem(label, f"labels[{i}]")
            if problem is not None:
                self._log_once(problem)
                raise ConfigError(problem)
            try:
                items.append((response_from_query(query, prompt), parse_tests_value(label, f"labels[{i}]")))
            except (TypeError, ValueError) as exc:
                items.append(Failure(describe_exception(exc)))
        return score_pairs(items, scorer=self.scorer, adapter=ADAPTER, fatal=(ConfigError,))

    def _log_once(self, message: str) -> None:
        """ERROR, once per message: OpenRLHF logs the exception of every sample, and at INFO only."""
        with self._logged_lock:
            if message in self._logged:
                return
            self._logged.add(message)
        logger.error("acecoder-rl %s: %s", ADAPTER, message)

    def __reduce__(self) -> tuple:
        """Pickles with its settings (a lock does not pickle); the failure streak starts afresh."""
        return (OpenRLHFReward, (self.scorer, self.max_failed_batches))


def _as_openrlhf(outcomes: Sequence[Outcome], latency_s: float) -> dict:
    import torch

    metrics = [sample_metrics(o, latency_s) for o in outcomes]
    return {
        "rewards": torch.tensor([reward_of(o) for o in outcomes], dtype=torch.float32),
        "scores": torch.tensor([score_of(o) for o in outcomes], dtype=torch.float32),
        "extra_logs": {key: torch.tensor([m[key] for m in metrics], dtype=torch.float32)
                       for key in SAMPLE_METRICS},
    }
