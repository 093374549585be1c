"""Prometheus metrics of one service process (a private registry: several servers can share a process)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from acecoder_rl.reward.results import ProgramStatus, RewardResult, TestStatus

if TYPE_CHECKING:
    from acecoder_rl.service.app import ServiceState

PREFIX = "acecoder_reward"
ENDPOINTS = ("/get_reward", "/v1/score", "/health", "/metrics")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def endpoint_label(path: str) -> str:
    """A bounded label set: unknown paths (scanners, typos) all count as ``other``."""
    return path if path in ENDPOINTS else "other"


class ServiceMetrics:
    def __init__(self, state: ServiceState) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "code"], registry=r)
        self.latency = Histogram(f"{PREFIX}_request_duration_seconds", "HTTP request latency (whole request)",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.programs = Counter(f"{PREFIX}_programs", "Programs scored and returned, by endpoint",
                                ["endpoint"], registry=r)
        self.program_status = Counter(f"{PREFIX}_program_status", "Returned programs by program status",
                                      ["status"], registry=r)
        self.test_status = Counter(f"{PREFIX}_test_status", "Returned tests by verdict", ["status"], registry=r)
        self.cached = Counter(f"{PREFIX}_cached_results", "Returned programs answered from the verdict cache",
                              registry=r)
        self.sandbox_retries = Counter(f"{PREFIX}_sandbox_error_retries",
                                       "Programs scored again by the service after a sandbox_error result",
                                       registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected_requests",
                                "Scoring requests refused before scoring, by reason "
                                "(overloaded, starting, draining, too_large, unauthorized, invalid)",
                                ["reason"], registry=r)
        self.unscored = Counter(f"{PREFIX}_unscored_samples",
                                "/get_reward samples answered with reward 0 and reward_error 1 because their "
                                "own label or query is malformed (the rest of their request is scored)",
                                registry=r)
        Gauge(f"{PREFIX}_inflight_requests", "Scoring requests being handled", registry=r).set_function(
            lambda: state.inflight)
        Gauge(f"{PREFIX}_pending_programs", "Programs admitted and not yet answered (the bounded queue)",
              registry=r).set_function(lambda: state.pending)
        Gauge(f"{PREFIX}_max_pending_programs", "Bound on pending programs (beyond it: 503)",
              registry=r).set_function(lambda: state.service.max_pending)
        for status in ProgramStatus:  # so that every series exists from the start (rates need it)
            self.program_status.labels(status.value)
        for status in TestStatus:
            self.test_status.labels(status.value)
        r.register(_EngineCollector(state))

    def record_results(self, endpoint: str, results: list[RewardResult]) -> None:
        self.programs.labels(endpoint).inc(len(results))
        for res in results:
            self.program_status.labels(res.status.value).inc()
            for s in res.test_status:
                self.test_status.labels(s.value).inc()
            if res.cached:
                self.cached.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EngineCollector:
    """Values read from the engine and the service state at scrape time."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def describe(self) -> list:
        return []  # collected lazily; nothing to check at registration

    def collect(self):
        state = self.state
        engine = state.engine
        yield GaugeMetricFamily(f"{PREFIX}_ready", "1 when the engine is up and requests are accepted",
                                value=1.0 if state.phase == "ready" else 0.0)
        yield GaugeMetricFamily(f"{PREFIX}_stalled", "1 when programs are pending and none finished for "
                                "stall_after_s (the engine is stuck)", value=1.0 if state.stalled else 0.0)
        yield GaugeMetricFamily(f"{PREFIX}_uptime_seconds", "Seconds since the process started serving",
                                value=time.monotonic() - state.started_at)
        yield GaugeMetricFamily(f"{PREFIX}_workers", "Sandbox workers of the engine",
                                value=float(state.reward.n_workers))
        restarts = CounterMetricFamily(f"{PREFIX}_worker_restarts", "Sandbox worker restarts (a worker died "
                                       "or failed and was replaced)")
        restarts.add_metric([], float(engine.worker_restarts) if engine is not None else 0.0)
        yield restarts
        stats = engine.stats if engine is not None else {}
        for key, help_text in (("executed", "Programs run in the sandbox"),
                               ("cache_hits", ("Programs answered from the engine cache or an identical "
                                               "in-flight program")),
                               ("fallback_tests", "Tests whose comparison ran inside the child")):
            family = CounterMetricFamily(f"{PREFIX}_engine_{key}", help_text)
            family.add_metric([], float(stats.get(key, 0)))
            yield family
