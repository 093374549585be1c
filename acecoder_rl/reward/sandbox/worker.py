"""Parent-side handle of one sandbox worker (a zygote) and of the children it forks."""
from __future__ import annotations

import os
import select
import signal
import socket
import struct
import subprocess
import time

from acecoder_rl.reward.extract import imported_roots
from acecoder_rl.reward.sandbox import protocol
from acecoder_rl.reward.sandbox.isolation import SANDBOX_ENV, LaunchSpec, program_uid

START_TIMEOUT_S = 60.0
CONTROL_TIMEOUT_S = 30.0


class WorkerFailure(Exception):
    """The zygote itself failed (died, hung, or refused): an infrastructure fault, not the program's."""


class _Peer:
    """A process of the sandbox the parent holds a socket to (a program's child, a judge)."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class ChildHandle(_Peer):
    """One forked program child. The parent never talks to it: it hands the socket to the program's judge
    (``JudgeChannel.judge``) and has its zygote finish it."""

    def __init__(self, pid: int, sock: socket.socket, zygote: ZygoteChannel) -> None:
        super().__init__(pid, sock)
        self.zygote = zygote  # the one that forked it, and so the one that finishes it


class JudgeHandle(_Peer):
    """One judge (pid 0: the judge zygote itself): the parent only reads its verdict stream (small frames,
    see judge.py)."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        super().__init__(pid, sock)
        self.reader = protocol.FrameReader(sock)  # frames up to protocol.MAX_FRAME, as any peer's

    def next(self, deadline: float) -> object:
        """The next frame; raises the ``protocol`` errors (timeout, closed, garbage)."""
        return self.reader.recv(deadline)


class JudgeChannel:
    """The parent's end of a worker's judge zygote (see judge_zygote.py)."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid

    def judge(self, child: ChildHandle, request: dict) -> JudgeHandle | str:
        """Hand ``child`` over to a fresh judge; the judge, or the reason the row's tests are refused."""
        protocol.send_with_fds(self.sock, request, [child.sock.fileno()])
        child.close()  # the judge holds the child's socket now: the parent never talks to a program
        reply, fds = protocol.recv_with_fds(self.sock, time.monotonic() + CONTROL_TIMEOUT_S)
        if isinstance(reply, dict) and isinstance(reply.get("refused"), str) and not fds:
            return reply["refused"]
        if not isinstance(reply, dict) or type(reply.get("pid")) is not int or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise protocol.ProtocolError(f"unexpected judge zygote reply {str(reply)[:100]}")
        return JudgeHandle(reply["pid"], socket.socket(fileno=fds[0]))

    def finish(self, judge: JudgeHandle) -> None:
        """Stop the judge (it may be stuck in a check); the zygote reaps it before its next request. A
        program the zygote judged itself (pid 0) needs nothing: the zygote stops with the closed stream."""
        judge.close()
        if judge.pid:
            protocol.send(self.sock, {"op": "finish"})

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class ZygoteChannel:
    """The parent's end of one zygote's control socket (see zygote.py for the requests).

    Raises ``OSError`` or the ``protocol`` errors; ``SandboxWorker`` turns them into ``WorkerFailure``."""

    def __init__(self, sock: socket.socket, pid: int | None = None) -> None:
        self.sock = sock
        self.pid = pid  # the heavy zygote's (in the sandbox's PID namespace); None for the lean one
        self.ready: ChildHandle | None = None  # handed over with the previous finish, not yet used

    def spawn(self) -> ChildHandle:
        if self.ready is not None:
            child, self.ready = self.ready, None
            return child
        protocol.send(self.sock, {"op": "spawn"})
        return self._recv_child()

    def finish(self, child: ChildHandle) -> object:
        # The zygote forks the next program's child in the same round trip.
        protocol.send(self.sock, {"op": "finish", "pid": child.pid, "spawn": self.ready is None})
        reply = protocol.recv(self.sock, time.monotonic() + CONTROL_TIMEOUT_S)
        if self.ready is None:
            self.ready = self._recv_child()
        return reply

    def fork_heavy(self) -> ZygoteChannel:
        """Have this (lean) zygote fork the heavy one; returns its channel once it says it is ready."""
        protocol.send(self.sock, {"op": "heavy"})
        pid, fd = self._recv_with_fd()
        heavy = ZygoteChannel(socket.socket(fileno=fd), pid)
        try:
            protocol.recv(heavy.sock, time.monotonic() + START_TIMEOUT_S)
        except BaseException:
            heavy.close()
            raise
        return heavy

    def _recv_child(self) -> ChildHandle:
        pid, fd = self._recv_with_fd()
        return ChildHandle(pid, socket.socket(fileno=fd), self)

    def _recv_with_fd(self) -> tuple[int, int]:
        """A pid (8 bytes) carrying one file descriptor."""
        self.sock.settimeout(CONTROL_TIMEOUT_S)
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 8, 1)
            while data and len(data) < 8:
                more = self.sock.recv(8 - len(data))
                if not more:
                    break
                data += more
        except socket.timeout:
            raise protocol.ChannelTimeout() from None
        finally:
            self.sock.settimeout(None)
        if len(data) != 8 or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise protocol.ChannelClosed("zygote closed the control socket")
        return struct.unpack(">q", data)[0], fds[0]

    def close(self) -> None:
        if self.ready is not None:
            self.ready.close()
            self.ready = None
        try:
            self.sock.close()
        except OSError:
            pass


_CHANNEL_ERRORS = (OSError, protocol.ChannelClosed, protocol.ChannelTimeout, protocol.ProtocolError)


class SandboxWorker:
    """A sandbox (bubblewrap, or plain processes) holding a lean zygote and, once needed, a heavy one."""

    def __init__(self, spec: LaunchSpec, slot: int, limits: dict) -> None:
        self.spec = spec
        self.slot = slot
        self.uid = program_uid()
        self.limits = limits
        self.proc: subprocess.Popen | None = None
        self.lean: ZygoteChannel | None = None
        self.heavy: ZygoteChannel | None = None
        self.judge_uid = program_uid()  # another dedicated uid: judges are neither the engine nor a program
        self.judges: JudgeChannel | None = None
        self.heavy_roots: frozenset[str] = frozenset()  # imports that send a program to the heavy zygote
        self.features: dict = {}
        self.restarts = 0

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # private_ipc: SysV IPC objects seen by the zygote can only be its programs' (see cleanup.Sweeper).
        cfg = dict(self.limits, uid=self.uid, judge_uid=self.judge_uid, scratch_root=self.spec.scratch_root,
                   private_ipc=self.spec.mode == "bwrap")
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
        self.lean = ZygoteChannel(ours)
        try:
            hello = self._await_hello(ours)
            pid, fd = self.lean._recv_with_fd()
            self.judges = JudgeChannel(socket.socket(fileno=fd), pid)
            protocol.recv(self.judges.sock, time.monotonic() + START_TIMEOUT_S)  # its "ready"
        except (protocol.ChannelClosed, protocol.ChannelTimeout, protocol.ProtocolError) as exc:
            self.stop()
            raise WorkerFailure(f"sandbox worker {self.slot} did not start ({type(exc).__name__}): "
                                f"{self.log_tail()}") from None
        self.features = hello.get("features", {}) if isinstance(hello, dict) else {}
        self.heavy_roots = frozenset(str(m).split(".", 1)[0] for m in self.features.get("heavy_modules", ()))

    def _await_hello(self, sock: socket.socket) -> object:
        """The zygote's first message, or an error as soon as the sandbox's process is gone.

        Not just a read with a time-out: a bubblewrap killed while setting up the sandbox can leave its
        inner half blocked for ever, holding the other end of ``sock`` open (no EOF ever comes)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not select.select([sock], [], [], 0.05)[0]:
            if self._sandbox_exited():
                raise protocol.ChannelClosed("the sandbox process exited before the zygote was ready")
            if time.monotonic() > deadline:
                raise protocol.ChannelTimeout()
        return protocol.recv(sock, deadline)

    def _sandbox_exited(self) -> bool:
        """Has the sandbox's first process exited? Asked without reaping it: while it is an unreaped zombie
        its pid, which is also its process group's id, cannot be given to another process (see stop)."""
        if self.proc is None:
            return True
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # already reaped
            return True

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
        return not self._sandbox_exited()

    def stop(self) -> None:
        """Stop the zygotes; with them go their sandbox and (PDEATHSIG, namespaces) every process they started.

        The heavy zygote's channel closes first: the lean one waits for it to finish before leaving."""
        for channel in (self.judges, self.heavy, self.lean):
            if channel is not None:
                channel.close()
        self.judges = self.heavy = self.lean = None
        if self.proc is not None:
            deadline = time.monotonic() + 5.0
            while not self._sandbox_exited() and time.monotonic() < deadline:
                time.sleep(0.002)
            # Then its whole process group, whether it left on its own or not: what remains of a bubblewrap
            # killed mid-setup (blocked, holding our socket) is in it. Safe: the first process is not reaped
            # yet, so the group's id is still its own.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None

    # ------------------------------------------------------------------------------------------- children
    def wants_heavy(self, code: str) -> bool:
        """Should ``code`` be forked from the heavy zygote (it imports a module only that one has loaded)?"""
        return bool(self.heavy_roots) and not self.heavy_roots.isdisjoint(imported_roots(code))

    def spawn(self, heavy: bool = False) -> ChildHandle:
        """A fresh child for one program, from the heavy zygote (started on first need) or the lean one."""
        if self.lean is None:
            raise WorkerFailure("worker is not running")
        try:
            if heavy and self.heavy_roots:
                if self.heavy is None:
                    self.heavy = self.lean.fork_heavy()
                return self.heavy.spawn()
            return self.lean.spawn()
        except _CHANNEL_ERRORS as exc:
            raise WorkerFailure(f"spawn failed: {type(exc).__name__}: {exc} {self.log_tail(300)}") from None

    def judge(self, child: ChildHandle, request: dict) -> JudgeHandle | str:
        """A fresh judge for the program in ``child`` (see JudgeChannel.judge)."""
        if self.judges is None:
            raise WorkerFailure("worker is not running")
        try:
            return self.judges.judge(child, request)
        except _CHANNEL_ERRORS as exc:
            raise WorkerFailure(f"judge failed: {type(exc).__name__}: {exc} {self.log_tail(300)}") from None

    def finish_judge(self, judge: JudgeHandle) -> None:
        if self.judges is None:
            raise WorkerFailure("worker is not running")
        try:
            self.judges.finish(judge)
        except _CHANNEL_ERRORS as exc:
            raise WorkerFailure(f"judge finish failed: {type(exc).__name__}: {exc}") from None

    def finish(self, child: ChildHandle) -> dict:
        """Kill the child and everything it started; return how it ended ({"exit", "signal"})."""
        child.close()
        if child.zygote is not self.lean and child.zygote is not self.heavy:  # stopped or restarted since
            raise WorkerFailure("worker is not running")
        try:
            reply = child.zygote.finish(child)
        except _CHANNEL_ERRORS as exc:
            raise WorkerFailure(f"finish failed: {type(exc).__name__}: {exc} {self.log_tail(300)}") from None
        return reply if isinstance(reply, dict) else {}
