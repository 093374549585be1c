"""The reward service a run starts for itself (``reward.service.start``): up before the job, down after.

The service is ``acecoder-rl serve`` in a child process of the launcher (the machine that submits the job,
usually the Ray head). Its reward settings come from the run's ``reward.engine`` through ``serve``'s own
options, so the service scores exactly as the config says; a setting ``serve`` has no option for is refused
when the config is loaded (:data:`acecoder_rl.train.openrlhf.checks.SERVE_FLAGS`), never dropped silently.

A service that listens beyond loopback needs a token (``serve`` refuses it without one): the launching
shell's ``$ACECODER_REWARD_TOKEN``, else one made for the run (:func:`needs_run_token`).

Its log is appended to ``reward.service.start.log_path`` (``runs/<name>/reward_service.log``), and while the
run lasts the launcher watches its ``/health``: a service that exits, or stops answering 200 for
``unhealthy_after_s``, stops the run (see :meth:`StartedService.watch`).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward.options import engine_args
from acecoder_rl.service.process import TOKEN_ENV, ServiceProcess

if TYPE_CHECKING:
    from acecoder_rl.train.config import ServiceStart

_WILDCARD_HOSTS = ("0.0.0.0", "::", "")
HEALTH_POLL_S = 5.0
"""How often a started service's /health is asked while its run lasts."""
HEALTH_TIMEOUT_S = 10.0
"""A /health answer later than this counts as a failed one."""


def serve_args(start: ServiceStart, engine: dict) -> list[str]:
    """``acecoder-rl serve`` options (all but ``--port``) for a run's service."""
    args = ["--host", start.host]
    if start.workers is not None:
        args += ["--workers", str(start.workers)]
    return args + engine_args(engine)


def needs_run_token(start: ServiceStart) -> bool:
    """Whether the run must make a token for its service: it listens beyond this machine and the launching
    shell exports none. Passing ``--insecure`` instead would let anyone on the nodes' network use its CPUs."""
    from acecoder_rl.service.app import is_loopback

    return not is_loopback(start.host) and not os.environ.get(TOKEN_ENV)


def advertised_url(start: ServiceStart, hostname: str | None = None) -> str:
    """The URL the trainer's nodes use: a wildcard bind address is no address to connect to, so it becomes
    ``hostname`` (this machine's fully qualified name by default)."""
    host = start.advertise_host
    if host is None:
        host = (hostname or socket.getfqdn()) if start.host in _WILDCARD_HOSTS else start.host
    return f"http://{host}:{start.port}"


class StartedService:
    """``with StartedService(start, engine, url) as service:`` the service answers ``/health`` 200 inside the
    block (``service.url`` is where the trainer reaches it); ``token``: the one it requires (given as
    ``$ACECODER_REWARD_TOKEN``, never on its command line); ``log_path``: where its log is appended.

    Inside the block, :meth:`watch` keeps an eye on it for the run: a service that dies mid-run would
    otherwise leave the trainer retrying, or rewarding 0, until someone looks.
    """

    def __init__(self, start: ServiceStart, engine: dict, url: str, token: str | None = None,
                 log_path: Path | None = None) -> None:
        self.start = start
        self.args = serve_args(start, engine)
        self.url = url
        self.token = token
        self.log_path = log_path
        self.death: str | None = None
        """Why the service died during the run (set by :meth:`watch`), else None."""
        self._process: ServiceProcess | None = None
        self._watcher: threading.Thread | None = None
        self._stop_watching = threading.Event()

    def __enter__(self) -> StartedService:
        try:
            self._process = ServiceProcess(self.args, port=self.start.port,
                                           env={TOKEN_ENV: self.token} if self.token else None,
                                           start_timeout=self.start.startup_timeout_s, log_path=self.log_path)
            self._process.wait_ready(timeout=self.start.startup_timeout_s)
        except RuntimeError as exc:
            self.close()
            raise AcecoderError(f"reward service (acecoder-rl serve {' '.join(self.args)}) did not become "
                                f"healthy: {str(exc).splitlines()[0]}") from None
        return self

    def watch(self, stop_run: Callable[[], None]) -> None:
        """Until :meth:`close`, ask ``/health`` every :data:`HEALTH_POLL_S` seconds. When the process has
        exited, or ``/health`` has not answered 200 for ``unhealthy_after_s``, set :attr:`death` and call
        ``stop_run`` (once, from the watching thread)."""
        assert self._process is not None, "watch() inside the with block"
        self._watcher = threading.Thread(target=self._watch, args=(self._process, stop_run),
                                         name="reward-service-watch", daemon=True)
        self._watcher.start()

    def _watch(self, process: ServiceProcess, stop_run: Callable[[], None]) -> None:
        failing_since = None
        while not self._stop_watching.wait(HEALTH_POLL_S):
            code = process.proc.poll()
            if code is not None:
                death = f"it exited with status {code}"
            else:
                problem = _health_problem(process.url)
                if problem is None:
                    failing_since = None
                    continue
                failing_since = failing_since if failing_since is not None else time.monotonic()
                if time.monotonic() - failing_since < self.start.unhealthy_after_s:
                    continue
                death = f"its /health has not answered 200 for {self.start.unhealthy_after_s:g} s ({problem})"
            self.death = death
            stop_run()
            return

    def last_lines(self, n: int) -> list[str]:
        """The last ``n`` lines the service logged."""
        return list(self._process.lines)[-n:] if self._process is not None else []

    def close(self) -> None:
        self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        if self._process is not None and self._process.proc.poll() is None:
            self._process.stop()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _health_problem(url: str | None) -> str | None:
    """None when ``url``'s /health answers 200, else what it answered."""
    try:
        response = httpx.get(f"{url}/health", timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code == 200:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"
