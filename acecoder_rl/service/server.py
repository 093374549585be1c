"""Running the reward service: uvicorn on a socket bound before anything else, graceful shutdown.

On SIGTERM or SIGINT the server stops accepting connections, ``/health`` and new scoring requests answer
503, requests in flight finish (up to ``shutdown_timeout_s``), then the engine is closed (every sandbox
process with it) and :func:`serve` returns normally, so the process exits 0. A second SIGINT forces the
exit (the engine is still closed).
"""
from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable

import uvicorn

from acecoder_rl.errors import AcecoderError, UsageError
from acecoder_rl.reward.config import RewardConfig
from acecoder_rl.reward.interface import ServedScorer
from acecoder_rl.service.app import ServiceConfig, ServiceState, create_app

log = logging.getLogger("uvicorn.error")


class _Server(uvicorn.Server):
    """uvicorn's server, marking the service as draining the moment a signal arrives, and not re-raising
    the signal after the graceful shutdown (uvicorn does, which would end the process with -SIGTERM)."""

    def __init__(self, config: uvicorn.Config, state: ServiceState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: object) -> None:
        if not self.should_exit:
            log.info("received %s: draining %d in-flight request(s), then closing the engine",
                     signal.Signals(sig).name, self.state.inflight)
        self.state.begin_drain()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket, or an AcecoderError naming the address (port in use, bad host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AcecoderError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = " (another process listens there; pick another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise AcecoderError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def open_to_network_error(host: str, ways_out: str) -> UsageError:
    """The refusal of a host that is not loopback without a token; ``ways_out`` in the caller's terms."""
    return UsageError(f"refusing to listen on {host} without a token (anyone who can reach it could run "
                      f"programs on this machine): {ways_out}")


def serve(reward: RewardConfig, service: ServiceConfig, *,
          on_listening: Callable[[str], None] | None = None,
          engine_factory: Callable[[], ServedScorer] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; raise AcecoderError if the address or the sandbox is unusable.

    A host that is not loopback needs ``service.token``, or ``service.insecure`` (UsageError otherwise).
    ``engine_factory``: builds the scorer behind the service (default: a local RewardEngine; ``--ray``: a
    RayRewardPool)."""
    if service.open_to_network and not service.insecure:
        raise open_to_network_error(service.host, "set ServiceConfig.token, or insecure=True to serve it "
                                                  "anyway")
    sock = bind_socket(service.host, service.port, service.reuse_port)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    try:  # this process is the service: no `*_created` series next to every counter
        import prometheus_client

        prometheus_client.disable_created_metrics()
    except AttributeError:  # older prometheus_client
        pass
    state = ServiceState(reward, service, engine_factory)
    app = create_app(state=state)
    config = uvicorn.Config(
        app, log_level=service.log_level, access_log=service.access_log, lifespan="on",
        timeout_graceful_shutdown=service.shutdown_timeout_s, timeout_keep_alive=30,
        server_header=False, proxy_headers=False,
    )
    server = _Server(config, state)
    if service.open_to_network:  # after uvicorn.Config, which configures the logger
        log.warning("listening on %s port %d without a token (insecure): anyone who can reach it can run "
                    "programs on this machine", host, port)

    def stop() -> None:  # called from the engine-start thread when the sandbox cannot start
        server.should_exit = True

    state.on_fatal = stop
    if on_listening is not None:
        on_listening(url)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits this way when the application fails to start
        if exc.code not in (0, None):
            raise AcecoderError(f"the reward service failed to start (exit {exc.code}); see the log above") from None
    finally:
        state.close_engine()
        sock.close()
    if state.start_error is not None:
        raise AcecoderError(state.start_error)
    sys.stderr.flush()
