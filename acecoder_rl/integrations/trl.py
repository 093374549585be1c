"""TRL ``GRPOTrainer`` reward function (``reward_funcs=TRLReward()``).

How TRL 1.16 calls it (``trl/trainer/grpo_trainer.py``, ``_calculate_rewards``): once per generation batch,
in the training process, as ``reward_func(prompts=..., completions=..., completion_ids=..., **columns,
trainer_state=..., log_extra=..., log_metric=...)`` where ``columns`` are the dataset's other columns, one
value per completion (so ``test_cases`` arrives as a list of test lists). Completions are strings, or for
conversational datasets message lists (``[{"role": "assistant", "content": ...}]``). It expects one float
per completion, or ``None`` for a completion the function does not apply to: ``None`` becomes NaN, a
completion for which every reward function gave ``None`` is left out of its group's baseline and gets
advantage 0, and ``rewards/<name>/mean`` averages only the others. The function's ``__name__`` names that
metric, and the object must pickle for multi-process launchers.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from acecoder_rl.integrations.common import (
    ConfigError,
    Failure,
    FailureStreak,
    Outcome,
    describe_exception,
    failure_log,
    logger,
    parse_tests_value,
    sample_metrics,
    score_pairs,
)
from acecoder_rl.reward.results import SAMPLE_METRICS, ProgramStatus
from acecoder_rl.reward.interface import RewardScorer
from acecoder_rl.service.schema import decode_json_list

__all__ = ["NO_VERDICT_STATUSES", "TRLReward", "completion_text"]

ADAPTER = "trl"
NO_VERDICT_STATUSES = frozenset({ProgramStatus.SANDBOX_ERROR, ProgramStatus.INVALID_TESTS})
"""Results that say nothing about the policy's code: our sandbox failed, or the row's tests were refused
whole. Like a sample that could not be scored at all, they get ``failure_reward``."""


class TRLReward:
    """A TRL reward function: ``(prompts, completions, **columns) -> list[float | None]``, the shaped reward
    (``RewardResult.reward``: the pass rate, or all-pass in binary mode, plus the configured bonus/penalty).

    The tests come from the dataset column ``tests_column`` (default ``test_cases``: a list of assert strings
    per row, or a JSON string of one). A missing column or a column whose length differs from the
    completions' is a wiring error and raises ``ValueError`` (at the first step).

    - A row without tests (``None``, ``""``, an empty list or a JSON string of one: in multi-task data, a
      row for other reward functions) gets ``None``: this function does not apply to it.
    - A sample whose scoring failed (malformed tests, an unusable completion, the backend down or
      misconfigured, a ``sandbox_error`` or ``invalid_tests`` result) gets ``failure_reward``, by default
      ``None`` as well, so that an infrastructure or data fault never becomes a learning signal, and a
      WARNING log line with the reason. ``failure_reward=0.0`` makes such samples count as failed code.

    When TRL passes ``log_metric``, the means of :data:`~acecoder_rl.reward.results.SAMPLE_METRICS` over
    the rows with tests are logged as ``acecoder/<key>`` (``reward_error``: the fraction that got no result
    at all; sandbox errors and refused tests count in their ``status_*``); with ``log_extra``, each
    completion's program status goes to the completions table (``acecoder_status``: ``reward_error`` for a
    sample without a result, ``no_tests`` for a row without tests).

    ``scorer``: score through this backend instead of the process's shared one (picked by environment
    variables, see :mod:`acecoder_rl.integrations.common`); an instance without one pickles.

    >>> reward = TRLReward()
    >>> reward(prompts=["Write add.", "Say hi."], completions=["def add(a, b):\\n    return a + b", "hi"],
    ...        test_cases=[["assert add(1, 2) == 3"], None])                  # doctest: +SKIP
    [1.0, None]
    >>> from trl import GRPOTrainer                                           # doctest: +SKIP
    >>> trainer = GRPOTrainer(model=..., reward_funcs=reward, train_dataset=dataset)  # doctest: +SKIP
    """

    def __init__(self, *, tests_column: str = "test_cases", name: str = "acecoder_reward",
                 scorer: RewardScorer | None = None, failure_reward: float | None = None) -> None:
        self.tests_column = tests_column
        self.__name__ = name
        self.scorer = scorer
        self.failure_reward = None if failure_reward is None else float(failure_reward)
        # Fail loudly (common's module docstring): a misconfigured backend raises at the first call, and so
        # does a streak of calls that scored nothing (RewardUnavailable), instead of training on None/zeros.
        self.streak = FailureStreak()

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 **kwargs: Any) -> list[float | None]:
        if self.tests_column not in kwargs:
            columns = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
            raise ValueError(f"{self.__name__}: the dataset has no '{self.tests_column}' column with the "
                             f"tests (columns passed: {', '.join(columns) or 'none'}); set tests_column=")
        tests_column = kwargs[self.tests_column]
        if len(tests_column) != len(completions):
            raise ValueError(f"{self.__name__}: {len(completions)} completions but {len(tests_column)} "
                             f"values in '{self.tests_column}'")
        rows: list[int] = []  # the completions whose row has tests, in order
        items: list[tuple[str, list[str]] | Failure] = []
        for i, (completion, tests) in enumerate(zip(completions, tests_column, strict=True)):
            field = f"{self.tests_column}[{i}]"
            try:
                if not _has_tests(tests, field):
                    continue
                item: tuple[str, list[str]] | Failure = (completion_text(completion),
                                                         parse_tests_value(tests, field))
            except (TypeError, ValueError) as exc:
                item = Failure(describe_exception(exc))
            rows.append(i)
            items.append(item)
        fate = ("left out (reward None)" if self.failure_reward is None
                else f"rewarded {self.failure_reward:g}")
        outcomes, latency = score_pairs(items, scorer=self.scorer, adapter=ADAPTER, fate=fate,
                                        fatal=(ConfigError,))
        self.streak.record(outcomes, ADAPTER)
        rewards: list[float | None] = [None] * len(completions)
        for i, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, Failure):
                rewards[i] = self.failure_reward
            elif outcome.status in NO_VERDICT_STATUSES:
                failure_log().record(ADAPTER, outcome.error or outcome.status.value, fate)
                rewards[i] = self.failure_reward
            else:
                rewards[i] = float(outcome.reward)
        _log(len(completions), rows, outcomes, latency, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return rewards


def _has_tests(value: Any, field: str) -> bool:
    """False for a row without tests; a malformed value is left for ``parse_tests_value`` to name."""
    if isinstance(value, str):
        if not value.strip():
            return False
        value = decode_json_list(value, field)
    if value is None:
        return False
    if isinstance(value, (list, tuple)) or callable(getattr(value, "tolist", None)):
        return len(value) > 0
    return True


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string as is; for a message list, the content of the last
    assistant message (text parts joined; an assistant turn without text, e.g. only tool calls, is "")."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role") == "assistant":
                return _content_text(message.get("content"))
        raise ValueError("the conversational completion holds no assistant message")
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    raise TypeError(f"an assistant message's content must be a string or a list of parts, "
                    f"got {type(content).__name__}")


def _log(n: int, rows: list[int], outcomes: list[Outcome], latency_s: float, log_metric: Callable | None,
         log_extra: Callable | None) -> None:
    """Report through TRL's logging hooks; a failing hook is logged and never costs the rewards.

    The metrics are means over the rows with tests (none are logged for a batch without any); the status
    column has one entry per completion, as TRL's completions table needs."""
    try:
        if log_metric is not None and outcomes:
            metrics = [sample_metrics(o, latency_s) for o in outcomes]
            for key in SAMPLE_METRICS:
                log_metric(f"acecoder/{key}", sum(m[key] for m in metrics) / len(metrics))
        if log_extra is not None and n:
            status = ["no_tests"] * n
            for i, outcome in zip(rows, outcomes, strict=True):
                status[i] = "reward_error" if isinstance(outcome, Failure) else outcome.status.value
            log_extra("acecoder_status", status)
    except Exception as exc:  # noqa: BLE001 - metrics are a convenience: the rewards are returned regardless
        logger.warning("acecoder-rl trl: logging the reward metrics failed: %s", describe_exception(exc))
