"""The OpenAI-compatible client against a real HTTP server on loopback: retries, give-ups, refusals, order."""

from __future__ import annotations

import time

import pytest

from acecoder_rl.data.pipeline.generation import EndpointBackend, EndpointUnavailable, Reply
from acecoder_rl.eval import GenerationSettings

CHAT = [{"role": "user", "content": "hi"}]
ONE = GenerationSettings(n=1, temperature=0.7)


def scripted(answers):
    """Answer the requests with ``answers`` in turn, the last one for ever after."""
    queue = list(answers)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def test_5xx_and_429_are_retried_with_back_off(endpoint, kit):
    endpoint.respond = scripted([kit.Answer(503, {"error": "busy"}),
                                 kit.Answer(429, {}, {"Retry-After": "0"}), kit.chat_answer(["done"])])
    with EndpointBackend(endpoint.url, "m", backoff=0.01, max_retries=2) as backend:
        assert backend.generate([CHAT], ONE) == [Reply(["done"])]
        stats = backend.stats()
    assert (stats["requests"], stats["retries"], stats["refused"]) == (3, 2, 0)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (10, 5)


def test_it_gives_up_after_the_retries_naming_the_last_error(endpoint, kit):
    endpoint.respond = scripted([kit.Answer(502, {"error": {"message": "bad gateway"}})])
    with EndpointBackend(endpoint.url, "m", backoff=0.0, max_retries=2) as backend:
        with pytest.raises(EndpointUnavailable, match=r"gave up after 2 retries: HTTP 502: bad gateway"):
            backend.generate([CHAT], ONE)
    assert len(endpoint.requests) == 3


def test_a_timeout_is_retried(endpoint, kit):
    endpoint.respond = scripted([kit.Answer(200, {}, delay=1.0), kit.chat_answer(["late but fine"])])
    with EndpointBackend(endpoint.url, "m", backoff=0.0, timeout=0.3) as backend:
        assert backend.generate([CHAT], ONE)[0].texts == ["late but fine"]
        assert backend.stats()["retries"] == 1


def test_a_200_without_choices_is_retried(endpoint, kit):
    endpoint.respond = scripted([kit.Answer(200, b"<html>proxy error</html>"), kit.chat_answer(["ok"])])
    with EndpointBackend(endpoint.url, "m", backoff=0.0) as backend:
        assert backend.generate([CHAT], ONE)[0].texts == ["ok"]


@pytest.mark.parametrize(("status", "hint"), [(401, "--api-key-env"), (404, "--api-base")])
def test_credentials_and_addresses_stop_at_once(endpoint, kit, status, hint):
    endpoint.respond = scripted([kit.Answer(status, {"error": {"message": "nope"}})])
    with EndpointBackend(endpoint.url, "m", backoff=0.0) as backend:
        with pytest.raises(EndpointUnavailable, match=f"HTTP {status}: nope .*{hint}"):
            backend.generate([CHAT], ONE)
    assert len(endpoint.requests) == 1


def test_a_refused_chat_is_that_chats_error_and_order_is_kept(endpoint, kit):
    def respond(request):
        content = request["body"]["messages"][0]["content"]
        if content == "too long":
            return kit.Answer(400, {"error": {"message": "context length exceeded"}})
        answer = kit.chat_answer([content.upper()])
        answer.delay = 0.3 if content == "slow" else 0.0  # answered last, still first in the output
        return answer

    endpoint.respond = respond
    chats = [[{"role": "user", "content": text}] for text in ("slow", "too long", "a", "b")]
    with EndpointBackend(endpoint.url, "m", concurrency=4) as backend:
        replies = backend.generate(chats, ONE)
        assert backend.stats()["refused"] == 1
    assert replies == [Reply(["SLOW"]), Reply([], "HTTP 400: context length exceeded"),
                       Reply(["A"]), Reply(["B"])]


def test_base_url_forms(endpoint, kit):
    endpoint.respond = scripted([kit.chat_answer(["x"])])
    for base in (endpoint.url, endpoint.url + "/", endpoint.url + "/chat/completions"):
        with EndpointBackend(base, "m") as backend:
            backend.generate([CHAT], GenerationSettings(n=1, temperature=0.0, max_new_tokens=7, seed=3))
    assert {request["path"] for request in endpoint.requests} == {"/v1/chat/completions"}
    body = endpoint.requests[-1]["body"]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["n"]) == (0.0, 7, 3, 1)
    assert "Authorization" not in endpoint.requests[-1]["headers"]  # no key: none sent


def test_a_fatal_answer_stops_the_requests_still_backing_off(endpoint, kit):
    def respond(request):
        if request["body"]["messages"][0]["content"] == "busy":
            return kit.Answer(503, {"error": "busy"}, {"Retry-After": "30"})
        return kit.Answer(401, {"error": {"message": "bad key"}}, delay=0.2)

    endpoint.respond = respond
    chats = [[{"role": "user", "content": text}] for text in ("busy", "key")]
    started = time.monotonic()
    with EndpointBackend(endpoint.url, "m", concurrency=2) as backend:
        with pytest.raises(EndpointUnavailable, match="HTTP 401: bad key"):
            backend.generate(chats, ONE)
    assert time.monotonic() - started < 10  # not the 30 s the busy one was told to wait
