"""The judge zygote: a warm, unprivileged fork server for judges (see ``judge.py``), one per worker.

Forked by the worker's lean zygote at start-up, it drops for good to the judges' uid (neither the engine's
nor the programs'), no new privileges, the programs' seccomp filter, a small address space and file
limits, and ``/`` as its directory (nothing there is writable by that uid). It plans each row's tests once
(``planner.plan_row``, cached by the engine's key for the row, packed with ``marshal``) and hands each
program to a spare judge forked in advance (in batches: see ``_fork_spares``), which receives the row's
plans with it. Every judge starts from the same clean state, forked from this zygote before any test ran
in it, so a hostile test of one row cannot change another row's verdicts.

Requests (engine -> judge zygote, frames on its control socket):
  {"op": "judge", "key": str, "tests": [str], ...settings}   with the program child's socket attached
      (SCM_RIGHTS): stop the previous judge, plan (or look up) the row, give the program to a spare judge.
      Reply {"pid": n} carrying the engine's end of the judge's socket, or {"refused": reason} when the
      row is past a documented limit (``planner.RowRefused``).
  {"op": "finish"}   stop the current judge (no reply; the next request is served after it)
Judges additionally lose signals, sockets, new processes and IPC objects (a second seccomp filter) and
writes to files (``RLIMIT_FSIZE`` 0), and each is killed by this zygote (the only process that may signal
them).
"""

from __future__ import annotations

import collections
import errno
import os
import resource
import signal
import socket
import sys

import io_tests
import judge
import planner
import protocol

PR_SET_PDEATHSIG = 1
PLAN_CACHE_ROWS = 1024  # rows whose plans are kept (a row's programs come together: RL samples of a prompt)
SPARES = 8  # judges forked per batch (see JudgeZygote._fork_spares)
WARM_UP_ROUNDS = 20  # see zygote.WARM_UP_ROUNDS
JUDGE_OPEN_FILES = 64
# Large test modules, imported here on a row's first need (then every later judge has them for free): when
# a test imports one, or loads a name it is usually bound to (the program's `import numpy as np`).
_LAZY_MODULES = {"pytest": frozenset({"pytest", "approx", "raises"}), "numpy": frozenset({"numpy", "np"})}


def judge_filter():
    """The judges' second seccomp filter (on top of the programs'): no signals to anyone, no sockets, no new
    processes (threads stay allowed), no IPC objects. Compiled once here; judges load it with one prctl."""
    import tempfile

    import pyseccomp as sc

    filt = sc.SyscallFilter(sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in (
        "kill",
        "tkill",
        "tgkill",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "pidfd_open",
        "pidfd_send_signal",
        "socket",
        "socketpair",
        "fork",
        "vfork",
        "execve",
        "execveat",
        "shmget",
        "semget",
        "msgget",
        "mq_open",
    ):  # IPC objects would outlive the judge
        filt.add_rule(deny, name)
    filt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, 0x10000, 0))  # without CLONE_THREAD: a process
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags behind a pointer: libc falls back to clone
    with tempfile.TemporaryFile() as f:
        filt.export_bpf(f)
        f.seek(0)
        return f.read()


class JudgeZygote:
    """Serves one worker's engine thread (see the module docstring)."""

    def __init__(self, ctrl: socket.socket, cfg: dict, fork, load_filter, prctl) -> None:
        self.ctrl = ctrl
        self.cfg = cfg
        self.fork = fork  # zygote.raw_fork: no at-fork hooks (see there)
        self.load_filter = load_filter  # installs a raw BPF program in the calling process
        self.prctl = prctl
        self.pid = os.getpid()
        self.plans: collections.OrderedDict[str, tuple[bytes, list | None] | str] = collections.OrderedDict()
        self.current: int | None = None
        self.spares: collections.deque[tuple[int, socket.socket, socket.socket]] = collections.deque()
        self.filter: bytes | None = None

    def prepare(self, uid: int | None, program_filter) -> None:
        """Become the judges' uid for good, with the limits every judge inherits."""
        if self.cfg.get("seccomp", True):  # first: libseccomp writes the program to a (temporary) file
            try:
                self.filter = judge_filter()
            except Exception as exc:  # the engine already warns about a missing seccomp
                print(f"judge filter unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
        mem = int(self.cfg["judge_memory_mb"]) * 1024 * 1024
        for which, value in (
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_DATA, mem),
            (resource.RLIMIT_NOFILE, JUDGE_OPEN_FILES),
            (resource.RLIMIT_CORE, 0),
        ):
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        os.chdir("/")
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.getuid() != uid or os.geteuid() != uid:
                os._exit(71)
        if program_filter is not None:
            self.load_filter(program_filter)

    def warm_up(self) -> None:
        """Judge a fixed program here, on answers written in advance, before any fork.

        As in the programs' zygote (zygote.Zygote._warm_up): CPython specialises the bytecode of the code it
        runs, in place; done once here, every judge inherits the specialised code instead of rewriting (and
        so copying) those pages itself."""
        tests = [
            "assert f(1) == 2",
            "assert f(2) == 3",
            "x = f(3)\nassert x == [4, 5.0] or x",
            "assert g(1) == 1",
        ]
        plans = planner.plan_row(tests, 100)
        answers = [
            {"ok": True, "v": ["N"], "bound": ["f"], "modules": {}},
            {"ok": True, "v": ["i", "0x2"]},
            {"ok": True, "v": ["i", "0x3"]},
            {"ok": True, "v": ["l", [["i", "0x4"], ["f", "0x1.4p+2"]]]},
            {"ok": False, "kind": "exception", "error": "NameError: name 'g' is not defined"},
        ]
        request = {"code": "", "start": 0, "timeout": 60, "cap_s": 60, "error_cap": 100, "max_depth": 100}
        for _ in range(WARM_UP_ROUNDS):
            host, host_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            child, child_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                for answer in answers:
                    protocol.send(child_peer, answer)
                judge.ProgramJudge(host, child, request, plans).run()
            finally:
                for sock in (host, host_peer, child, child_peer):
                    sock.close()

    def serve(self) -> None:
        protocol.send(self.ctrl, {"ready": True})
        while True:
            try:
                request, fds = protocol.recv_with_fds(self.ctrl)
            except protocol.ChannelClosed:
                break
            self._stop_current()
            op = request.get("op") if isinstance(request, dict) else None
            if op == "judge" and len(fds) == 1:
                self._judge(request, fds[0])
            else:
                for fd in fds:
                    os.close(fd)
                if op != "finish":
                    protocol.send(self.ctrl, {"error": f"unknown op {op!r}"})
        self._stop_current()
        self._discard_spares()

    def _stop_current(self) -> None:
        if self.current is None:
            return
        _kill(self.current)
        self.current = None

    def _plans(self, key: str, tests: list) -> tuple[bytes, list | None] | str:
        """The row's plans packed for a spare judge, or the plans themselves when this zygote judges the row
        itself (every test a literal check: see ``_judge_here``); or the reason it is refused. Cached."""
        cached = self.plans.get(key)
        if cached is not None:
            self.plans.move_to_end(key)
            return cached
        try:
            if isinstance(tests, dict) and tests.get("format") == "pytest":
                plans = planner.plan_pytest(tests, int(self.cfg["max_test_depth"]))
            elif isinstance(tests, dict):  # a tests object (stdin/stdout, function call)
                plans = io_tests.plan_io(tests)
            elif not all(isinstance(t, str) for t in tests):
                raise planner.RowRefused("tests must be strings")
            else:
                plans = planner.plan_row(tests, int(self.cfg["max_test_depth"]))
            for module, names in _LAZY_MODULES.items():
                if module not in sys.modules and any(
                    module in p.imports or not names.isdisjoint(p.names) for p in plans
                ):
                    judge.load_module(module)
                    self._discard_spares()  # forked without it: the next ones inherit it
            if all(p.literal or p.kind == "invalid" for p in plans):
                result: tuple[bytes, list | None] | str = (b"", plans)  # judged here: nothing to pack
            else:
                result = (planner.pack_plans(plans), None)
        except planner.RowRefused as exc:
            result = str(exc)
        except (RecursionError, MemoryError, ValueError) as exc:
            result = f"the tests are too large to plan ({type(exc).__name__})"
        self.plans[key] = result
        if len(self.plans) > PLAN_CACHE_ROWS:
            self.plans.popitem(last=False)
        return result

    def _judge(self, request: dict, child_fd: int) -> None:
        plans = self._plans(str(request.get("key")), request.get("tests") or [])
        if isinstance(plans, str):
            os.close(child_fd)
            protocol.send(self.ctrl, {"refused": plans})
            return
        packed, own = plans
        del request["tests"]
        if own is not None:
            self._judge_here(request, child_fd, own)
            return
        request["plans"] = packed.decode("latin-1")  # bytes in a JSON string, one char per byte
        while True:
            if not self.spares:
                self._fork_spares()
            pid, ctrl, host = self.spares.popleft()
            try:
                protocol.send_with_fds(ctrl, request, [child_fd])
                break
            except OSError:  # that spare died (it should not): the next one
                host.close()
                _kill(pid)
            finally:
                ctrl.close()
        os.close(child_fd)
        self.current = pid
        protocol.send_with_fds(self.ctrl, {"pid": pid}, [host.fileno()])
        host.close()

    def _judge_here(self, request: dict, child_fd: int, plans: list) -> None:
        """Judge a program of a row whose every test compares the program's answer with a literal, in this
        process: no code of the test runs (a literal is not code), the answers are plain data that decoding
        turns into builtin values without running anything, and the work is linear in answers capped by
        values.py, so there is no state a program could leave here and no check to kill. It saves a judge's
        fork, faults and exit (~2.5 ms of CPU) for most rows (AceCode's ``assert f(x) == y``). A program
        whose bindings turn a check into test code (its ``import numpy as np`` makes a test's ``np.sum``
        the judge's) goes on in a judge forked then (``_hand_over``)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child = socket.socket(fileno=child_fd)
        try:
            protocol.send_with_fds(self.ctrl, {"pid": 0}, [theirs.fileno()])
            theirs.close()
            keep = (ours.fileno(), child.fileno())
            judge.ProgramJudge(ours, child, request, plans, hand_over=lambda: self._hand_over(keep)).run()
        except OSError:  # the engine stopped reading (it gave up on this program): nothing to keep
            pass
        except Exception as exc:  # a bug of ours: the engine sees the stream end (a failed check), we go on
            print(f"judging in the zygote failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            if os.getpid() != self.pid:  # the judge _hand_over forked: its program is judged
                os._exit(0)
            for sock in (ours, theirs, child):
                sock.close()

    def _hand_over(self, keep: tuple[int, int]) -> bool:
        """Fork a judge that goes on with the program being judged here (its verdict stream and the child's
        socket are ``keep``): True in that judge, False here, where it is the current judge (killed before
        the next request is served, as any judge)."""
        pid = self.fork()
        if pid == 0:
            try:
                self._become_judge(keep)
            except BaseException:
                os._exit(0)
            return True
        self.current = pid
        return False

    def _fork_spares(self) -> None:
        """Fork SPARES judges in a row, each waiting for its program (as the programs' zygote does: every
        fork makes this process's pages copy-on-write again, so forks come in batches, not one per
        program)."""
        prepared = [
            (
                socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM),
                socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM),
            )
            for _ in range(SPARES)
        ]
        pids = [0] * SPARES
        for k in range(SPARES):
            pid = self.fork()
            if pid == 0:
                self._judge_main(prepared[k][0][1], prepared[k][1][1])
            pids[k] = pid
        for pid, ((ctrl, their_ctrl), (host, their_host)) in zip(pids, prepared):
            their_ctrl.close()
            their_host.close()
            self.spares.append((pid, ctrl, host))

    def _discard_spares(self) -> None:
        while self.spares:
            pid, ctrl, host = self.spares.popleft()
            ctrl.close()
            host.close()
            _kill(pid)

    def _judge_main(self, ctrl: socket.socket, host: socket.socket) -> None:
        """A forked spare judge: keep its two sockets, lose the rest, wait for its program, judge it, leave;
        no return."""
        try:
            self._become_judge((ctrl.fileno(), host.fileno()))
            request, fds = protocol.recv_with_fds(ctrl)
            if len(fds) != 1 or not isinstance(request, dict):
                os._exit(0)
            plans = planner.unpack_plans(request.pop("plans").encode("latin-1"))
            child = socket.socket(fileno=fds[0])
            judge.ProgramJudge(host, child, request, plans).run()
        finally:
            os._exit(0)


    def _become_judge(self, keep: tuple[int, int]) -> None:
        """In a process just forked from this zygote: keep the two sockets ``keep``, lose every other
        descriptor, and take the limits and the filter every judge has."""
        low, high = sorted(keep)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 2)  # the zygote's stderr is the worker's log: never a test's output
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, 65536)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing a file fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no file gets a byte from a judge
        # A judge's own CPU budget (a process's CPU time starts at 0 when it is forked). Not the zygote's: it
        # is long-lived, and its planning and literal checks add up over a run.
        cpu = int(self.cfg["cpu_seconds"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        self.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.pid:  # the zygote died before the prctl
            os._exit(72)
        if self.filter is not None:
            self.load_filter(self.filter)


def _kill(pid: int) -> None:
    """Kill and reap one judge (judges cannot fork: their filter; so the judge is all there is to stop)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
