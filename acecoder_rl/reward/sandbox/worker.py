"""Parent-side handle of one sandbox worker (a zygote) and of the children it forks."""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time

from acecoder_rl.reward.sandbox import protocol
from acecoder_rl.reward.sandbox.isolation import LaunchSpec, program_uid

START_TIMEOUT_S = 60.0
# Nothing of the engine's environment (tokens, paths, cluster addresses) reaches programs.
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
CONTROL_TIMEOUT_S = 30.0


class WorkerFailure(Exception):
    """The zygote itself failed (died, hung, or refused): an infrastructure fault, not the program's."""


class ChildHandle:
    """One forked child: the parent talks to it over its own socket."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.reader = protocol.FrameReader(sock)

    def request(self, message: dict, deadline: float) -> object:
        """Send one request and wait for its answer until ``deadline`` (monotonic).

        Raises ``protocol.ChannelTimeout`` or ``protocol.ChannelClosed`` (the child died) or
        ``protocol.ProtocolError`` (the child wrote garbage).
        """
        try:
            protocol.send(self.sock, message)
        except OSError as exc:
            raise protocol.ChannelClosed(str(exc)) from None
        return self.reader.recv(deadline)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SandboxWorker:
    """A zygote process in the sandbox plus its control socket; restartable."""

    def __init__(self, spec: LaunchSpec, slot: int, limits: dict) -> None:
        self.spec = spec
        self.slot = slot
        self.uid = program_uid()
        self.limits = limits
        self.proc: subprocess.Popen | None = None
        self.ctrl: socket.socket | None = None
        self.features: dict = {}
        self.restarts = 0
        self._ready: ChildHandle | None = None  # handed over with the previous finish, not yet used

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cfg = dict(self.limits, uid=self.uid, scratch_root=self.spec.scratch_root)
        log = open(self.log_path, "ab")  # the zygote's own errors (never a program's output)
        try:
            self.proc = subprocess.Popen(
                self.spec.command(theirs.fileno(), cfg), pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True, env=SANDBOX_ENV,
            )
        finally:
            theirs.close()
            log.close()
        self.ctrl = ours
        try:
            hello = protocol.recv(ours, time.monotonic() + START_TIMEOUT_S)
        except (protocol.ChannelClosed, protocol.ChannelTimeout, protocol.ProtocolError) as exc:
            self.stop()
            raise WorkerFailure(f"sandbox worker {self.slot} did not start ({type(exc).__name__}): "
                                f"{self.log_tail()}") from None
        self.features = hello.get("features", {}) if isinstance(hello, dict) else {}

    @property
    def log_path(self) -> str:
        return os.path.join(self.spec.log_dir, f"worker-{self.slot}.log")

    def log_tail(self, chars: int = 500) -> str:
        """The end of the zygote's error log: why a worker failed, for the error message."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace").strip()[-chars:]
        except OSError:
            return ""

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the zygote; with it go its sandbox and (PDEATHSIG, namespaces) every process it started."""
        if self._ready is not None:
            self._ready.close()
            self._ready = None
        if self.ctrl is not None:
            try:
                self.ctrl.close()
            except OSError:
                pass
            self.ctrl = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                self.proc.wait()
            self.proc = None

    # ------------------------------------------------------------------------------------------- children
    def spawn(self) -> ChildHandle:
        if self.ctrl is None:
            raise WorkerFailure("worker is not running")
        if self._ready is not None:
            child, self._ready = self._ready, None
            return child
        try:
            protocol.send(self.ctrl, {"op": "spawn"})
            data, fds = self._recv_with_fd()
        except (OSError, protocol.ChannelClosed, protocol.ChannelTimeout) as exc:
            raise WorkerFailure(f"spawn failed: {exc} {self.log_tail(300)}") from None
        (pid,) = struct.unpack(">q", data)
        return ChildHandle(pid, socket.socket(fileno=fds[0]))

    def _recv_with_fd(self) -> tuple[bytes, list[int]]:
        assert self.ctrl is not None
        self.ctrl.settimeout(CONTROL_TIMEOUT_S)
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.ctrl, 8, 1)
            while data and len(data) < 8:
                more = self.ctrl.recv(8 - len(data))
                if not more:
                    break
                data += more
        except socket.timeout:
            raise protocol.ChannelTimeout() from None
        finally:
            self.ctrl.settimeout(None)
        if len(data) != 8 or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise protocol.ChannelClosed("zygote closed the control socket")
        return data, fds

    def finish(self, child: ChildHandle) -> dict:
        """Kill the child and everything it started; return how it ended ({"exit", "signal"})."""
        child.close()
        if self.ctrl is None:
            raise WorkerFailure("worker is not running")
        try:
            # The zygote forks the next program's child in the same round trip.
            protocol.send(self.ctrl, {"op": "finish", "pid": child.pid, "spawn": self._ready is None})
            reply = protocol.recv(self.ctrl, time.monotonic() + CONTROL_TIMEOUT_S)
            if self._ready is None:
                data, fds = self._recv_with_fd()
                self._ready = ChildHandle(struct.unpack(">q", data)[0], socket.socket(fileno=fds[0]))
        except (OSError, protocol.ChannelClosed, protocol.ChannelTimeout, protocol.ProtocolError) as exc:
            raise WorkerFailure(f"finish failed: {exc} {self.log_tail(300)}") from None
        return reply if isinstance(reply, dict) else {}
