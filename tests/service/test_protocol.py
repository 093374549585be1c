"""Pure pieces of the service: OpenRLHF protocol helpers, request validation, client URL/retry helpers."""
import json

import httpx
import pytest

from acecoder_rl.reward.results import SAMPLE_METRICS, ProgramStatus, RewardResult, TestStatus
from acecoder_rl.service.client import _retry_after, normalise_urls
from acecoder_rl.service.openrlhf_protocol import (
    build_get_reward_response,
    parse_get_reward_request,
    parse_label,
    response_from_query,
)
from acecoder_rl.service.schema import RequestError, parse_score_request

CODE = "```python\ndef f(x):\n    return x + 1\n```"
CHATML = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"
LLAMA3 = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWrite f.<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n")


# ----------------------------------------------------------------------------------- response_from_query
@pytest.mark.parametrize("prompt, end", [(CHATML, "<|im_end|>"), (LLAMA3, "<|eot_id|>"), ("Q: f?\nA:", "</s>"),
                                         (CHATML, "<|im_end|><|endoftext|>"), (CHATML, ""), (CHATML, "<|im_end|>\n")])
def test_prompt_prefix_removed_and_end_tokens_stripped(prompt, end):
    assert response_from_query(prompt + CODE + end, prompt) == CODE


def test_response_keeps_its_own_whitespace_and_inner_tokens():
    assert response_from_query(CHATML + "x = 1\n\n<|im_end|>", CHATML) == "x = 1\n\n"
    assert response_from_query(CHATML + "a <|im_end|> b", CHATML) == "a <|im_end|> b"
    assert response_from_query(CHATML, CHATML) == ""


def test_leading_bos_difference_is_tolerated():
    assert response_from_query("<s>" + "[INST] f [/INST]" + CODE + "</s>", "[INST] f [/INST]") == CODE
    assert response_from_query("[INST] f [/INST]" + CODE, "<s>[INST] f [/INST]") == CODE


@pytest.mark.parametrize("query, expected", [
    # the decoded prompt differs from the prompt string (e.g. truncated or re-tokenized): marker fallback
    ("<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n" + CODE + "<|im_end|>", CODE),
    ("<|start_header_id|>assistant<|end_header_id|>\n\n" + CODE + "<|eot_id|>", CODE),
    ("<s>[INST] Write f [/INST] " + CODE + "</s>", CODE),
    ("<start_of_turn>user\nf<end_of_turn>\n<start_of_turn>model\n" + CODE + "<end_of_turn>", CODE),
    ("<｜User｜>f<｜Assistant｜>" + CODE + "<｜end▁of▁sentence｜>", CODE),
    ("### Instruction:\nf\n### Response:\n" + CODE, CODE),
    # the last marker wins (multi-turn prompts)
    ("<|im_start|>assistant\nold<|im_end|>\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\nnew<|im_end|>",
     "new"),
])
def test_marker_fallback(query, expected):
    assert response_from_query(query, "a prompt that is not a prefix") == expected


def test_no_prompt_no_marker_gives_whole_query():
    assert response_from_query("def f(x):\n    return x\n<|endoftext|>", "") == "def f(x):\n    return x\n"
    assert response_from_query("plain text", "other") == "plain text"


def test_special_token_marker_preferred_over_plain_text_marker():
    query = "<|im_start|>user\nAssistant: is a word<|im_end|>\n<|im_start|>assistant\nx = 1<|im_end|>"
    assert response_from_query(query, "") == "x = 1"


def test_opened_think_in_prompt_is_put_back():
    prompt = CHATML + "<think>\n"
    response = response_from_query(prompt + "plan: ```python\ndef f(): pass\n```</think>\n" + CODE + "<|im_end|>",
                                   prompt)
    assert response.startswith("<think>plan:")
    closed = CHATML + "<think>\n\n</think>\n\n"  # a template that closes the (empty) reasoning itself
    assert response_from_query(closed + CODE, closed) == CODE


# ---------------------------------------------------------------------------------------- /get_reward
def test_labels_list_or_json_string():
    tests = ["assert f(1) == 2", "assert f(2) == 3"]
    assert parse_label(tests, 0) == tests
    assert parse_label(json.dumps(tests), 0) == tests
    req = parse_get_reward_request({"query": [CHATML + CODE, CHATML + CODE], "prompts": [CHATML, CHATML],
                                    "labels": [tests, json.dumps(tests)], "extra": 1})
    assert req.samples == [(CODE, tests), (CODE, tests)] and req.errors() == []


@pytest.mark.parametrize("body, field, words", [
    ([], None, "JSON object"),
    ({"prompts": [], "labels": []}, "query", "missing field 'query'"),
    ({"query": ["q"], "prompts": ["p"]}, "labels", "missing field 'labels'"),
    ({"query": "q", "prompts": ["p"], "labels": [["t"]]}, "query", "must be an array"),
    ({"query": ["q"], "prompts": "p", "labels": [["t"]]}, "prompts", "must be an array"),
    ({"query": ["q"], "prompts": ["p"], "labels": {"0": ["t"]}}, "labels", "must be an array"),
    ({"query": ["q"], "prompts": ["p", "p"], "labels": [["t"]]}, "query,prompts,labels", "same length"),
])
def test_requests_malformed_as_a_whole_are_errors_naming_the_field(body, field, words):
    with pytest.raises(RequestError) as info:
        parse_get_reward_request(body)
    assert info.value.field == field and words in str(info.value)


@pytest.mark.parametrize("query, prompt, label, field, words", [
    ("q", "p", 5, "labels[1]", "got a number"),
    ("q", "p", "not json", "labels[1]", "not JSON tests"),
    ("q", "p", '{"a": 1}', "labels[1]", "unknown key(s) 'a'"),
    ("q", "p", [], "labels[1]", "is empty"),
    ("q", "p", ["ok", 7], "labels[1][1]", "must be a test string"),
    ("q", "p", "", "labels[1]", "--data.label_key is not set"),
    ("q", "p", [{"role": "user", "content": "hi"}], "labels[1]", "holds chat messages"),
    (3, "p", ["t"], "query[1]", "must be a string"),
    ("q", 3, ["t"], "prompts[1]", "must be a string"),
])
def test_a_malformed_sample_is_marked_and_the_others_kept(query, prompt, label, field, words):
    req = parse_get_reward_request({"query": [CHATML + CODE, query, CHATML + CODE],
                                    "prompts": [CHATML, prompt, CHATML],
                                    "labels": [["assert f(1) == 2"], label, ["assert f(1) == 2"]]})
    good, bad, also_good = req.samples
    assert good == also_good == (CODE, ["assert f(1) == 2"]) and req.scoreable() == [good, also_good]
    assert isinstance(bad, RequestError) and req.errors() == [bad]
    assert bad.field == field and words in str(bad)


def test_prompts_may_be_omitted():
    req = parse_get_reward_request({"query": [CHATML + CODE], "labels": [["assert f(1) == 2"]]})
    assert req.samples == [(CODE, ["assert f(1) == 2"])]
    req = parse_get_reward_request({"query": [CHATML + CODE], "prompts": [None], "labels": [["t"]]})
    assert req.samples == [(CODE, ["t"])]


def _result(status: ProgramStatus, tests: list[int]) -> RewardResult:
    rate = sum(tests) / len(tests)
    return RewardResult(reward=rate, score=rate, pass_rate=rate, test_results=tests,
                        test_status=[TestStatus.PASS if t else TestStatus.FAIL for t in tests],
                        test_errors=[None] * len(tests), status=status, code="", duration_s=0.01)


def test_response_shape_and_extra_logs():
    results = [_result(ProgramStatus.OK, [1, 1]), _result(ProgramStatus.OK, [1, 0]),
               _result(ProgramStatus.NO_CODE, [0])]
    out = build_get_reward_response(results, 0.25)
    assert out["rewards"] == [1.0, 0.5, 0.0] and out["scores"] == [1.0, 0.5, 0.0]
    assert out["errors"] == [None, None, None]
    logs = out["extra_logs"]
    assert list(logs) == list(SAMPLE_METRICS)
    assert all(isinstance(v, list) and len(v) == 3 for v in logs.values())  # one number per sample
    assert logs["pass_rate"] == [1.0, 0.5, 0.0] and logs["code_found"] == [1.0, 1.0, 0.0]
    assert logs["status_ok"] == [1.0, 1.0, 0.0] and logs["status_no_code"] == [0.0, 0.0, 1.0]
    assert logs["all_passed"] == [1.0, 0.0, 0.0] and logs["reward_latency_s"] == [0.25] * 3
    assert logs["reward_error"] == [0.0, 0.0, 0.0]
    empty = build_get_reward_response([], 0.0)  # OpenRLHF sends empty shards when it has more URLs than samples
    assert empty["rewards"] == [] and set(empty["extra_logs"]) == set(SAMPLE_METRICS)
    json.dumps(out, allow_nan=False)


def test_a_failed_sample_is_zero_with_reward_error_and_its_reason():
    failed = RequestError("labels[1] is empty: a program needs at least one test to be scored", "labels[1]")
    out = build_get_reward_response([_result(ProgramStatus.OK, [1, 1]), failed], 0.5)
    assert out["rewards"] == [1.0, 0.0] and out["scores"] == [1.0, 0.0]
    assert out["errors"] == [None, str(failed)]
    logs = out["extra_logs"]
    assert logs["reward_error"] == [0.0, 1.0] and logs["reward_latency_s"] == [0.5, 0.5]
    others = [key for key in logs if key not in ("reward_error", "reward_latency_s")]
    assert all(logs[key][1] == 0.0 for key in others)


# -------------------------------------------------------------------------------------------- /v1/score
@pytest.mark.parametrize("body, field", [
    ({"completions": ["c"]}, "test_cases"),
    ({"test_cases": [["t"]]}, "completions"),
    ({"completions": ["c"], "test_cases": [["t"]], "test_case": 1}, "test_case"),
    ({"completions": ["c"], "test_cases": ["assert x"]}, "test_cases[0]"),
    ({"completions": ["c"], "test_cases": [[]]}, "test_cases[0]"),
    ({"completions": [None], "test_cases": [["t"]]}, "completions[0]"),
    ({"completions": ["c", "d"], "test_cases": [["t"]]}, "completions,test_cases"),
])
def test_score_request_errors(body, field):
    with pytest.raises(RequestError) as info:
        parse_score_request(body)
    assert info.value.field == field


def test_score_request_ok():
    assert parse_score_request({"completions": ["c"], "test_cases": [["t"]]}) == (["c"], [["t"]])


# ---------------------------------------------------------------------------------------------- client
def test_normalise_urls():
    assert normalise_urls("http://a:5000/get_reward, b:5001/,http://c:1/v1/score") == [
        "http://a:5000", "http://b:5001", "http://c:1"]
    with pytest.raises(ValueError):
        normalise_urls([])


def test_retry_after_header():
    assert _retry_after(httpx.Response(503, headers={"Retry-After": "3"})) == 3.0
    assert _retry_after(httpx.Response(503)) is None
    assert _retry_after(httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
