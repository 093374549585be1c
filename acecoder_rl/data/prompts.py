"""Optional system prompts put in front of each row's ``context_messages``.

``r1`` asks for DeepSeek-R1-style output: reasoning inside ``<think>...</think>``, then the final program
inside ``<answer>...</answer>``, so that a format reward can check the structure and the test reward can read
the code from the answer block alone. ``none`` leaves the messages as they are (AceCoder's own setting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acecoder_rl.errors import UsageError

if TYPE_CHECKING:
    from datasets import Dataset

R1_SYSTEM_PROMPT = (
    "You are a careful Python programmer. First reason about the problem step by step inside <think> and "
    "</think> tags: work out what is asked, the edge cases and a plan. Then write your final solution inside "
    "<answer> and </answer> tags as one complete, self-contained Python program in a ```python code block, "
    "with every import and helper it needs and no example usage or tests. Write nothing after </answer>."
)

SYSTEM_PROMPTS: dict[str, str | None] = {"none": None, "r1": R1_SYSTEM_PROMPT}


def with_system_prompt(messages: list[dict[str, Any]], prompt: str) -> list[dict[str, Any]]:
    """``messages`` with ``prompt`` as the system message.

    When the conversation already opens with a system message, the prompt is put before its text in that same
    message: many chat templates accept only one system message, and only in first place.
    """
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{prompt}\n\n{messages[0]['content']}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


def add_system_prompt(dataset: Dataset, name: str) -> Dataset:
    """Apply the system prompt called ``name`` (a key of :data:`SYSTEM_PROMPTS`) to every row."""
    if name not in SYSTEM_PROMPTS:
        raise UsageError(f"unknown system prompt {name!r}; choose from {', '.join(SYSTEM_PROMPTS)}")
    prompt = SYSTEM_PROMPTS[name]
    if prompt is None:
        return dataset

    def apply(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {
            "context_messages": [
                with_system_prompt(messages, prompt) for messages in batch["context_messages"]
            ]
        }

    return dataset.map(apply, batched=True, desc="adding the system prompt")
