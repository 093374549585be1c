"""What every trainer plug-in shares: the backend chosen by environment variables, one per process, and the
failure policy (a sample that cannot be scored gets a logged reason and ``reward_error = 1``; verl and
OpenRLHF reward it 0, TRL leaves it out with ``None``; retrying cannot fix a configuration error, and a
streak of calls with no sample scored is an outage that the trainer should not train through).

Backend selection (read once, when the first sample of the process is scored):

- ``ACECODER_REWARD_URL=http://a:5000[,http://b:5000]``: the reward service(s) of ``acecoder-rl serve``,
  through :class:`~acecoder_rl.service.client.RewardServiceClient` (token from ``ACECODER_REWARD_TOKEN``).
  The engine settings are the server's; setting ``ACECODER_REWARD_CONFIG`` as well is an error.
- ``ACECODER_REWARD_RAY=1``: :class:`~acecoder_rl.reward.ray_pool.RayRewardPool` on the Ray cluster at
  ``RAY_ADDRESS`` (else the one this process is connected to, else a running local one).
- neither: a local :class:`~acecoder_rl.reward.RewardEngine` in this process.
- ``ACECODER_REWARD_CONFIG='{"mode": "binary", "workers": 8}'``: :class:`~acecoder_rl.reward.RewardConfig`
  fields as a JSON object for the local engine or the Ray pool (unknown keys and bad values are errors).

A backend that cannot be configured (bad JSON, unknown key, both URL and Ray set...) is a
:class:`ConfigError`, logged at ERROR once and never retried: the environment does not change in a running
process. An adapter that passes ``fatal=(ConfigError, ...)`` to :func:`score_pairs` raises it; for the
others every sample fails with that reason. A backend that cannot be started (no Ray cluster, no
sandbox...) is logged at ERROR with the reason; every sample scored meanwhile fails, and the backend is
tried again after :data:`RETRY_BUILD_AFTER_S` seconds.

- ``ACECODER_REWARD_MAX_FAILED_BATCHES`` (default :data:`DEFAULT_MAX_FAILED_BATCHES`; 0: never): a
  :class:`FailureStreak` raises :class:`RewardUnavailable` at that many reward calls in a row in which no
  sample was scored, so that the trainer stops instead of training on zeros.

A forked child (a process pool such as verl's ``prime`` manager's, DataLoader workers) does not use the
backend it inherited, whose threads, sockets and sandboxes belong to the parent: its first sample starts a
backend of its own, as in a new process (see :class:`SharedScorer`). Except a Ray pool in a child of a
process connected to Ray, where Ray's calls hang: that is a :class:`BackendError` at once.

>>> from acecoder_rl.integrations.common import backend_from_env
>>> backend_from_env({"ACECODER_REWARD_CONFIG": '{"mode": "binary"}'}).describe()
"local RewardEngine (mode='binary', workers=None)"
>>> backend_from_env({"ACECODER_REWARD_URL": "10.0.0.5:5000,10.0.0.6:5000"}).describe()
'reward service at http://10.0.0.5:5000, http://10.0.0.6:5000'
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.labels import Tests
from acecoder_rl.reward.results import RewardResult, metrics_of
from acecoder_rl.reward.interface import RewardScorer
from acecoder_rl.service.schema import parse_tests

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_MAX_FAILED_BATCHES",
    "MAX_FAILED_BATCHES_ENV",
    "RAY_ADDRESS_ENV",
    "RAY_ENV",
    "RETRY_BUILD_AFTER_S",
    "URL_ENV",
    "BackendError",
    "BackendSpec",
    "ConfigError",
    "Failure",
    "FailureLog",
    "FailureStreak",
    "Outcome",
    "RewardUnavailable",
    "SharedScorer",
    "backend_from_env",
    "describe_exception",
    "failure_log",
    "logger",
    "parse_tests_value",
    "reward_of",
    "sample_metrics",
    "score_of",
    "score_pairs",
    "shared_scorer",
]

logger = logging.getLogger("acecoder_rl.integrations")

URL_ENV = "ACECODER_REWARD_URL"
RAY_ENV = "ACECODER_REWARD_RAY"
CONFIG_ENV = "ACECODER_REWARD_CONFIG"
RAY_ADDRESS_ENV = "RAY_ADDRESS"
MAX_FAILED_BATCHES_ENV = "ACECODER_REWARD_MAX_FAILED_BATCHES"
RETRY_BUILD_AFTER_S = 30.0
"""After a backend failed to start, samples fail fast with that reason for this long before a new try."""
DEFAULT_MAX_FAILED_BATCHES = 64
"""Reward calls in a row with no sample scored before :class:`FailureStreak` raises. OpenRLHF makes one
call per sample, so there it is samples in a row: a few bad rows never add up to it, a backend that is
down or a label column that holds no tests does within a step."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class BackendError(AcecoderError):
    """The reward backend could not be configured or started; the message says why."""


class ConfigError(BackendError):
    """The reward is misconfigured (an environment variable, the trainer's label column): no retry can fix
    it. The message is one line, naming the variable or flag at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class RewardUnavailable(AcecoderError):
    """Too many reward calls in a row scored no sample (see :class:`FailureStreak`)."""


@dataclass(frozen=True)
class BackendSpec:
    """Which reward backend to build, as read from the environment (see the module docstring)."""

    kind: Literal["local", "http", "ray"]
    config: RewardConfig | None = None  # local and ray; None for http (the server has its own)
    urls: tuple[str, ...] = ()
    ray_address: str | None = None

    def build(self) -> RewardScorer:
        """Start the backend (a local engine starts its sandbox workers; a Ray pool places its actors)."""
        if self.kind == "http":
            from acecoder_rl.service.client import RewardServiceClient

            return RewardServiceClient(list(self.urls))
        if self.kind == "ray":
            from acecoder_rl.reward.ray_pool import RayRewardPool

            return RayRewardPool(self.config, address=self.ray_address)
        from acecoder_rl.reward.engine import RewardEngine

        return RewardEngine(self.config)

    def describe(self) -> str:
        if self.kind == "http":
            return f"reward service at {', '.join(self.urls)}"
        cfg = self.config or RewardConfig()
        settings = f"mode={cfg.mode!r}, workers={cfg.workers!r}"
        if self.kind == "ray":
            return f"RayRewardPool at {self.ray_address or 'the current/auto Ray cluster'} ({settings})"
        return f"local RewardEngine ({settings})"


def backend_from_env(environ: Mapping[str, str] | None = None) -> BackendSpec:
    """Read ``ACECODER_REWARD_URL`` / ``ACECODER_REWARD_RAY`` / ``ACECODER_REWARD_CONFIG`` (and
    ``RAY_ADDRESS``); raise :class:`ConfigError` naming the variable at fault."""
    env = os.environ if environ is None else environ
    urls_raw = env.get(URL_ENV, "").strip()
    ray_raw = env.get(RAY_ENV, "").strip().lower()
    config_raw = env.get(CONFIG_ENV, "").strip()
    if ray_raw not in _TRUE + _FALSE:
        raise ConfigError(f"{RAY_ENV}={env.get(RAY_ENV)!r}: use 1 (Ray reward pool) or 0")
    use_ray = ray_raw in _TRUE
    if urls_raw and use_ray:
        raise ConfigError(f"both {URL_ENV} and {RAY_ENV}=1 are set: choose one reward backend")
    if urls_raw:
        if config_raw:
            raise ConfigError(f"{CONFIG_ENV} has no effect with {URL_ENV}: the reward service's own options "
                               "(acecoder-rl serve --mode ... --workers ...) decide how it scores; "
                               "unset one of them")
        from acecoder_rl.service.client import normalise_urls

        try:
            return BackendSpec("http", urls=tuple(normalise_urls(urls_raw)))
        except ValueError as exc:
            raise ConfigError(f"{URL_ENV}={urls_raw!r}: {exc}") from None
    config = _config_from_json(config_raw)
    if use_ray:
        return BackendSpec("ray", config, ray_address=env.get(RAY_ADDRESS_ENV) or None)
    return BackendSpec("local", config)


def _config_from_json(text: str) -> RewardConfig:
    if not text:
        return RewardConfig()
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{CONFIG_ENV} is not valid JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{CONFIG_ENV} must be a JSON object of RewardConfig fields, got {text[:200]!r}")
    try:
        return RewardConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{CONFIG_ENV}: {exc}") from None


class SharedScorer:
    """The process's one reward backend: built from the environment by the first caller (the others wait),
    reused by every later call from any thread, closed at interpreter exit (``atexit``) or by :meth:`close`.

    A configuration error is kept: every later :meth:`get` raises the same :class:`ConfigError`. After a
    failed start, :meth:`get` raises :class:`BackendError` with the same reason without retrying for
    :data:`RETRY_BUILD_AFTER_S` seconds, then tries again. After :meth:`close`, the next :meth:`get` reads
    the environment again and starts a new backend.

    Fork-safe: in a forked child the holder forgets the backend it inherited without closing it (closing
    would stop the parent's sandboxes; scoring would wait forever on worker threads that exist only in the
    parent) and any failed start; the child's first :meth:`get` starts the child's own backend. A local
    engine or HTTP client is let go, so that the child's copies of the parent's sockets close (a zygote
    leaves when its socket closes, and the parent's ``close`` waits for that); a Ray pool stays referenced
    for the child's whole life, since finalizing Ray actor handles in a forked process breaks the parent's
    connection to Ray (its next call hangs).

    ``default_workers``: sandbox workers of a local engine when ``ACECODER_REWARD_CONFIG`` sets no
    ``workers``, for a holder used in processes that each score one sample at a time, many such processes
    per node (``None``: :class:`~acecoder_rl.reward.RewardConfig`'s default, 1.5 per core).
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *,
                 default_workers: int | None = None) -> None:
        self._environ = environ
        self.default_workers = default_workers
        self._atexit_registered = False
        self._start_afresh()
        _HOLDERS.add(self)

    def _start_afresh(self) -> None:
        """No backend and no failed start; a new lock (a forked child inherits the old one locked when
        another thread of the parent held it, and no thread of the child would ever release it)."""
        self._lock = threading.Lock()
        self._scorer: RewardScorer | None = None
        self.spec: BackendSpec | None = None
        self._config_error: str | None = None
        self._error: str | None = None
        self._error_at = 0.0

    def get(self) -> RewardScorer:
        scorer = self._scorer
        if scorer is not None:
            return scorer
        with self._lock:
            if self._scorer is not None:
                return self._scorer
            if self._config_error is not None:
                raise ConfigError(self._config_error)
            if self._error is not None and time.monotonic() - self._error_at < RETRY_BUILD_AFTER_S:
                raise BackendError(self._error)
            try:
                spec = self._spec()
            except ConfigError as exc:
                self._config_error = str(exc)
                logger.error("acecoder-rl: the reward is misconfigured: %s", exc)
                raise
            try:
                scorer = spec.build()
            except Exception as exc:  # any start failure becomes the samples' reason
                self._error = f"reward backend unavailable: {describe_exception(exc)}"
                self._error_at = time.monotonic()
                logger.error("acecoder-rl: %s (samples fail with this reason; retrying in %.0f s)",
                             self._error, RETRY_BUILD_AFTER_S)
                raise BackendError(self._error) from exc
            self._scorer, self.spec, self._error = scorer, spec, None
            if not self._atexit_registered:
                atexit.register(self.close)
                self._atexit_registered = True
            logger.info("acecoder-rl reward backend: %s", spec.describe())
            return scorer

    def _spec(self) -> BackendSpec:
        """The environment's backend as this process may start it."""
        spec = backend_from_env(self._environ)
        if spec.kind == "ray" and _forked_from_ray is not None:
            raise BackendError(f"{RAY_ENV}=1 in process {os.getpid()}, a fork of process "
                               f"{_forked_from_ray}, which is connected to Ray: Ray's calls hang after a "
                               "fork, so forked processes (process pools, DataLoader workers) must score "
                               f"through {URL_ENV}")
        if self.default_workers is not None and spec.kind == "local" and spec.config.workers is None:
            config = dataclasses.replace(spec.config, workers=self.default_workers)
            spec = dataclasses.replace(spec, config=config)
        return spec

    def close(self) -> None:
        """Stop the backend (a local engine's sandbox workers, a Ray pool's actors). Idempotent."""
        with self._lock:
            scorer, self._scorer, self.spec = self._scorer, None, None
            self._config_error = self._error = None
        if scorer is not None:
            scorer.close()


_HOLDERS: weakref.WeakSet[SharedScorer] = weakref.WeakSet()  # every holder, to reset in a forked child
_SHARED = SharedScorer()


def shared_scorer() -> SharedScorer:
    """The process-wide :class:`SharedScorer` that every plug-in uses unless given a scorer of its own."""
    return _SHARED


class FailureLog:
    """WARNING log of unscored samples: each distinct reason at once, then its repeats as one line with their
    count at most every ``interval_s`` seconds (a bad backend would otherwise log every sample of a step).
    Counts left over are logged by :meth:`flush`, which runs at interpreter exit. ``fate`` says what the
    adapter gave the sample instead of a verdict ("rewarded 0", "left out (reward None)")."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._start_afresh()

    def _start_afresh(self) -> None:
        """No counts (a forked child would log the parent's again) and a new lock (see SharedScorer)."""
        self.total = 0
        self._lock = threading.Lock()
        # (adapter, fate, reason) -> [repeats not logged yet, time of the last log line]
        self._pending: dict[tuple[str, str, str], list] = {}

    def record(self, adapter: str, reason: str, fate: str = "rewarded 0") -> None:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            entry = self._pending.get((adapter, fate, reason))
            if entry is None:
                self._pending[(adapter, fate, reason)] = [0, now]
                repeats = None
            elif now - entry[1] >= self.interval_s:
                repeats, entry[0], entry[1] = entry[0] + 1, 0, now
            else:
                entry[0] += 1
                return
        if repeats is None:
            logger.warning("acecoder-rl %s: sample %s: %s", adapter, fate, reason)
        else:
            logger.warning("acecoder-rl %s: %d more samples %s: %s", adapter, repeats, fate, reason)

    def flush(self) -> None:
        with self._lock:
            leftover = [(key, entry[0]) for key, entry in self._pending.items() if entry[0]]
            for entry in self._pending.values():
                entry[0] = 0
        for (adapter, fate, reason), count in leftover:
            logger.warning("acecoder-rl %s: %d more samples %s: %s", adapter, count, fate, reason)


_FAILURES = FailureLog()
atexit.register(_FAILURES.flush)


_forked_from_ray: int | None = None
"""In a process forked from one connected to Ray: that process's pid (Ray cannot be used here)."""
_INHERITED_RAY_POOLS: list[RewardScorer] = []  # never finalized here (see SharedScorer)


def _start_afresh_in_forked_child() -> None:
    global _forked_from_ray
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        _forked_from_ray = os.getppid()
    for holder in list(_HOLDERS):
        if holder._scorer is not None and holder.spec is not None and holder.spec.kind == "ray":
            _INHERITED_RAY_POOLS.append(holder._scorer)
        holder._start_afresh()
    _FAILURES._start_afresh()


os.register_at_fork(after_in_child=_start_afresh_in_forked_child)


def failure_log() -> FailureLog:
    """The process-wide :class:`FailureLog` (``total``: samples of this process that failed so far)."""
    return _FAILURES


@dataclass(frozen=True)
class Failure:
    """A sample that got no verdict: reported with ``reward_error = 1`` (verl and OpenRLHF reward it 0, TRL
    leaves it out)."""

    reason: str


Outcome = RewardResult | Failure


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    text = str(exc) if isinstance(exc, AcecoderError) else f"{type(exc).__name__}: {exc}"
    return text[:limit]


def parse_tests_value(value: object, field: str) -> Tests:
    """One row's tests as the trainers deliver them: a list (or tuple, or numpy array from a parquet column)
    of assert strings, a tests object (``labels.parse_tests``), or either as a JSON string. Raises
    ``ValueError`` naming ``field``."""
    return parse_tests(value, field)


def score_pairs(items: Sequence[tuple[str, list[str]] | Failure], *, scorer: RewardScorer | None,
                adapter: str, shared: SharedScorer | None = None, fate: str = "rewarded 0",
                fatal: tuple[type[Exception], ...] = ()) -> tuple[list[Outcome], float]:
    """Score the ``(completion, tests)`` items in one call of the backend (``scorer``, else ``shared``'s, else
    the process's shared one); items that are already a :class:`Failure` stay so. A backend error turns every
    item of the call into a Failure with its reason, except an error of a ``fatal`` type, which is raised (an
    adapter whose trainer must stop on a :class:`ConfigError` passes it). Every failure is recorded in the
    :class:`FailureLog` with ``fate``.

    Returns the outcomes in input order and the call's wall time in seconds."""
    started = time.monotonic()
    outcomes: list[Outcome] = [item if isinstance(item, Failure) else None for item in items]
    todo = [i for i, item in enumerate(items) if not isinstance(item, Failure)]
    if todo:
        try:
            backend = scorer if scorer is not None else (shared or _SHARED).get()
            results = backend.score([items[i][0] for i in todo], [items[i][1] for i in todo])
            if len(results) != len(todo):
                raise BackendError(f"the backend returned {len(results)} results for {len(todo)} programs")
        except fatal:
            raise
        except Exception as exc:  # noqa: BLE001 - the trainer must get a number for every sample (module doc)
            failure = Failure(describe_exception(exc))
            for i in todo:
                outcomes[i] = failure
        else:
            for i, result in zip(todo, results, strict=True):
                outcomes[i] = result
    for outcome in outcomes:
        if isinstance(outcome, Failure):
            _FAILURES.record(adapter, outcome.reason, fate)
    return outcomes, time.monotonic() - started


class FailureStreak:
    """Counts the reward calls in a row in which no sample was scored (a call with none to score does not
    count; one scored sample ends the streak). A backend that stays down, or a label column that holds no
    tests, would otherwise hand the trainer reward 0 for every sample, step after step, and it would train
    on that. At ``limit`` calls in a row, :meth:`record` logs an ERROR and raises :class:`RewardUnavailable`,
    and keeps raising until a call scores a sample again. Thread-safe.

    ``limit``: None reads ``ACECODER_REWARD_MAX_FAILED_BATCHES`` at the first call (a value that is not a
    whole number >= 0 is a :class:`ConfigError`); 0 never raises.
    """

    def __init__(self, limit: int | None = None, environ: Mapping[str, str] | None = None) -> None:
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"FailureStreak limit must be a whole number >= 0, got {limit!r}")
        self.limit = limit
        self._environ = environ
        self._config_error: str | None = None
        self.count = 0
        self._lock = threading.Lock()

    def record(self, outcomes: Sequence[Outcome], adapter: str) -> None:
        if not outcomes:
            return
        limit = self._limit()
        failures = [o for o in outcomes if isinstance(o, Failure)]
        with self._lock:
            if len(failures) < len(outcomes):
                self.count = 0
                return
            self.count += 1
            count = self.count
        if not limit or count < limit:
            return
        reason = " ".join(failures[-1].reason.splitlines())
        message = (f"no sample was scored in {count} reward calls in a row (last reason: {reason}); "
                   "raising so that the trainer stops instead of training on zeros "
                   f"({MAX_FAILED_BATCHES_ENV}={limit}; 0 never stops)")
        if count == limit:
            logger.error("acecoder-rl %s: %s", adapter, message)
        raise RewardUnavailable(message)

    def _limit(self) -> int:
        with self._lock:
            if self.limit is None and self._config_error is None:
                env = os.environ if self._environ is None else self._environ
                raw = env.get(MAX_FAILED_BATCHES_ENV, "").strip()
                if not raw:
                    self.limit = DEFAULT_MAX_FAILED_BATCHES
                elif raw.isdigit():
                    self.limit = int(raw)
                else:
                    self._config_error = (f"{MAX_FAILED_BATCHES_ENV}={raw!r}: use a whole number >= 0 "
                                          "(reward calls in a row with no sample scored before the reward "
                                          "raises; 0: never)")
                    logger.error("acecoder-rl: the reward is misconfigured: %s", self._config_error)
            if self._config_error is not None:
                raise ConfigError(self._config_error)
            return self.limit

    def __reduce__(self) -> tuple:
        """Pickles as a fresh streak with the same settings (a lock does not pickle, a count need not)."""
        return (FailureStreak, (self.limit, self._environ))


def reward_of(outcome: Outcome) -> float:
    """The shaped training reward (``RewardResult.reward``); 0.0 for a failure."""
    return 0.0 if isinstance(outcome, Failure) else float(outcome.reward)


def score_of(outcome: Outcome) -> float:
    """The score in [0, 1] (pass rate, or all-pass in binary mode); 0.0 for a failure."""
    return 0.0 if isinstance(outcome, Failure) else float(outcome.score)


def sample_metrics(outcome: Outcome, latency_s: float) -> dict[str, float]:
    """One sample's :data:`~acecoder_rl.reward.results.SAMPLE_METRICS` (the same keys for every sample, failed
    or not)."""
    return metrics_of(None if isinstance(outcome, Failure) else outcome, latency_s)
