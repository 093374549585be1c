"""What the model is shown for each problem, as token ids (one encoding shared by every generation backend).

``chat`` (the default whenever the tokenizer has a chat template, base models such as Qwen2.5-Coder included):
the row's ``context_messages`` through the template, with the assistant turn opened. For HumanEval that
message asks for the whole program and shows the function header in a fenced block; the engine takes the code
from the reply's fenced block.

``plain`` (tokenizers without a chat template, or on request): the row's ``question`` text as it is, with the
tokenizer's usual special tokens (a BOS where the model uses one), and the model continues it. For HumanEval
this is NOT the original completion protocol (the bare function header, the completion appended to it): the
prompt is the instruction text around the header, and the continuation is scored on its own as a program, so
plain-prompt numbers of base models are not comparable with published HumanEval scores.

Token ids rather than text go to the backends so that a BOS token is never added twice (chat templates write
it as text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from acecoder_rl.errors import AcecoderError
from acecoder_rl.eval.problems import Problem

PromptStyle = Literal["auto", "chat", "plain"]


def encode_prompts(
    tokenizer: Any, problems: Sequence[Problem], style: PromptStyle = "auto"
) -> tuple[list[list[int]], Literal["chat", "plain"]]:
    """Prompt token ids per problem, and the style used (``auto`` resolved)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if style == "chat" and not has_template:
        raise AcecoderError("--prompt-style chat: the model's tokenizer has no chat template")
    if style == "plain" or not has_template:
        return [list(tokenizer(problem.question)["input_ids"]) for problem in problems], "plain"
    texts = [
        tokenizer.apply_chat_template(
            [dict(m) for m in problem.messages], add_generation_prompt=True, tokenize=False
        )
        for problem in problems
    ]
    return [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts], "chat"
