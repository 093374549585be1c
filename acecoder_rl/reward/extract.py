"""Code extraction from chat completions (text only: nothing here compiles or runs the policy's code).

Order of rules:
1. Drop reasoning: everything inside ``<think>...</think>``; an unclosed ``<think>`` hides the rest.
2. If an ``<answer>...</answer>`` section exists (R1-style prompts), only it is searched.
3. Fenced blocks (```python, ```py, ```python3 or bare ```; an unclosed fence runs to the end): choose the
   block that defines the most of the names the tests call (ties: the first); when no block defines any,
   the first block, as the reference harnesses do.
4. No fence: the whole text is the code (AceCode-87K's recorded completions are bare code).
Broken code is not repaired here; ``RewardConfig.salvage_code`` does that inside the sandbox.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+\-.]*)[^\n]*$", re.MULTILINE)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


def strip_reasoning(text: str) -> str:
    text = _THINK.sub("", text)
    if "<think>" in text:  # reasoning cut off by the length limit: no answer after it
        text = text[: text.index("<think>")]
    text = text.replace("</think>", "")
    answers = _ANSWER.findall(text)
    return answers[-1] if answers else text


def fenced_blocks(text: str) -> list[str]:
    """Python (or untagged) fenced blocks, in order."""
    blocks: list[str] = []
    matches = list(_FENCE.finditer(text))
    i = 0
    while i < len(matches):
        opening = matches[i]
        tag = opening.group(1).lower()
        closing = matches[i + 1] if i + 1 < len(matches) else None
        body_end = closing.start() if closing else len(text)
        if tag in _PYTHON_TAGS:
            blocks.append(text[opening.end() + 1 : body_end] if opening.end() < len(text) else "")
        i += 2
    return blocks


# ``def name``, ``class name`` or a top-level ``name = ...``: one pattern for every name (a pattern per
# entry name would be compiled afresh for each new task, ~0.5 ms each).
_DEFINITION = re.compile(r"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=",
                         re.MULTILINE)


def _definitions(code: str, names: Iterable[str]) -> int:
    defined = {a or b for a, b in _DEFINITION.findall(code)}
    return sum(1 for name in names if name in defined)


def extract_code(completion: str, entry_names: Iterable[str] = ()) -> str:
    """The code to run for ``completion``; an empty string means no code was found."""
    text = strip_reasoning(completion)
    blocks = fenced_blocks(text)
    if not blocks:
        return text.strip("\n") if text.strip() else ""
    if len(blocks) == 1:
        return blocks[0]
    names = list(entry_names)  # only consumed when there is a choice (callers may pass a lazy iterable)
    if names:
        scores = [_definitions(block, names) for block in blocks]
        best = max(scores)
        if best > 0:
            return blocks[scores.index(best)]
    return blocks[0]
