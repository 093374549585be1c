"""OpenRLHF's remote reward protocol (``--reward.remote_url http://host:port/get_reward``), as pure functions.

What OpenRLHF 0.11 does (``openrlhf/utils/agent.py``, ``SingleTurnAgentExecutor._fetch_rewards_via_http``):

- After generating, it decodes prompt + response token ids with ``skip_special_tokens=False`` and POSTs
  ``{"query": [that text], "prompts": [the chat-templated prompt], "labels": [the row's --data.label_key]}``
  (one sample per request; older releases sent whole batches, and with several URLs it shards a batch over
  them, so a server can also receive empty arrays). ``aiohttp`` with a 180 s total timeout; any failure
  (connection error, non-2xx status) is retried, 5 tries 1 s apart, then the sample gets no reward.
- From the JSON answer it reads ``rewards`` (the training reward), ``scores`` (falls back to ``rewards``;
  used by dynamic filtering, expected in [0, 1]) and ``extra_logs``, a dict whose every value becomes
  ``torch.tensor([value])`` in the sample's ``info`` and is averaged over samples when logged. So every
  ``extra_logs`` value here is a list with one number per sample, the same keys on every answer (also for
  an empty batch): the logged mean over a step is the mean over its samples.

This module holds the request parsing, the response building and :func:`response_from_query` (the policy's
answer inside ``query``), which the trainer-side plug-ins reuse. The server in ``app.py`` calls these.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from acecoder_rl.reward.results import ProgramStatus, RewardResult
from acecoder_rl.service.schema import (
    RequestError,
    decode_json_list,
    json_type,
    parse_tests,
    require_object,
    same_length,
    string_list,
)

__all__ = [
    "ASSISTANT_MARKERS",
    "END_TOKENS",
    "EXTRA_LOG_KEYS",
    "GetRewardRequest",
    "RequestError",
    "build_get_reward_response",
    "extra_logs",
    "parse_get_reward_request",
    "parse_label",
    "response_from_query",
]

# Tokens that end a turn or pad a sequence; stripped (repeatedly, with whitespace between) from the end.
END_TOKENS = (
    "<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end_of_text|>", "<|end|>", "<end_of_turn>",
    "<eos>", "<|EOT|>", "<｜end▁of▁sentence｜>", "<|end▁of▁sentence|>", "<|return|>", "<|eom_id|>",
    "<pad>", "<|pad|>", "<|finetune_right_pad_id|>",
)
# Sequence-start tokens a decoder may put in front of the prompt.
_START_TOKENS = ("<|begin_of_text|>", "<s>", "<bos>", "<｜begin▁of▁sentence｜>", "<|startoftext|>")

# Where an assistant turn starts, per chat-template family; the separator that the template itself puts
# after the marker is part of the marker. Special-token markers are tried first; the plain-text ones only
# when no special-token marker occurs (they can appear in ordinary prose).
ASSISTANT_MARKERS = (
    "<|im_start|>assistant\n",  # ChatML: Qwen, Yi, many fine-tunes
    "<|im_start|>assistant",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",  # Llama 3.x
    "<|start_header_id|>assistant<|end_header_id|>",
    "<start_of_turn>model\n",  # Gemma
    "<|start|>assistant",  # gpt-oss (harmony)
    "<｜Assistant｜>", "<|Assistant|>",  # DeepSeek V3 / R1
    "<|assistant|>\n", "<|assistant|>",  # Phi-3, Zephyr, GLM
    "[/INST]",  # Mistral, Llama 2
)
_PLAIN_MARKERS = ("### Response:", "Assistant:")


def _strip_end_tokens(text: str) -> str:
    """Remove end-of-turn / padding tokens at the end (and the whitespace after each); the response's own
    whitespace before the first of them is kept."""
    while True:
        trimmed = text.rstrip()
        for token in END_TOKENS:
            if trimmed.endswith(token):
                text = trimmed[: -len(token)]
                break
        else:
            return text


def _strip_start_tokens(text: str) -> str:
    changed = True
    while changed:
        changed = False
        for token in _START_TOKENS:
            if text.startswith(token):
                text = text[len(token):]
                changed = True
    return text


def _after_last_marker(text: str, markers: Sequence[str]) -> str | None:
    """Text after the marker occurrence that ends last (longest marker wins at the same position)."""
    best_end = -1
    for marker in markers:
        pos = text.rfind(marker)
        if pos >= 0:
            best_end = max(best_end, pos + len(marker))
    return None if best_end < 0 else text[best_end:]


_OPEN_THINK = re.compile(r"<think>(?![\s\S]*</think>)")


def _opens_thinking(prompt: str) -> bool:
    """Does the generation prompt end inside an opened ``<think>`` (R1-style templates)?"""
    tail = _after_last_marker(prompt, ASSISTANT_MARKERS)
    return bool(_OPEN_THINK.search(tail if tail is not None else prompt[-200:]))


def response_from_query(query: str, prompt: str) -> str:
    """The policy's response inside OpenRLHF's ``query`` (prompt + response, special tokens kept).

    1. ``query`` starts with ``prompt`` (also after dropping sequence-start tokens such as ``<s>`` from
       both): the rest of ``query``;
    2. else the text after the last assistant marker found (``<|im_start|>assistant``, Llama 3's header,
       ``[/INST]``...; plain ``### Response:`` / ``Assistant:`` only when there is no special-token one),
       leading whitespace dropped;
    3. else the whole ``query``.

    Trailing end-of-turn and padding tokens (``<|im_end|>``, ``<|endoftext|>``, ``</s>``, ``<|eot_id|>``...)
    are removed. When the prompt ends inside an opened ``<think>`` (templates that start the reasoning for
    the model), ``<think>`` is put back in front of the response so that code extraction drops the
    reasoning exactly as it would had the model written the tag itself.

    >>> response_from_query("<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\nx = 1<|im_end|>",
    ...                     "<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n")
    'x = 1'
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    prompt = prompt if isinstance(prompt, str) else ""
    response: str | None = None
    if prompt and query.startswith(prompt):
        response = query[len(prompt):]
    elif prompt:
        bare_query, bare_prompt = _strip_start_tokens(query), _strip_start_tokens(prompt)
        if bare_prompt and bare_query.startswith(bare_prompt):
            response = bare_query[len(bare_prompt):]
    if response is None:
        after = _after_last_marker(query, ASSISTANT_MARKERS)
        if after is None:
            after = _after_last_marker(query, _PLAIN_MARKERS)
        response = after.lstrip() if after is not None else query
        response = _strip_end_tokens(response)
        # The marker path already includes whatever the template put after the marker (a "<think>").
        return response
    response = _strip_end_tokens(response)
    if prompt and _opens_thinking(prompt) and not response.lstrip().startswith("<think>"):
        response = "<think>" + response
    return response


# --------------------------------------------------------------------------------------------- requests
@dataclass
class GetRewardRequest:
    """A parsed ``POST /get_reward`` body."""

    queries: list[str]
    prompts: list[str]
    labels: list[list[str]]

    def completions(self) -> list[str]:
        return [response_from_query(q, p) for q, p in zip(self.queries, self.prompts)]

    def __len__(self) -> int:
        return len(self.queries)


def parse_label(value: object, index: int) -> list[str]:
    """One row's tests: a list of strings, or a string holding a JSON array of strings."""
    field = f"labels[{index}]"
    if isinstance(value, str):
        value = decode_json_list(value, field)
        if not isinstance(value, list):
            raise RequestError(f"{field} is a string but decodes to {json_type(value)}, not an array of tests", field)
    elif not isinstance(value, list):
        raise RequestError(f"{field} must be an array of test strings (or a JSON string of one), "
                           f"got {json_type(value)}", field)
    return parse_tests(value, field)


def parse_get_reward_request(payload: object) -> GetRewardRequest:
    """Validate ``{"query": [str], "prompts": [str], "labels": [...]}``; extra keys are ignored (OpenRLHF
    versions differ). ``prompts`` may be omitted or null (responses are then found by assistant marker)."""
    body = require_object(payload)
    queries = string_list(body, "query")
    if body.get("prompts") is None:
        prompts = [""] * len(queries)
    else:
        prompts = string_list(body, "prompts")
    if "labels" not in body:
        raise RequestError("missing field 'labels' (the rows' test cases: OpenRLHF --data.label_key)", "labels")
    raw_labels = body["labels"]
    if not isinstance(raw_labels, list):
        raise RequestError(f"field 'labels' must be an array, got {json_type(raw_labels)}", "labels")
    same_length(query=queries, prompts=prompts, labels=raw_labels)
    labels = [parse_label(v, i) for i, v in enumerate(raw_labels)]
    return GetRewardRequest(queries, prompts, labels)


# -------------------------------------------------------------------------------------------- responses
EXTRA_LOG_KEYS = (
    "pass_rate", "all_passed", "code_found", "reward_latency_s", "program_s",
    *(f"status_{s.value}" for s in ProgramStatus),
)


def extra_logs(results: Sequence[RewardResult], latency_s: float) -> dict[str, list[float]]:
    """Per-sample numbers under fixed keys (see the module docstring): their mean over a training step is
    the step's mean pass rate, all-pass fraction, fraction with code found, status fractions, latency."""
    logs: dict[str, list[float]] = {key: [] for key in EXTRA_LOG_KEYS}
    for r in results:
        logs["pass_rate"].append(float(r.pass_rate))
        logs["all_passed"].append(1.0 if r.all_passed else 0.0)
        logs["code_found"].append(0.0 if r.status is ProgramStatus.NO_CODE else 1.0)
        logs["reward_latency_s"].append(round(float(latency_s), 6))
        logs["program_s"].append(round(float(r.duration_s), 6))
        for status in ProgramStatus:
            logs[f"status_{status.value}"].append(1.0 if r.status is status else 0.0)
    return logs


def build_get_reward_response(results: Sequence[RewardResult], latency_s: float) -> dict:
    """``{"rewards": [...], "scores": [...], "extra_logs": {...}}`` in request order."""
    return {
        "rewards": [float(r.reward) for r in results],
        "scores": [float(r.score) for r in results],
        "extra_logs": extra_logs(results, latency_s),
    }
