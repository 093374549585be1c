"""The reward service a run starts for itself (``reward.service.start``): up before the job, down after.

The service is ``acecoder-rl serve`` in a child process of the launcher (the machine that submits the job,
usually the Ray head). Its reward settings come from the run's ``reward.engine`` through ``serve``'s own
options, so the service scores exactly as the config says; a setting ``serve`` has no option for is refused
when the config is loaded (:data:`SERVE_FLAGS`), never dropped silently.

A service that listens beyond loopback needs a token (``serve`` refuses it without one): the launching
shell's ``$ACECODER_REWARD_TOKEN``, else one made for the run (:func:`needs_run_token`).
"""
from __future__ import annotations

import os
import socket
from types import TracebackType

from acecoder_rl.cli.engine_options import ENGINE_OPTIONS, engine_args
from acecoder_rl.cli.serve_cmds import TOKEN_ENV
from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import ServiceStart

# reward.engine keys `acecoder-rl serve` has an option for (its workers come from reward.service.start).
SERVE_FLAGS = frozenset(o.field for o in ENGINE_OPTIONS) - {"workers"}
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


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
    """``with StartedService(start, engine, url) as url:`` the service answers ``/health`` 200 inside the
    block; ``token``: the one it requires (given as ``$ACECODER_REWARD_TOKEN``, never on its command line)."""

    def __init__(self, start: ServiceStart, engine: dict, url: str, token: str | None = None) -> None:
        self.start = start
        self.args = serve_args(start, engine)
        self.url = url
        self.token = token
        self._process = None

    def __enter__(self) -> str:
        from acecoder_rl.service.process import ServiceProcess

        try:
            self._process = ServiceProcess(self.args, port=self.start.port,
                                           env={TOKEN_ENV: self.token} if self.token else None,
                                           start_timeout=self.start.startup_timeout_s)
            self._process.wait_ready(timeout=self.start.startup_timeout_s)
        except RuntimeError as exc:
            self.close()
            raise AcecoderError(f"reward service (acecoder-rl serve {' '.join(self.args)}) did not become "
                                f"healthy: {str(exc).splitlines()[0]}") from None
        return self.url

    def close(self) -> None:
        if self._process is not None and self._process.proc.poll() is None:
            self._process.stop()
        self._process = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
