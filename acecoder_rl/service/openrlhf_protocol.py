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
  an empty batch): the logged mean over a step is the mean over its samples. Other keys are ignored.

Because a non-2xx answer costs the trainer every sample of the request (five retries, then no reward at
all), only a request that is malformed as a whole is refused (400: not an object, a column missing or not
an array, columns of different lengths). A sample whose own element is malformed (a label that holds no
tests, a query that is not a string) is answered like the trainer plug-in answers it: reward and score 0,
``reward_error`` 1 in ``extra_logs``, and the reason in the answer's ``errors`` list (null for the others).

This module holds the request parsing, the response building and :func:`response_from_query` (the policy's
answer inside ``query``), which the trainer-side plug-ins reuse. The server in ``app.py`` calls these.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from acecoder_rl.reward.labels import Tests
from acecoder_rl.reward.results import SAMPLE_METRICS, RewardResult, metrics_of
from acecoder_rl.service.schema import (
    RequestError,
    json_type,
    parse_tests,
    require_object,
    same_length,
)

__all__ = [
    "ASSISTANT_MARKERS",
    "END_TOKENS",
    "GetRewardRequest",
    "RequestError",
    "build_get_reward_response",
    "extra_logs",
    "label_key_problem",
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
Sample = tuple[str, list[str]]
"""One scoreable sample: the policy's response and the row's tests."""


@dataclass
class GetRewardRequest:
    """A parsed ``POST /get_reward`` body: per sample, in request order, what to score, or the
    :class:`RequestError` that keeps that one sample from being scored."""

    samples: list[Sample | RequestError]

    def __len__(self) -> int:
        return len(self.samples)

    def scoreable(self) -> list[Sample]:
        return [s for s in self.samples if not isinstance(s, RequestError)]

    def errors(self) -> list[RequestError]:
        return [s for s in self.samples if isinstance(s, RequestError)]


def label_key_problem(label: object, field: str) -> str | None:
    """Why ``label`` shows that the trainer was started with the wrong ``--data.label_key``, or None.

    Only two labels say that for sure: ``''`` is what OpenRLHF sends for every row when no label key is
    given, and a list of chat messages is the prompt column. Anything else that holds no tests may be one
    bad row of a good column, so it is left to the per-sample checks."""
    if isinstance(label, str) and not label.strip():
        return (f"{field} is {label!r}, which OpenRLHF sends when --data.label_key is not set: pass "
                "--data.label_key test_cases (the column that holds the tests)")
    if (isinstance(label, (list, tuple)) and label
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in label)):
        return (f"{field} holds chat messages, not tests: --data.label_key names the prompt column; pass "
                "--data.label_key test_cases (the column that holds the tests)")
    return None


def parse_label(value: object, index: int) -> Tests:
    """One row's tests: assert strings or a tests object, or either as a JSON string (the form OpenRLHF's
    ``--data.label_key`` column takes); see ``labels.parse_tests``."""
    field = f"labels[{index}]"
    problem = label_key_problem(value, field)
    if problem is not None:
        raise RequestError(problem, field)
    return parse_tests(value, field)


def parse_get_reward_request(payload: object) -> GetRewardRequest:
    """Validate ``{"query": [str], "prompts": [str], "labels": [...]}``; extra keys are ignored (OpenRLHF
    versions differ). ``prompts`` (or one of its elements) may be omitted or null: that response is then
    found by assistant marker.

    Raises :class:`RequestError` only for a body malformed as a whole (see the module docstring); a
    malformed element makes its sample a ``RequestError`` in :attr:`GetRewardRequest.samples`."""
    body = require_object(payload)
    queries = _array(body, "query", "the decoded prompt + response texts")
    prompts = [None] * len(queries) if body.get("prompts") is None else _array(body, "prompts", "the prompts")
    labels = _array(body, "labels", "the rows' test cases: OpenRLHF --data.label_key")
    same_length(query=queries, prompts=prompts, labels=labels)
    return GetRewardRequest([_sample(i, q, p, label)
                             for i, (q, p, label) in enumerate(zip(queries, prompts, labels))])


def _array(body: dict, key: str, what: str) -> list:
    if key not in body:
        raise RequestError(f"missing field '{key}' ({what})", key)
    value = body[key]
    if not isinstance(value, list):
        raise RequestError(f"field '{key}' must be an array, got {json_type(value)}", key)
    return value


def _sample(index: int, query: object, prompt: object, label: object) -> Sample | RequestError:
    try:
        if not isinstance(query, str):
            raise RequestError(f"query[{index}] must be a string, got {json_type(query)}", f"query[{index}]")
        if prompt is not None and not isinstance(prompt, str):
            raise RequestError(f"prompts[{index}] must be a string, got {json_type(prompt)}",
                               f"prompts[{index}]")
        tests = parse_label(label, index)
    except RequestError as exc:
        return exc
    return response_from_query(query, prompt or ""), tests


# -------------------------------------------------------------------------------------------- responses
def extra_logs(results: Sequence[RewardResult | None], latency_s: float) -> dict[str, list[float]]:
    """``extra_logs``: a list per :data:`~acecoder_rl.reward.results.SAMPLE_METRICS` key with one number per
    sample (see the module docstring), so the logged mean over a training step is the mean over its samples.
    None is a sample that could not be scored."""
    logs: dict[str, list[float]] = {key: [] for key in SAMPLE_METRICS}
    for r in results:
        for key, value in metrics_of(r, latency_s).items():
            logs[key].append(value)
    return logs


def build_get_reward_response(outcomes: Sequence[RewardResult | RequestError], latency_s: float) -> dict:
    """``{"rewards", "scores", "extra_logs", "errors"}`` in request order; a sample that is a RequestError
    gets reward and score 0, ``reward_error`` 1 and its message in ``errors`` (null for scored samples)."""
    results = [o if isinstance(o, RewardResult) else None for o in outcomes]
    return {
        "rewards": [0.0 if r is None else float(r.reward) for r in results],
        "scores": [0.0 if r is None else float(r.score) for r in results],
        "extra_logs": extra_logs(results, latency_s),
        "errors": [None if r is not None else str(o) for r, o in zip(results, outcomes)],
    }
