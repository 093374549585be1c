"""Training rows for TRL: the run config's ``data`` section as a ``datasets.Dataset`` with TRL's columns.

``data.path`` is ``builtin:quickstart`` (:mod:`acecoder_rl.data.quickstart`) or anything
:func:`acecoder_rl.data.load_acecode` reads (``sample``, a prepared ``train.jsonl``, a Hub name...). TRL's
``GRPOTrainer`` takes the prompt from a column named ``prompt``, so ``data.input_key`` (chat messages) is
renamed to it; ``data.label_key`` (the tests) stays as it is and is handed to the reward by name. Other
columns are dropped (TRL passes every column to the reward function on every step).

TRL 1.16 does not cut prompts, while OpenRLHF cuts them from the left to ``data.prompt_max_len`` tokens, which
would drop the start of the task. Here rows whose chat-templated prompt is longer are left out, and counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from acecoder_rl.errors import AcecoderError

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

    from acecoder_rl.train.config import DataSection

QUICKSTART = "builtin:quickstart"
PROMPT_COLUMN = "prompt"  # the column TRL reads prompts from


@dataclass(frozen=True)
class TrainingRows:
    dataset: Dataset
    tests_column: str
    too_long: int  # rows left out: prompt longer than data.prompt_max_len tokens


def load_training_rows(data: DataSection, tokenizer: PreTrainedTokenizerBase) -> TrainingRows:
    """Load ``data.path``, keep the first ``data.max_samples`` rows, rename the prompt column for TRL and
    drop rows whose prompt does not fit. Missing columns or no rows left are :class:`AcecoderError`."""
    from acecoder_rl.data import load_acecode
    from acecoder_rl.data.quickstart import load_quickstart

    dataset = load_quickstart() if data.path == QUICKSTART else load_acecode(data.path)
    for key, column in (("input_key", data.input_key), ("label_key", data.label_key)):
        if column not in dataset.column_names:
            raise AcecoderError(f"data.{key}: {data.path!r} has no column {column!r} (columns: "
                                f"{', '.join(dataset.column_names)})")
    if data.label_key == PROMPT_COLUMN:
        raise AcecoderError(f"data.label_key: {PROMPT_COLUMN!r} is where TRL reads the prompts; rename the "
                            "tests column")
    if data.max_samples is not None:
        dataset = dataset.select(range(min(data.max_samples, len(dataset))))
    dataset = dataset.select_columns([data.input_key, data.label_key])
    if data.input_key != PROMPT_COLUMN:
        dataset = dataset.rename_column(data.input_key, PROMPT_COLUMN)
    rows_in = len(dataset)
    keep = [i for i, messages in enumerate(dataset[PROMPT_COLUMN])
            if _prompt_tokens(tokenizer, messages) <= data.prompt_max_len]
    if not keep:
        raise AcecoderError(f"data.path: no rows of {data.path!r} to train on ({rows_in} read, all with "
                            f"prompts over data.prompt_max_len={data.prompt_max_len} tokens)")
    if len(keep) < rows_in:
        dataset = dataset.select(keep)
    return TrainingRows(dataset, data.label_key, rows_in - len(keep))


def _prompt_tokens(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> int:
    """Length of the prompt as TRL will tokenize it (chat template with the generation prompt)."""
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                            return_dict=True)
    return len(encoded["input_ids"])
