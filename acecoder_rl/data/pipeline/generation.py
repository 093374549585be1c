"""Where the pipeline's text comes from: an OpenAI-compatible chat endpoint, or a model run on this machine.

Every step that generates (tests in ``synthesize-tests``, a reference solution in ``filter-tests``, samples in
``label``) sends chats and gets ``n`` replies per chat through one :class:`ChatBackend`, so the steps do not
know which kind they talk to:

* :class:`EndpointBackend`: ``POST {api_base}/chat/completions`` (OpenAI, vLLM's and SGLang's servers, ...),
  several requests at a time. 429, 5xx answers, timeouts and dropped connections are retried with
  exponential back-off (or after ``Retry-After``); when they persist the run stops, since every later
  request would fail too and a rerun resumes where it stopped. 401/403/404 stop it at once (a wrong key,
  base URL or model name). Any other refusal (400: a prompt over the context length, say) concerns one chat
  only: it comes back as that chat's :attr:`Reply.error` and the step decides.
* :class:`LocalBackend`: :class:`acecoder_rl.eval.generation.LocalGenerator` (vLLM on a GPU when installed,
  else transformers), the code ``acecoder-rl eval`` generates with, so a sample means the same in both.
  ``builtin:NAME`` models (:mod:`acecoder_rl.train.local.builtin_model`) are built into a temporary directory.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx

from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.eval.generation import Backend, GenerationSettings
from acecoder_rl.eval.problems import Problem

Chat = Sequence[dict[str, str]]
_Backend = TypeVar("_Backend", bound="_ContextManaged")
_RETRIED = frozenset({408, 409, 425, 429})  # and every 5xx
_FATAL = {401: "check the key (--api-key-env)", 403: "check the key (--api-key-env)",
          404: "check --api-base and the model name"}
_MAX_DELAY = 60.0


@dataclass(frozen=True)
class Reply:
    """The replies to one chat (``n`` texts), or why the endpoint refused that chat (``texts`` is empty)."""

    texts: list[str]
    error: str | None = None


class ChatBackend(Protocol):
    """What the steps generate through (see the module docstring)."""

    #: How many rows a step hands over at a time: enough for the backend to be busy, few enough that the
    #: output is written (and a rerun can resume) as the run goes.
    chunk_rows: int

    def generate(self, chats: Sequence[Chat], settings: GenerationSettings, *, json_output: bool = False
                 ) -> list[Reply]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendSpec:
    """Which backend to open: ``api_base`` set for an endpoint serving ``model``, else ``model`` is a local
    path, a Hub name or ``builtin:NAME``."""

    model: str
    api_base: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 6
    request_timeout: float = 600.0
    local_backend: Backend = "auto"

    def describe(self) -> dict[str, Any]:
        """The settings that change what is generated (a resumed run must not change them)."""
        return {"model": self.model, "api_base": self.api_base}


def open_backend(spec: BackendSpec, *, seed: int = 0) -> ChatBackend:
    """The backend ``spec`` names (close it, or use it as a context manager)."""
    if spec.api_base is None:
        return LocalBackend(spec.model, spec.local_backend, seed=seed)
    return EndpointBackend(spec.api_base, spec.model, api_key=os.environ.get(spec.api_key_env) or None,
                           concurrency=spec.concurrency, max_retries=spec.max_retries,
                           timeout=spec.request_timeout)


class _ContextManaged:
    def __enter__(self: _Backend) -> _Backend:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class EndpointUnavailable(AcecoderError):
    """The endpoint kept failing (after every retry) or refused the credentials: the run cannot go on."""


class _Retryable(Exception):
    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class EndpointBackend(_ContextManaged):
    """An OpenAI-compatible chat-completions endpoint (see the module docstring)."""

    def __init__(self, api_base: str, model: str, *, api_key: str | None = None, concurrency: int = 8,
                 max_retries: int = 6, timeout: float = 600.0, backoff: float = 1.0) -> None:
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            raise UsageError("need concurrency >= 1, max retries >= 0, a timeout > 0 and a back-off >= 0")
        base = api_base.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.chunk_rows = max(32, 4 * concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, limits=httpx.Limits(max_connections=concurrency),
                                    timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)))
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set when a generate call fails: its other requests give up

    def generate(self, chats: Sequence[Chat], settings: GenerationSettings, *, json_output: bool = False
                 ) -> list[Reply]:
        """``settings.n`` replies per chat, ``concurrency`` requests at a time, in chat order."""
        self._stop.clear()
        pool = concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="chat-endpoint")
        try:
            futures = [pool.submit(self._reply, chat, settings, json_output) for chat in chats]
            concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
            failed = next((f.exception() for f in futures if f.done() and f.exception() is not None), None)
            if failed is not None:
                raise failed
            return [future.result() for future in futures]
        except BaseException:  # the run stops (EndpointUnavailable, ^C): no request starts or retries now
            self._stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _reply(self, chat: Chat, settings: GenerationSettings, json_output: bool) -> Reply:
        """All ``n`` texts for one chat. A server may return fewer choices than asked (some ignore ``n``):
        the rest is asked for again."""
        texts: list[str] = []
        while len(texts) < settings.n:
            body: dict[str, Any] = {
                "model": self.model, "messages": [dict(m) for m in chat], "n": settings.n - len(texts),
                "temperature": settings.temperature, "top_p": settings.top_p,
                "max_tokens": settings.max_new_tokens, "seed": settings.seed,
            }
            if json_output:
                body["response_format"] = {"type": "json_object"}
            answer = self._post(body)
            if isinstance(answer, str):
                return Reply([], answer)
            texts.extend(answer)
        return Reply(texts[: settings.n])

    def _post(self, body: dict[str, Any]) -> list[str] | str:
        """The choices' texts, or the reason a 4xx refused this request. Retries what is worth retrying."""
        attempt = 0
        while True:
            try:
                return self._post_once(body)
            except _Retryable as exc:
                if attempt == self.max_retries:
                    raise EndpointUnavailable(
                        f"{self.url}: gave up after {self.max_retries} retries: {exc}") from None
                delay = exc.delay if exc.delay is not None else self.backoff * 2 ** attempt
                # jitter: requests refused together (a 429 burst) do not all come back together
                if self._stop.wait(min(delay, _MAX_DELAY) * (1 + 0.25 * random.random())):
                    raise EndpointUnavailable(f"{self.url}: stopped (another request failed)") from None
                attempt += 1
                self._count("retries")

    def _post_once(self, body: dict[str, Any]) -> list[str] | str:
        from acecoder_rl.service.client import _retry_after

        self._count("requests")
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status in _RETRIED or status >= 500:
            raise _Retryable(f"HTTP {status}: {_message(response)}", _retry_after(response))
        if status in _FATAL:
            raise EndpointUnavailable(f"{self.url}: HTTP {status}: {_message(response)} ({_FATAL[status]})")
        if status != 200:
            self._count("refused")
            return f"HTTP {status}: {_message(response)}"
        try:
            answer = response.json()
            texts = [choice["message"].get("content") or "" for choice in answer["choices"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _Retryable(f"HTTP 200 without chat choices: {response.text[:200]!r}") from None
        if not texts:
            raise _Retryable("HTTP 200 with no choices")
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(key), int):
                self._count(key, usage[key])
        return texts

    def _count(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def stats(self) -> dict[str, Any]:
        counts = {key: self._counts[key] for key in ("requests", "retries", "refused")}
        return {"backend": "endpoint", "url": self.url, "model": self.model, **counts,
                **{key: value for key, value in self._counts.items() if key.endswith("_tokens")}}

    def close(self) -> None:
        self._client.close()


def _message(response: httpx.Response) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]
        if isinstance(error, str):
            return error[:300]
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason_phrase


class LocalBackend(_ContextManaged):
    """A model on this machine (see the module docstring); it stays loaded until :meth:`close`."""

    def __init__(self, model: str, backend: Backend = "auto", *, seed: int = 0) -> None:
        from acecoder_rl.eval.generation import LocalGenerator
        from acecoder_rl.train.local.builtin_model import BUILDERS, builtin_name, is_builtin, materialize

        self.model = model
        self._built: Path | None = None
        path = model
        if is_builtin(model):
            if builtin_name(model) not in BUILDERS:
                raise UsageError(f"unknown built-in model {model!r}; known: "
                                 + ", ".join(f"builtin:{name}" for name in BUILDERS))
            self._built = Path(tempfile.mkdtemp(prefix="acecoder-rl-builtin-"))
            path = str(materialize(model, self._built, seed))
        try:
            self._generator = LocalGenerator(path, backend, seed=seed)
        except BaseException:
            self.close()
            raise
        self.chunk_rows = 512 if self._generator.backend == "vllm" else 32
        self._tokens = 0

    def generate(self, chats: Sequence[Chat], settings: GenerationSettings, *, json_output: bool = False
                 ) -> list[Reply]:
        """``settings.n`` replies per chat. ``json_output`` asks nothing of a local model: the step checks the
        reply. A tokenizer without a chat template gets the chat's texts one after another."""
        problems = [
            Problem(id=str(i), question="\n\n".join(m["content"] for m in chat),
                    messages=tuple(dict(m) for m in chat), tests=())
            for i, chat in enumerate(chats)
        ]
        generated = self._generator.generate(problems, settings)
        self._tokens += generated.tokens
        return [Reply(list(texts)) for texts in generated.completions]

    def stats(self) -> dict[str, Any]:
        return {"backend": self._generator.backend, "model": self.model,
                "generated_tokens": self._tokens}

    def close(self) -> None:
        if self._built is not None:
            shutil.rmtree(self._built, ignore_errors=True)
            self._built = None
