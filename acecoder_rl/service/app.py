"""The reward service as an ASGI application (Starlette): routes, admission control, auth, metrics.

One :class:`~acecoder_rl.reward.RewardEngine` per process, started in the background when the application
starts (``/health`` answers 503 ``starting`` until it is up) and closed when it stops. Requests are scored
with ``engine.ascore``, so the event loop never waits on a program.

Endpoints:

- ``POST /get_reward``: OpenRLHF's remote reward protocol (see ``openrlhf_protocol.py``);
- ``POST /v1/score``: ``{"completions": [str], "test_cases": [[str]]}`` -> ``{"results": [RewardResult]}``;
- ``GET /health``: 200 ``{"status": "ok", ...}`` when serving, 503 while starting, draining, failed, or
  stalled (programs pending and none finished for ``stall_after_s``);
- ``GET /metrics``: Prometheus text format.

Limits: a request body over ``max_request_bytes`` or with more than ``max_batch`` programs gets 413; when
admitting a request would take the programs pending in this process over ``max_pending``, it gets 503 with
``Retry-After`` (memory stays bounded; clients retry). Malformed input gets 400 with
``{"error": message, "field": "test_cases[3]"}``; never a traceback. On ``/get_reward`` only a body
malformed as a whole does: a malformed sample (a label without tests) is answered in its batch with reward 0
and ``reward_error`` 1, as the trainer plug-ins answer it, since OpenRLHF gives up on every sample of a
refused request. With a token configured, every endpoint but ``/health`` needs ``Authorization: Bearer
<token>`` (or ``?token=`` for clients that cannot set headers, such as OpenRLHF's built-in one), compared
in constant time.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.interface import ServedScorer
from acecoder_rl.reward.results import ProgramStatus, RewardResult
from acecoder_rl.service import openrlhf_protocol
from acecoder_rl.service.metrics import ServiceMetrics, endpoint_label
from acecoder_rl.service.schema import RequestError, parse_score_request

log = logging.getLogger("uvicorn.error")  # uvicorn's configured logger: our lines interleave with its own

_OFFLOAD_JSON_BYTES = 1 << 20  # bodies above this are decoded in a thread, off the event loop


@dataclass(frozen=True)
class ServiceConfig:
    """How the service listens and protects itself (the reward semantics are in ``RewardConfig``)."""

    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None
    """Bearer token required on every endpoint but /health; None: no authentication."""
    insecure: bool = False
    """Listen on a host that is not loopback without a token anyway (see :attr:`open_to_network`)."""
    max_pending: int = 20_000
    """Programs admitted and not yet answered, over all requests; beyond it requests get 503."""
    max_batch: int = 4096
    """Programs per request; more gets 413."""
    max_request_bytes: int = 32 * 1024 * 1024
    retry_after_s: int = 1
    """``Retry-After`` sent with 503."""
    shutdown_timeout_s: float | None = 300.0
    """How long a graceful shutdown waits for in-flight requests (None: as long as they take)."""
    log_level: str = "info"
    access_log: bool = False
    reuse_port: bool = False
    """SO_REUSEPORT: a replacement process can listen on the same port while this one drains."""
    sandbox_error_retries: int = 2
    """Times a program whose result is ``sandbox_error`` (an infrastructure fault) is scored again."""
    stall_after_s: float | None = None
    """Programs pending and none finished for this long: the engine is stalled (/health and scoring answer
    503 ``stalled`` so that an orchestrator restarts the process). None: ``timeout_per_program + 30``."""

    def __post_init__(self) -> None:
        if self.token is not None and not self.token:
            raise ValueError("ServiceConfig.token must be a non-empty string or None")
        for name in ("max_pending", "max_batch", "max_request_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ServiceConfig.{name} must be a positive integer, got {value!r}")
        if self.max_batch > self.max_pending:
            raise ValueError(f"ServiceConfig.max_batch ({self.max_batch}) cannot exceed max_pending "
                             f"({self.max_pending}): such a request could never be admitted")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ServiceConfig.port must be in 0..65535, got {self.port}")
        if self.stall_after_s is not None and self.stall_after_s <= 0:
            raise ValueError("ServiceConfig.stall_after_s must be > 0 or None")
        if self.sandbox_error_retries < 0:
            raise ValueError("ServiceConfig.sandbox_error_retries must be >= 0")
        if self.retry_after_s < 0:
            raise ValueError("ServiceConfig.retry_after_s must be >= 0")

    @property
    def open_to_network(self) -> bool:
        """No token on a host that is not loopback: anyone who can reach the port can run programs on this
        machine's CPUs, so :func:`~acecoder_rl.service.server.serve` refuses it unless ``insecure``."""
        return self.token is None and not is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only: ``localhost``, 127.0.0.0/8 or ::1.

    Any other name counts as reachable from the network, whatever it resolves to, so that the rule does not
    depend on DNS; the wildcards ``0.0.0.0`` and ``::`` listen on every interface.
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return (mapped or address).is_loopback


class Problem(Exception):
    """An HTTP error answered as JSON ``{"error", "field"}`` (never a traceback)."""

    def __init__(self, status: int, message: str, *, field: str | None = None, headers: dict | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.headers = headers or {}
        self.reason = reason  # for the rejected-requests metric


class JSONResponse(Response):
    """JSON with non-ASCII escaped: lone surrogates (legal in a JSON string, and so in a completion or an
    error message echoed back) cannot make encoding the answer fail."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class ServiceState:
    """Everything one server process shares between requests. Mutated on the event loop only, except the
    engine start/stop (threads, under ``_lock``)."""

    def __init__(self, reward: RewardConfig, service: ServiceConfig,
                 engine_factory: Callable[[], ServedScorer] | None = None) -> None:
        self.reward = reward
        self.service = service
        self._factory = engine_factory or self._default_factory
        self.engine: ServedScorer | None = None
        self.phase = "starting"  # starting -> ready -> draining -> stopped; starting -> failed
        self.start_error: str | None = None
        self.started_at = time.monotonic()
        self.pending = 0
        self.inflight = 0
        self.on_fatal: Callable[[], None] | None = None  # set by the server: stop serving
        self._lock = threading.Lock()
        self._start_thread: threading.Thread | None = None
        self._closed = False
        self.stalled = False
        self.stall_after_s = service.stall_after_s or reward.timeout_per_program + 30.0
        self._last_executed = -1
        self._last_progress = time.monotonic()
        self.metrics = ServiceMetrics(self)
        self._token_digest = _digest(service.token) if service.token else None

    def _default_factory(self) -> ServedScorer:
        from acecoder_rl.reward.engine import RewardEngine

        return RewardEngine(self.reward)

    # ------------------------------------------------------------------------------------ engine life
    def begin_start(self) -> None:
        """Start the engine in a thread; the server listens (answering 503) meanwhile."""
        if self._start_thread is None:
            self._start_thread = threading.Thread(target=self._start_engine, name="reward-engine-start",
                                                  daemon=True)
            self._start_thread.start()

    def _start_engine(self) -> None:
        started = time.monotonic()
        try:
            engine = self._factory()
        except Exception as exc:  # noqa: BLE001 - AcecoderError (sandbox cannot start) or a bug: stop serving
            with self._lock:
                self.start_error = str(exc) or type(exc).__name__
                self.phase = "failed"
            log.error("reward engine failed to start: %s", self.start_error)
            if self.on_fatal is not None:
                self.on_fatal()
            return
        with self._lock:
            self.engine = engine
            if self.phase == "starting":
                self.phase = "ready"
        log.info("reward engine ready: %d workers (%s isolation) in %.2f s", self.reward.n_workers,
                 engine.features.get("isolation", "?"), time.monotonic() - started)

    def check_progress(self) -> None:
        """Stall watchdog (called every second): programs pending, and the engine finished none for
        ``stall_after_s``. The engine has no way to report a dead worker thread, whose programs then never
        finish; without this, /health would keep saying ok while every request hangs."""
        engine = self.engine
        if engine is None or self.phase != "ready":
            return
        executed = engine.stats.get("executed", 0)
        now = time.monotonic()
        if executed != self._last_executed or self.pending == 0:
            self._last_executed, self._last_progress = executed, now
            if self.stalled:
                log.warning("reward engine made progress again: no longer stalled")
                self.stalled = False
        elif not self.stalled and now - self._last_progress > self.stall_after_s:
            self.stalled = True
            log.error("reward engine stalled: %d programs pending and none finished for %.0f s; /health "
                      "answers 503 (restart this process)", self.pending, now - self._last_progress)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.check_progress()

    def begin_drain(self) -> None:
        with self._lock:
            if self.phase in ("starting", "ready"):
                self.phase = "draining"

    def close_engine(self) -> None:
        """Close the engine (waiting for a start still under way). Idempotent; blocking."""
        self.begin_drain()
        if self._start_thread is not None:
            self._start_thread.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            engine = self.engine
            if self.phase != "failed":
                self.phase = "stopped"
        if engine is not None:
            engine.close()

    # --------------------------------------------------------------------------------------- requests
    def check_token(self, request: Request) -> None:
        if self._token_digest is None:
            return
        given = None
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            given = credentials.strip()
        elif "token" in request.query_params:
            given = request.query_params["token"]
        # Compare fixed-size digests in constant time (no early exit, no length leak).
        if given is None or not hmac.compare_digest(_digest(given), self._token_digest):
            raise Problem(401, "missing or invalid token: send 'Authorization: Bearer <token>'",
                          headers={"WWW-Authenticate": 'Bearer realm="acecoder-rl reward"'}, reason="unauthorized")

    def refuse_if_unavailable(self, extra_programs: int = 0) -> None:
        """503 + Retry-After when not serving, or when ``extra_programs`` more would overflow the queue."""
        retry = {"Retry-After": str(self.service.retry_after_s)}
        if self.phase != "ready":
            message = {"starting": "the reward engine is starting", "draining": "the service is shutting down",
                       "stopped": "the service is shutting down"}.get(
                self.phase, f"the reward engine failed to start: {self.start_error}")
            raise Problem(503, message, headers=retry, reason=self.phase)
        if self.stalled:
            raise Problem(503, f"the reward engine is stalled (no program finished for over "
                               f"{self.stall_after_s:g} s)", headers=retry, reason="stalled")
        if self.pending + extra_programs > self.service.max_pending or self.pending >= self.service.max_pending:
            raise Problem(503, f"overloaded: {self.pending} programs pending (limit {self.service.max_pending}); "
                               "retry later", headers=retry, reason="overloaded")

    async def score(self, endpoint: str, completions: list[str], tests: list[list[str]]) -> list[RewardResult]:
        n = len(completions)
        if n > self.service.max_batch:
            raise Problem(413, f"the request has {n} programs; the limit is {self.service.max_batch} per request "
                               "(--max-batch): split the batch", field="completions", reason="too_large")
        if n == 0:
            return []
        self.refuse_if_unavailable(n)
        self.pending += n
        self.inflight += 1
        try:
            results = await self.engine.ascore(completions, tests)
            results = await self._retry_sandbox_errors(completions, tests, results)
        except ValueError as exc:  # the engine's own input checks (the parsers should have caught it)
            raise Problem(400, str(exc), reason="invalid") from None
        finally:
            self.pending -= n
            self.inflight -= 1
        self.metrics.record_results(endpoint, results)
        return results

    async def _retry_sandbox_errors(self, completions: list[str], tests: list[list[str]],
                                    results: list[RewardResult]) -> list[RewardResult]:
        """A ``sandbox_error`` is our infrastructure failing (the engine already restarted the worker and
        retried once), never the program's fault: score those programs again, up to
        ``sandbox_error_retries`` times, rather than hand the trainer a reward of 0 for them."""
        for _ in range(self.service.sandbox_error_retries):
            again = [i for i, r in enumerate(results) if r.status is ProgramStatus.SANDBOX_ERROR]
            if not again:
                break
            self.metrics.sandbox_retries.inc(len(again))
            log.warning("re-scoring %d program(s) that met a sandbox error: %s", len(again),
                        results[again[0]].error)
            fresh = await self.engine.ascore([completions[i] for i in again], [tests[i] for i in again])
            results = list(results)
            for i, r in zip(again, fresh):
                results[i] = r
        return results

    def health(self) -> tuple[int, dict]:
        engine = self.engine
        body = {
            "status": ("stalled" if self.stalled else "ok") if self.phase == "ready" else self.phase,
            "workers": engine.features.get("workers", self.reward.n_workers) if engine is not None
            else self.reward.n_workers,
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "pending_programs": self.pending,
            "max_pending": self.service.max_pending,
            "inflight_requests": self.inflight,
            "worker_restarts": engine.worker_restarts if engine is not None else 0,
            "isolation": engine.features.get("isolation") if engine is not None else None,
            "mode": self.reward.mode,
        }
        if self.start_error:
            body["error"] = self.start_error
        return (200 if self.phase == "ready" and not self.stalled else 503), body


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


async def read_json(request: Request, limit: int) -> object:
    """The body as JSON; 413 past ``limit`` bytes (announced or streamed), 400 when not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Problem(400, f"bad Content-Length header {declared!r}", reason="invalid") from None
        if size > limit:
            raise Problem(413, f"the request body is {size} bytes; the limit is {limit} (--max-request-mb)",
                          reason="too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"the request body exceeds the limit of {limit} bytes (--max-request-mb)",
                          reason="too_large")
    if not body.strip():
        raise Problem(400, "the request body is empty; expected a JSON object", reason="invalid")
    try:
        if len(body) > _OFFLOAD_JSON_BYTES:
            return await asyncio.to_thread(json.loads, bytes(body))
        return json.loads(bytes(body))
    except json.JSONDecodeError as exc:
        raise Problem(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}", reason="invalid") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise Problem(400, f"the request body is not valid JSON: {type(exc).__name__}", reason="invalid") from None


# ------------------------------------------------------------------------------------------- handlers
def _state(request: Request) -> ServiceState:
    return request.app.state.service


async def get_reward(request: Request) -> Response:
    state = _state(request)
    state.check_token(request)
    if state.phase != "ready" or state.stalled or state.pending >= state.service.max_pending:
        state.refuse_if_unavailable()  # cheap refusal before reading a large body
    payload = await read_json(request, state.service.max_request_bytes)
    started = time.monotonic()
    try:
        parsed = openrlhf_protocol.parse_get_reward_request(payload)
    except RequestError as exc:  # malformed as a whole: nothing in it can be scored
        raise Problem(400, str(exc), field=exc.field, reason="invalid") from None
    todo = parsed.scoreable()
    scored = iter(await state.score("/get_reward", [c for c, _ in todo], [t for _, t in todo]))
    outcomes = [s if isinstance(s, RequestError) else next(scored) for s in parsed.samples]
    errors = parsed.errors()
    if errors:
        state.metrics.unscored.inc(len(errors))
        log.warning("/get_reward: %d of %d sample(s) not scored (reward 0, reward_error 1): %s", len(errors),
                    len(parsed), errors[0])
    return JSONResponse(openrlhf_protocol.build_get_reward_response(outcomes, time.monotonic() - started))


async def score(request: Request) -> Response:
    state = _state(request)
    state.check_token(request)
    if state.phase != "ready" or state.stalled or state.pending >= state.service.max_pending:
        state.refuse_if_unavailable()
    payload = await read_json(request, state.service.max_request_bytes)
    try:
        completions, tests = parse_score_request(payload)
    except RequestError as exc:
        raise Problem(400, str(exc), field=exc.field, reason="invalid") from None
    results = await state.score("/v1/score", completions, tests)
    return JSONResponse({"results": [r.to_dict() for r in results]})


async def health(request: Request) -> Response:
    status, body = _state(request).health()
    return JSONResponse(body, status_code=status)


async def metrics(request: Request) -> Response:
    state = _state(request)
    state.check_token(request)
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


# ----------------------------------------------------------------------------------- error handling
async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if exc.reason is not None:
        _state(request).metrics.rejected.labels(exc.reason).inc()
    return JSONResponse({"error": str(exc), "field": exc.field}, status_code=exc.status, headers=exc.headers)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"error": exc.detail, "field": None}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error_handler(request: Request, exc: Exception) -> Response:
    # The traceback goes to the server log (Starlette re-raises after this answer), not to the client.
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log", "field": None},
                        status_code=500)


class _Instrument:
    """Pure ASGI middleware: counts every HTTP request by endpoint and status code, and its latency."""

    def __init__(self, app, state: ServiceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_label(scope.get("path", ""))
        code = [500]

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                code[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics = self.state.metrics
            metrics.requests.labels(endpoint, str(code[0])).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


def create_app(reward: RewardConfig | None = None, service: ServiceConfig | None = None, *,
               state: ServiceState | None = None,
               engine_factory: Callable[[], ServedScorer] | None = None) -> Starlette:
    """The ASGI app. Its lifespan starts the engine (in the background) and closes it at shutdown; the
    state is ``app.state.service``."""
    if state is None:
        state = ServiceState(reward or RewardConfig(), service or ServiceConfig(), engine_factory)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        state.begin_start()
        watchdog = asyncio.create_task(state.watch())
        try:
            yield
        finally:
            watchdog.cancel()
            state.begin_drain()
            await asyncio.get_running_loop().run_in_executor(None, state.close_engine)

    app = Starlette(
        routes=[
            Route("/get_reward", get_reward, methods=["POST"]),
            Route("/v1/score", score, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={Problem: _problem_handler, HTTPException: _http_exception_handler,
                            Exception: _internal_error_handler},
        lifespan=lifespan,
    )
    app.state.service = state
    app.add_middleware(_Instrument, state=state)
    return app
