"""The reward engine: a long-lived pool of sandbox workers behind ``score`` / ``ascore``.

Start the workers once (well under a second) and reuse them across calls; identical (code, tests) pairs are
scored once, within a batch and across batches (RL samples repeat). ``close()`` stops every worker, and with
it every process a program started. An engine serves only the process that started it: in a forked child
(process pools, DataLoader workers) its worker threads are gone, so ``score`` raises at once there and
``close`` leaves the parent's workers alone.
"""
from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward import labels
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.extract import called_names, extract_code
from acecoder_rl.reward.interface import validate_batch
from acecoder_rl.reward.labels import IOTests, PytestTests, Tests
from acecoder_rl.reward.results import ProgramOutcome, ProgramStatus, RewardResult, TestStatus
from acecoder_rl.reward.runner import ProgramRun, invalid_outcome
from acecoder_rl.reward.sandbox.isolation import fallback_launch, note_bwrap_works, prepare_launch
from acecoder_rl.reward.sandbox.worker import SandboxWorker, WorkerFailure
from acecoder_rl.reward.shaping import shape

_Job = tuple[str, str, Tests, str, concurrent.futures.Future]
logger = logging.getLogger(__name__)
# All of a row's tests together (they travel to the judge zygote in one frame of protocol.MAX_FRAME bytes).
MAX_ROW_CHARS = 4_000_000


class RewardEngine:
    """Sandboxed, test-based reward for code completions.

    >>> with RewardEngine(RewardConfig(workers=1)) as engine:            # doctest: +SKIP
    ...     [r] = engine.score(["def add(a, b):\\n    return a + b"], [["assert add(1, 2) == 3"]])
    ...     r.reward, r.status.value
    (1.0, 'ok')
    """

    def __init__(self, config: RewardConfig | None = None) -> None:
        self.config = config or RewardConfig()
        started = time.monotonic()
        cfg = self.config
        self._spec = prepare_launch(cfg.python or sys.executable, cfg.isolation)
        self._limits = {
            "memory_mb": cfg.memory_mb, "file_size_mb": cfg.file_size_mb, "max_open_files": cfg.max_open_files,
            "max_processes": cfg.max_processes, "error_cap": cfg.error_chars, "seccomp": cfg.seccomp,
            "cpu_seconds": int(cfg.timeout_per_program) + 5, "preimport_extra": list(cfg.preimport),
            "judge_memory_mb": cfg.judge_memory_mb, "max_test_depth": cfg.max_test_depth,
        }
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, ProgramOutcome] = OrderedDict()
        self._inflight: dict[str, concurrent.futures.Future] = {}
        self.stats: Counter[str] = Counter()
        self._closed = False
        self._pid = os.getpid()  # the only process whose threads serve the workers (see the module docstring)
        failures = self._start_workers()
        if failures:
            try:
                fallback = fallback_launch(self._spec)  # raises for isolation="bwrap" when bwrap is why
            except Exception:
                self.close()
                raise
            if fallback is not None:  # bubblewrap cannot work here: plain processes, with a loud warning
                self._stop_threads()
                self._stop_workers(keep_dirs=fallback.cleanup_dirs)
                self._spec = fallback
                failures = self._start_workers()
        if failures:
            self.close()
            raise AcecoderError(f"reward sandbox failed to start: {failures[0]}")
        if self._spec.mode == "bwrap":
            note_bwrap_works(self._spec.python)
        self.features = dict(self._workers[0].features, isolation=self._spec.mode)
        degraded = list(self._spec.degraded)  # what the launch lacks, then what the zygotes found missing
        if cfg.seccomp and not self.features.get("seccomp"):
            degraded.append(f"no seccomp filter ({self.features.get('seccomp_error', 'unavailable')}); "
                            "install libseccomp and pyseccomp")
        if self.features.get("unreadable_paths"):
            degraded.append("the programs' uid cannot read " + ", ".join(self.features["unreadable_paths"])
                            + " (a parent directory is closed to other users), so programs can import only the "
                            "modules the sandbox pre-imports; install bubblewrap or make the Python installation "
                            "readable to all users")
        if degraded:  # one warning naming everything missing
            warnings.warn("acecoder-rl reward sandbox is degraded: " + "; ".join(degraded), RuntimeWarning,
                          stacklevel=2)
        self.start_seconds = time.monotonic() - started

    # ------------------------------------------------------------------------------------------- public
    def score(self, completions: Sequence[str], test_cases: Sequence[object]) -> list[RewardResult]:
        """Score each completion against its tests (a list of assert strings, or a tests object: see
        ``labels.parse_tests``); results come back in input order."""
        return [self._shape(p) for p in self._submit(completions, test_cases)]

    def imap(self, pairs: Iterable[tuple[str, Sequence[str]]], window: int = 2048) -> Iterator[RewardResult]:
        """Score a stream of (completion, tests) pairs, yielding results in input order.

        At most ``window`` programs are queued at a time, so memory stays flat on arbitrarily long inputs
        while every worker stays busy (no barrier between chunks)."""
        pending: collections.deque = collections.deque()
        for completion, tests in pairs:
            pending.append(self._submit([completion], [tests])[0])
            if len(pending) >= window:
                yield self._shape(pending.popleft())
        while pending:
            yield self._shape(pending.popleft())

    def _shape(self, pending: object) -> RewardResult:
        if isinstance(pending, _Cached):
            return shape(pending.result(), self.config, cached=True)
        if isinstance(pending, concurrent.futures.Future):
            return shape(pending.result(), self.config)
        return shape(pending, self.config)

    async def ascore(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list[RewardResult]:
        """Async ``score`` for servers: the event loop is never blocked while programs run."""
        import asyncio  # here, not at the top: the engine's largest import, and only servers need it

        results = []
        for p in self._submit(completions, test_cases):
            if isinstance(p, concurrent.futures.Future):
                await asyncio.wrap_future(p)
            results.append(self._shape(p))
        return results

    def close(self) -> None:
        """Stop all workers; nothing started by the engine or by a program outlives this call.

        In a forked copy of the starting process it only marks the copy closed: the workers, their sockets
        and directories still serve the parent, and stopping them here would kill the parent's sandboxes."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            return
        self._stop_threads()
        self._stop_workers()

    def __enter__(self) -> "RewardEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def worker_restarts(self) -> int:
        return sum(w.restarts for w in self._workers)

    # ----------------------------------------------------------------------------------------- internals
    def _start_workers(self) -> list[BaseException]:
        """Start one thread per worker on a fresh queue; return the workers' start failures (if any).

        Each worker's zygote is started (and restarted) by the thread that serves it for the engine's whole
        life: bubblewrap's --die-with-parent follows the thread that started it, not the process."""
        self._workers = [SandboxWorker(self._spec, slot, self._limits)
                         for slot in range(self.config.n_workers)]
        self._queue = _RowQueues(len(self._workers))
        started_events = [concurrent.futures.Future() for _ in self._workers]
        self._threads = [threading.Thread(target=self._serve, args=(w, ev), name=f"reward-worker-{w.slot}",
                                          daemon=True) for w, ev in zip(self._workers, started_events)]
        for t in self._threads:
            t.start()
        return [e for e in (ev.exception() for ev in started_events) if e is not None]

    def _stop_threads(self) -> None:
        self._queue.stop()
        for t in self._threads:
            t.join()

    def _stop_workers(self, keep_dirs: Sequence[str] = ()) -> None:
        for w in self._workers:
            w.stop()
        for d in self._spec.cleanup_dirs:
            if d not in keep_dirs:
                shutil.rmtree(d, ignore_errors=True)

    def _submit(self, completions: Sequence[str], test_cases: Sequence[Sequence[str]]) -> list:
        if os.getpid() != self._pid:  # queued jobs would wait forever: no thread of this process serves them
            raise RuntimeError(f"this RewardEngine belongs to process {self._pid}; process {os.getpid()} "
                               "is a fork of it, where its worker threads do not exist: start one here")
        if self._closed:
            raise RuntimeError("RewardEngine is closed")
        cfg = self.config
        pending: list = []
        for completion, tests in zip(completions, validate_batch(completions, test_cases)):
            refused = _row_problem(tests, cfg)
            if refused is not None:
                pending.append(invalid_outcome(tests, refused))
                continue
            if len(completion) > cfg.max_completion_chars:
                error = f"completion of {len(completion)} characters is over the {cfg.max_completion_chars} limit"
                pending.append(ProgramOutcome(ProgramStatus.TOO_LARGE, [TestStatus.NOT_RUN] * len(tests),
                                              [error] * len(tests), "", error))
                continue
            code = extract_code(completion, _lazy_called_names(tests))
            if not code.strip():
                pending.append(ProgramOutcome(ProgramStatus.NO_CODE, [TestStatus.NOT_RUN] * len(tests),
                                              ["no code found in the completion"] * len(tests), ""))
                continue
            pending.append(self._lookup_or_enqueue(code, tests))
        return pending

    def _lookup_or_enqueue(self, code: str, tests: Tests):
        row = hashlib.sha256(json.dumps(labels.wire(tests)).encode("utf-8", "surrogatepass")).digest()
        key = hashlib.sha256(row + code.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            self.stats["programs"] += 1
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.stats["cache_hits"] += 1
                return _Cached(cached)
            future = self._inflight.get(key)
            if future is not None:
                self.stats["cache_hits"] += 1
                return future
            future = concurrent.futures.Future()
            self._inflight[key] = future
        self._queue.put((key, code, tests, row.hex(), future), row)
        return future

    def _serve(self, worker: SandboxWorker, started: concurrent.futures.Future) -> None:
        try:
            worker.start()
        except Exception as exc:  # reported by the constructor
            started.set_exception(exc)
            return
        started.set_result(None)
        while True:
            job = self._queue.get(worker.slot)
            if job is None:  # stopped here, by the thread that started it: its exit would SIGKILL the sandbox
                worker.stop()  # (--die-with-parent) before the zygotes could stop their processes in order
                return
            key, code, tests, row, future = job
            outcome = self._run(worker, code, tests, row)
            with self._lock:
                self._inflight.pop(key, None)
                self.stats["executed"] += 1
                self.stats[f"status.{outcome.status.value}"] += 1
                self.stats["fallback_tests"] += outcome.fallback_tests
                if self.config.cache_size and outcome.status is not ProgramStatus.SANDBOX_ERROR:
                    self._cache[key] = outcome
                    if len(self._cache) > self.config.cache_size:
                        self._cache.popitem(last=False)
            future.set_result(outcome)

    def _run(self, worker: SandboxWorker, code: str, tests: Tests, row: str) -> ProgramOutcome:
        """One program; a worker failure (not the program's fault) restarts the worker and retries once.

        Never raises: a worker thread that died would leave its programs' futures unresolved forever, so
        even a bug of ours becomes a logged ``sandbox_error`` outcome and a fresh worker."""
        last_error = ""
        for _attempt in range(2):
            try:
                if not worker.alive():
                    worker.restart()
                return ProgramRun(worker, self.config, code, tests, row).run()
            except Exception as exc:  # WorkerFailure, or anything unexpected: same recovery
                if not isinstance(exc, WorkerFailure):
                    logger.exception("reward worker %d: unexpected error; restarting it", worker.slot)
                last_error = f"{type(exc).__name__}: {exc}"
                try:
                    worker.restart()
                except Exception as again:
                    last_error = f"{type(again).__name__}: {again}"
        return ProgramOutcome(ProgramStatus.SANDBOX_ERROR, [TestStatus.NOT_RUN] * len(tests),
                              [f"sandbox error: {last_error}"[: self.config.error_chars]] * len(tests), code,
                              f"sandbox error: {last_error}")


def _lazy_called_names(tests: Tests) -> Iterator[str]:
    """The names the tests call, worked out only if extraction has several code blocks to choose from."""
    if isinstance(tests, IOTests):
        yield from ([tests.fn_name] if tests.fn_name else [])
    else:
        yield from called_names([tests.source] if isinstance(tests, PytestTests) else tests)


def _row_problem(tests: Tests, cfg: RewardConfig) -> str | None:
    """Why a row's tests are refused whole before any work (the limits a judge could not be given), or None.

    Only lengths are looked at here: test sources are hostile input and are parsed in the sandbox only."""
    if len(tests) > cfg.max_tests:
        return f"{len(tests)} tests, over the {cfg.max_tests} limit"
    total = 0
    for k, size in enumerate(labels.sizes(tests)):
        if size > cfg.max_test_chars:
            return f"test {k} has {size} characters, over the {cfg.max_test_chars} limit"
        total += size
    if total > MAX_ROW_CHARS:
        return f"the tests have {total} characters in all, over the {MAX_ROW_CHARS} limit"
    return None


class _RowQueues:
    """The workers' job queues: a row's programs go to one worker (whose judge zygote then plans the row
    once, not once per worker), and a worker with nothing of its own takes the oldest job of the busiest
    queue, so no worker idles while another has a backlog."""

    def __init__(self, n: int) -> None:
        self._queues: list[collections.deque[_Job]] = [collections.deque() for _ in range(n)]
        self._ready = threading.Condition()
        self._stopped = False

    def put(self, job: _Job, row: bytes) -> None:
        with self._ready:
            self._queues[int.from_bytes(row[:4], "big") % len(self._queues)].append(job)
            self._ready.notify_all()

    def get(self, slot: int) -> _Job | None:
        """The next job for worker ``slot``; None once stopped and every queue is empty."""
        with self._ready:
            while True:
                own = self._queues[slot]
                if own:
                    return own.popleft()
                busiest = max(self._queues, key=len)
                if busiest:
                    return busiest.popleft()
                if self._stopped:
                    return None
                self._ready.wait()

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify_all()


class _Cached:
    """A verdict served from the cache (so the result can say so)."""

    __slots__ = ("_outcome",)

    def __init__(self, outcome: ProgramOutcome) -> None:
        self._outcome = outcome

    def result(self) -> ProgramOutcome:
        return self._outcome
