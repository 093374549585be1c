"""Client of the reward service (``POST /v1/score``), a :class:`~acecoder_rl.reward.RewardScorer`.

>>> with RewardServiceClient(["http://10.0.0.5:5000", "http://10.0.0.6:5000"], token="...") as rm:  # doctest: +SKIP
...     results = rm.score(completions, test_cases)          # list[RewardResult], input order
...     results = await rm.ascore(completions, test_cases)   # from async code

A batch is cut into chunks of at most ``max_batch`` programs, spread round-robin over the URLs and sent
concurrently. Connection errors, timeouts and 502/503/504/429 answers are retried (``retries`` more times,
on the next URL each time) after ``Retry-After`` when the server sends one, else ``backoff`` seconds:
scoring is idempotent, so a retry can never count a program twice. A 400 raises ``ValueError`` (the
server's message names the field); other refusals and exhausted retries raise :class:`RewardServiceError`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import itertools
import json
import os
import random
import threading
import time
import weakref
from collections.abc import Sequence

import httpx

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward.labels import IOTests, PytestTests
from acecoder_rl.reward.results import RewardResult

TOKEN_ENV = "ACECODER_REWARD_TOKEN"
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_KNOWN_PATHS = ("/v1/score", "/get_reward", "/health", "/metrics")


class RewardServiceError(AcecoderError):
    """The reward service refused the request or could not be reached (after the retries)."""


def normalise_urls(urls: str | Sequence[str]) -> list[str]:
    """Base URLs from ``"http://a:5000,http://b:5000"`` or a list; an endpoint path or a missing scheme is
    tolerated (``a:5000/get_reward`` -> ``http://a:5000``)."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    out = []
    for raw in items:
        if not isinstance(raw, str):
            raise TypeError(f"reward service URL must be a string, got {type(raw).__name__}")
        url = raw.strip().rstrip("/")
        if not url:
            continue
        if "://" not in url:
            url = "http://" + url
        for path in _KNOWN_PATHS:
            url = url.removesuffix(path)
        out.append(url.rstrip("/"))
    if not out:
        raise ValueError("no reward service URL given")
    return out


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Retry(Exception):
    def __init__(self, message: str, delay: float | None) -> None:
        super().__init__(message)
        self.delay = delay


class RewardServiceClient:
    """Scores through one or more reward services; implements ``RewardScorer`` (score / ascore / close)."""

    def __init__(self, urls: str | Sequence[str], token: str | None = None, timeout: float = 180.0,
                 retries: int = 5, backoff: float = 1.0, *, max_batch: int = 1024,
                 max_retry_after: float = 30.0) -> None:
        self.urls = normalise_urls(urls)
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        if retries < 0 or backoff < 0 or timeout <= 0 or max_batch < 1:
            raise ValueError("RewardServiceClient needs retries >= 0, backoff >= 0, timeout > 0, max_batch >= 1")
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self.retries = retries
        self.backoff = backoff
        self.max_batch = max_batch
        self.max_retry_after = max_retry_after
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            self._headers["Authorization"] = f"Bearer {self.token}"
        self._limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self._lock = threading.Lock()
        self._rotation = itertools.count(random.randrange(len(self.urls)))
        self._sync: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._closed = False

    # ------------------------------------------------------------------------------------------ public
    def score(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        chunks = self._plan(completions, test_cases)
        if len(chunks) <= 1:
            parts = [self._post_sync(*c) for c in chunks]
        else:
            with concurrent.futures.ThreadPoolExecutor(min(len(chunks), 32)) as pool:
                parts = list(pool.map(lambda c: self._post_sync(*c), chunks))
        return [r for part in parts for r in part]

    async def ascore(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        chunks = self._plan(completions, test_cases)
        parts = await asyncio.gather(*(self._post_async(*c) for c in chunks))
        return [r for part in parts for r in part]

    def health(self) -> list[dict]:
        """``GET /health`` of every URL (no retries): the JSON body, with ``http_status`` added."""
        out = []
        for url in self.urls:
            try:
                resp = self._sync_client().get(url + "/health", timeout=10.0)
                out.append({**resp.json(), "http_status": resp.status_code, "url": url})
            except (httpx.HTTPError, ValueError) as exc:
                out.append({"status": "unreachable", "error": f"{type(exc).__name__}: {exc}", "url": url})
        return out

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.25) -> None:
        """Block until every URL answers ``/health`` 200, or raise RewardServiceError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.health()
            if all(s.get("http_status") == 200 for s in states):
                return
            if time.monotonic() > deadline:
                bad = [f"{s['url']}: {s.get('status')} {s.get('error', '')}".strip() for s in states
                       if s.get("http_status") != 200]
                raise RewardServiceError(f"reward service not ready after {timeout:g} s: {'; '.join(bad)}")
            time.sleep(interval)

    def close(self) -> None:
        """Close the HTTP connection pools (idempotent)."""
        self._closed = True
        with self._lock:
            sync, self._sync = self._sync, None
            clients = list(self._async.items())
            self._async = weakref.WeakKeyDictionary()
        if sync is not None:
            sync.close()
        for loop, client in clients:
            if loop.is_closed():
                continue  # its transports went with the loop
            if loop.is_running():
                if _running_loop() is loop:
                    loop.create_task(client.aclose())
                else:
                    asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            else:
                loop.run_until_complete(client.aclose())

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> RewardServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RewardServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --------------------------------------------------------------------------------------- internals
    def _plan(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[tuple[bytes, int, int]]:
        """Chunks as (JSON body, program count, index of the first URL to try)."""
        if self._closed:
            raise RuntimeError("RewardServiceClient is closed")
        if isinstance(completions, str) or isinstance(test_cases, str):
            raise ValueError("completions and test_cases must be sequences (one item per program), not a string")
        completions, test_cases = list(completions), list(test_cases)
        if len(completions) != len(test_cases):
            raise ValueError(f"got {len(completions)} completions but {len(test_cases)} test lists")
        chunks = []
        with self._lock:
            first = next(self._rotation)
        for k, start in enumerate(range(0, len(completions), self.max_batch)):
            part_c = completions[start : start + self.max_batch]
            part_t = [_wire_tests(t) for t in test_cases[start : start + self.max_batch]]
            # ASCII JSON: a lone surrogate in a completion travels as an escape, not as invalid UTF-8.
            body = json.dumps({"completions": part_c, "test_cases": part_t}, ensure_ascii=True).encode("ascii")
            chunks.append((body, len(part_c), (first + k) % len(self.urls)))
        return chunks

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(timeout=self.timeout, limits=self._limits)
            return self._sync

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                client = self._async[loop] = httpx.AsyncClient(timeout=self.timeout, limits=self._limits)
            return client

    def _attempt_url(self, first: int, attempt: int) -> str:
        return self.urls[(first + attempt) % len(self.urls)] + "/v1/score"

    def _post_sync(self, body: bytes, n: int, first: int) -> list[RewardResult]:
        last = ""
        for attempt in range(self.retries + 1):
            url = self._attempt_url(first, attempt)
            try:
                response = self._sync_client().post(url, content=body, headers=self._headers)
                return self._parse(response, url, n)
            except _Retry as retry:
                last, delay = str(retry), retry.delay
            except httpx.TransportError as exc:  # connection refused/reset, timeouts, a server that vanished
                last, delay = f"{url}: {type(exc).__name__}: {exc}", None
            if attempt < self.retries:
                time.sleep(self._delay(delay))
        raise RewardServiceError(f"reward service gave no answer after {self.retries + 1} attempts; last: {last}")

    async def _post_async(self, body: bytes, n: int, first: int) -> list[RewardResult]:
        last = ""
        for attempt in range(self.retries + 1):
            url = self._attempt_url(first, attempt)
            try:
                response = await self._async_client().post(url, content=body, headers=self._headers)
                return self._parse(response, url, n)
            except _Retry as retry:
                last, delay = str(retry), retry.delay
            except httpx.TransportError as exc:
                last, delay = f"{url}: {type(exc).__name__}: {exc}", None
            if attempt < self.retries:
                await asyncio.sleep(self._delay(delay))
        raise RewardServiceError(f"reward service gave no answer after {self.retries + 1} attempts; last: {last}")

    def _delay(self, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff * random.uniform(0.9, 1.1)  # a little jitter: retries of many clients spread out

    def _parse(self, response: httpx.Response, url: str, n: int) -> list[RewardResult]:
        status = response.status_code
        if status == 200:
            try:
                data = response.json()
                results = [RewardResult.from_dict(r) for r in data["results"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise RewardServiceError(f"{url}: malformed answer ({type(exc).__name__}: {exc})"[:500]) from None
            if len(results) != n:
                raise RewardServiceError(f"{url}: sent {n} programs, got {len(results)} results")
            return results
        message = _error_message(response)
        if status in _RETRY_STATUSES:
            raise _Retry(f"{url}: HTTP {status}: {message}", _retry_after(response))
        if status == 400:
            raise ValueError(f"reward service rejected the request: {message}")
        if status == 401:
            raise RewardServiceError(f"{url}: unauthorized ({message}); pass token= or set {TOKEN_ENV}")
        if status == 413:
            raise RewardServiceError(f"{url}: request too large ({message}); lower max_batch (now {self.max_batch})")
        raise RewardServiceError(f"{url}: HTTP {status}: {message}")


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        if isinstance(data, dict) and "error" in data:
            return str(data["error"])
    except ValueError:
        pass
    return response.text[:300]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wire_tests(tests: object) -> object:
    """One row's tests as JSON for the request: a tests object as its JSON form, a dict or a string (the
    service parses and checks both) as it is, any other sequence as a list of its items."""
    if isinstance(tests, (IOTests, PytestTests)):
        return tests.to_json()
    if isinstance(tests, (str, dict)):
        return tests
    return list(tests)
