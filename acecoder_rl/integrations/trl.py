"""TRL ``GRPOTrainer`` reward function (``reward_funcs=TRLReward()``).

How TRL 1.16 calls it (``trl/trainer/grpo_trainer.py``, ``_calculate_rewards``): once per generation batch,
in the training process, as ``reward_func(prompts=..., completions=..., completion_ids=..., **columns,
trainer_state=..., log_extra=..., log_metric=...)`` where ``columns`` are the dataset's other columns, one
value per completion (so ``test_cases`` arrives as a list of test lists). Completions are strings, or for
conversational datasets message lists (``[{"role": "assistant", "content": ...}]``). It expects one float
per completion (``None`` means "not applicable" and becomes NaN); the function's ``__name__`` names its
``rewards/<name>/mean`` metric, and the object must pickle for multi-process launchers.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from acecoder_rl.integrations.common import (
    METRIC_KEYS,
    Failure,
    describe_exception,
    logger,
    parse_tests_value,
    reward_of,
    sample_metrics,
    score_pairs,
)
from acecoder_rl.reward.scorer import RewardScorer

__all__ = ["TRLReward", "completion_text"]

ADAPTER = "trl"


class TRLReward:
    """A TRL reward function: ``(prompts, completions, **columns) -> list[float]``, the shaped reward
    (``RewardResult.reward``: the pass rate, or all-pass in binary mode, plus the configured bonus/penalty).

    The tests come from the dataset column ``tests_column`` (default ``test_cases``: a list of assert strings
    per row, or a JSON string of one). A missing column or a column whose length differs from the
    completions' is a wiring error and raises ``ValueError`` (at the first step). A sample that cannot be
    scored (malformed tests, backend down, bad configuration) gets 0.0 and a WARNING log line with the
    reason. When TRL passes ``log_metric``, the batch means of
    :data:`~acecoder_rl.integrations.common.METRIC_KEYS` are logged as ``acecoder/<key>``; with
    ``log_extra``, each completion's program status goes to the completions table (``acecoder_status``).

    ``scorer``: score through this backend instead of the process's shared one (picked by environment
    variables, see :mod:`acecoder_rl.integrations.common`); an instance without one pickles.

    >>> reward = TRLReward()
    >>> reward(prompts=["Write add."], completions=["def add(a, b):\\n    return a + b"],
    ...        test_cases=[["assert add(1, 2) == 3"]])                        # doctest: +SKIP
    [1.0]
    >>> from trl import GRPOTrainer                                           # doctest: +SKIP
    >>> trainer = GRPOTrainer(model=..., reward_funcs=reward, train_dataset=dataset)  # doctest: +SKIP
    """

    def __init__(self, *, tests_column: str = "test_cases", name: str = "acecoder_reward",
                 scorer: RewardScorer | None = None) -> None:
        self.tests_column = tests_column
        self.__name__ = name
        self.scorer = scorer

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        if self.tests_column not in kwargs:
            columns = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
            raise ValueError(f"{self.__name__}: the dataset has no '{self.tests_column}' column with the "
                             f"tests (columns passed: {', '.join(columns) or 'none'}); set tests_column=")
        tests_column = kwargs[self.tests_column]
        if len(tests_column) != len(completions):
            raise ValueError(f"{self.__name__}: {len(completions)} completions but {len(tests_column)} "
                             f"values in '{self.tests_column}'")
        items: list[tuple[str, list[str]] | Failure] = []
        for i, (completion, tests) in enumerate(zip(completions, tests_column, strict=True)):
            try:
                items.append((completion_text(completion),
                              parse_tests_value(tests, f"{self.tests_column}[{i}]")))
            except (TypeError, ValueError) as exc:
                items.append(Failure(describe_exception(exc)))
        outcomes, latency = score_pairs(items, scorer=self.scorer, adapter=ADAPTER)
        _log(outcomes, latency, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [reward_of(o) for o in outcomes]


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


def _log(outcomes: list, latency_s: float, log_metric: Callable | None, log_extra: Callable | None) -> None:
    """Report through TRL's logging hooks; a failing hook is logged and never costs the rewards."""
    if not outcomes:
        return
    try:
        if log_metric is not None:
            metrics = [sample_metrics(o, latency_s) for o in outcomes]
            for key in METRIC_KEYS:
                log_metric(f"acecoder/{key}", sum(m[key] for m in metrics) / len(metrics))
        if log_extra is not None:
            log_extra("acecoder_status",
                      ["reward_error" if isinstance(o, Failure) else o.status.value for o in outcomes])
    except Exception as exc:  # noqa: BLE001 - metrics are a convenience: the rewards are returned regardless
        logger.warning("acecoder-rl trl: logging the reward metrics failed: %s", describe_exception(exc))
