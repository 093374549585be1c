"""The warm "zygote": a small trusted process inside the sandbox that forks one child per program.

Started once per worker (``python -I zygote.py CTRL_FD CONFIG_JSON``, inside bubblewrap when available), so
that a fork costs ~1-2 ms instead of a fresh interpreter's 20-70 ms. It never holds a test's expected
value, so nothing secret is inherited by the children it forks.

Two zygotes per worker, because what a fork and an exit cost grows with the forking process's memory
(page tables copied, then torn down): the *lean* zygote holds only the harness (~11 MB) and forks every
program that imports none of the common modules below; on first need it forks the *heavy* zygote, which
imports them once (pytest included: ~20 MB) and forks the programs that do import one of them.

Control requests (parent -> zygote, JSON frames on CTRL_FD):
  {"op": "spawn"}            fork a child; reply is 8 bytes (its pid) carrying the parent's end of a fresh
                             socketpair as SCM_RIGHTS ancillary data
  {"op": "finish", "pid": n, "spawn": bool}
                             kill the child and everything it started, reap it, remove what it left
                             (scratch directory, IPC objects: see cleanup.py);
                             reply {"exit": code|null, "signal": sig|null}, then (with "spawn") as for spawn
  {"op": "heavy"}            (lean zygote, once) fork the heavy zygote; reply as for spawn, with the parent's
                             end of the heavy zygote's own control socket, on which it says "ready" when set
Each child: new session, stdio on /dev/null, private scratch dir, rlimits, a dedicated uid when the zygote
is root (so RLIMIT_NPROC applies and ``kill(-1)`` as that uid removes every process it left behind),
PR_SET_PDEATHSIG, no_new_privs and a seccomp filter.
"""
from __future__ import annotations

import binascii
import collections
import ctypes
import errno
import gc
import json
import marshal
import os
import random
import resource
import select
import signal
import socket
import struct
import sys
import time

# `python -I` does not put the script's directory on sys.path; the sandbox modules live next to this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import child  # noqa: E402
import cleanup  # noqa: E402
import protocol  # noqa: E402

SPARES = 8  # children forked per batch (see Zygote.spawn)
WARM_UP_ROUNDS = 20  # CPython 3.11 specialises a function after 8 calls and an instruction after ~53 runs

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2

# Common modules, imported before any fork so that programs importing them pay nothing after it. The small
# ones (~0.5 MB in all) in the lean zygote; the large ones (pytest alone is ~10 MB, 150 ms to import) only in
# the heavy zygote, with the configured extras: every fork and exit pays for the forking process's size.
LEAN_PREIMPORT = (
    "abc array bisect cmath collections collections.abc copy csv datetime decimal enum fractions functools "
    "heapq io itertools json math numbers operator random re string struct textwrap threading time typing "
    "unicodedata"
).split()
HEAVY_PREIMPORT = ["calendar", "dataclasses", "hashlib", "statistics", "unittest"]

# Denied for program code (EPERM): leaving the sandbox, reading other processes, new programs, kernel admin,
# IPC that no clean-up could find (POSIX message queues: listed only where an mqueue filesystem is mounted),
# io_uring (its operations, sockets included, are not seen by seccomp). Every name must be known to
# libseccomp: one it does not know stops the start (see _compile_seccomp).
DENIED_SYSCALLS = (
    "ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp execve execveat mount umount2 unshare setns "
    "chroot pivot_root fsopen fsconfig fsmount fspick move_mount open_tree bpf perf_event_open keyctl "
    "add_key request_key userfaultfd kexec_load kexec_file_load init_module finit_module delete_module "
    "reboot swapon swapoff acct quotactl open_by_handle_at name_to_handle_at iopl ioperm setsid setpgid "
    "mq_open io_uring_setup io_uring_enter io_uring_register"
).split()
# clone() may not make namespaces either (a user namespace first, then the rest inside it): one rule per
# flag, on the flags argument (the first on every architecture but s390). clone3 passes its flags in memory,
# out of seccomp's sight: ENOSYS, on which the C library falls back to clone.
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
# Without a dedicated uid, a program could signal the engine's own processes: no signals at all then.
DENIED_WITH_SHARED_UID = ("kill", "tkill", "tgkill")


class UnknownSyscalls(Exception):
    """Syscall names of the filter that libseccomp does not know: a mistake in our list, never skipped."""


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _compile_seccomp(shared_uid: bool) -> tuple:
    """Build the filter once with libseccomp; children load the raw BPF with one prctl (~0.05 ms)."""
    import tempfile

    import pyseccomp as sc

    deny = sc.ERRNO(errno.EPERM)
    filt = sc.SyscallFilter(sc.ALLOW)
    try:  # a binary tree of syscall numbers instead of a linear list: every syscall pays for the filter
        filt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    except Exception:  # older libseccomp: the linear filter is still correct
        pass
    names = [*DENIED_SYSCALLS, *(DENIED_WITH_SHARED_UID if shared_uid else ())]
    # libseccomp knows every architecture's names (one this architecture lacks gets a pseudo-number, which
    # matches nothing); -1 means a name it does not know at all: a misspelt name would leave a syscall open.
    numbers = {name: sc.resolve_syscall(sc.Arch.NATIVE, name) for name in names}
    unknown = [name for name, number in numbers.items() if number == -1]
    if unknown:
        raise UnknownSyscalls(f"seccomp filter: syscall name(s) unknown to libseccomp: {', '.join(unknown)}")
    for number in numbers.values():
        filt.add_rule(deny, number)
    for flag in CLONE_NAMESPACE_FLAGS:
        filt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # Network: Unix sockets only (socketpair for asyncio/multiprocessing); the netns has no route anyway.
    filt.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    with tempfile.TemporaryFile() as f:
        filt.export_bpf(f)
        f.seek(0)
        raw = f.read()
    count = len(raw) // ctypes.sizeof(_SockFilter)
    program = (_SockFilter * count).from_buffer_copy(raw)
    return _SockFprog(count, ctypes.cast(program, ctypes.POINTER(_SockFilter))), program

_libc = ctypes.CDLL(None, use_errno=True)
# PyDLL keeps the GIL held across the call, so the child starts in the same consistent interpreter state.
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.restype = ctypes.c_int


def install_filter(raw: bytes) -> None:
    """Load a raw seccomp BPF program into the calling process (no new privileges first, as required)."""
    count = len(raw) // ctypes.sizeof(_SockFilter)
    program = (_SockFilter * count).from_buffer_copy(raw)
    fprog = _SockFprog(count, ctypes.cast(program, ctypes.POINTER(_SockFilter)))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        os._exit(73)


def raw_fork() -> int:
    """fork(2) without CPython's at-fork machinery.

    ``os.fork()`` re-initialises interpreter state and runs every registered at-fork hook in the child:
    ~200 page faults and ~0.7 ms of CPU per program on this kind of machine, a third of a trivial program's
    whole cost. None of it is needed here: the zygote never starts a thread, holds no lock and is not
    importing when it forks. The one hook whose absence a program could notice (``random`` reseeding) is
    done by the child itself."""
    pid = _fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return pid


def _import_all(names: list[str]) -> None:
    for name in names:
        try:
            __import__(name)
        except Exception:  # not installed here: programs importing it fail as they would anywhere
            pass


def _freeze() -> None:
    """Every object that exists now lives for the zygote's whole life: keep the collector from walking (and
    so copying, in each child) the pages that hold them."""
    gc.collect()
    gc.freeze()


def _forget_tempdir() -> None:
    """tempfile caches its choice of directory: forget it, so each child chooses its own scratch directory."""
    import tempfile

    tempfile.tempdir = None


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Zygote:
    def __init__(self, ctrl: socket.socket, cfg: dict) -> None:
        self.ctrl = ctrl
        self.cfg = cfg
        self.uid = cfg["uid"]  # dedicated uid for children, or None when not root
        self.scratch_root = cfg["scratch_root"]
        self.children: dict[int, str] = {}  # live child pid -> its scratch directory
        self.spares: collections.deque[tuple[int, socket.socket]] = collections.deque()  # forked, waiting
        self.serial = 0
        self.exited: dict[int, int] = {}  # wait status of children reaped before their finish request
        self.bpf: tuple | None = None  # compiled seccomp program: (fprog struct, its filter buffer)
        self.features: dict[str, object] = {}
        self.zygote_pid = os.getpid()
        self.heavy_pid: int | None = None  # the heavy zygote, once forked (lean zygote only)
        self.judge_pid: int | None = None  # the judge zygote (lean zygote only)
        self.judge_ctrl: socket.socket | None = None  # its control socket, until handed to the parent
        self.cpu_seconds = int(cfg["cpu_seconds"])
        self.max_processes = int(cfg["max_processes"])
        self.devnull = -1
        self.sweeper = cleanup.Sweeper(self.uid, bool(cfg.get("private_ipc")), self._take_program_uid)

    def prepare(self) -> None:
        """Set up the lean zygote: small modules, limits, seccomp program, warm harness. The large modules
        are left to the heavy zygote (``heavy_modules`` tells the parent which imports route a program there)."""
        self.features["unreadable_paths"] = unreadable = self._unreadable_for_programs()
        # Programs cannot import what their uid cannot read: then whatever this zygote imports is all they
        # get, so it imports everything itself (and no program needs the heavy zygote).
        _import_all(LEAN_PREIMPORT + (self._heavy_module_names() if unreadable else []))
        self._become_subreaper()
        self.features["seccomp"] = False
        if self.cfg.get("seccomp", True):
            try:
                self.bpf = _compile_seccomp(shared_uid=self.uid is None)
                self.features["seccomp"] = True
            except UnknownSyscalls:  # our own mistake, not a missing library: no start without the filter
                raise
            except Exception as exc:  # reported to the parent, which warns loudly
                self.features["seccomp_error"] = f"{type(exc).__name__}: {exc}"[:200]
        self.features["dedicated_uid"] = self.uid is not None
        os.makedirs(self.scratch_root, exist_ok=True)
        os.chmod(self.scratch_root, 0o711)  # programs may not list the other programs' directories
        self._fork_judge_zygote()  # before the programs' limits: the judges get their own
        self._set_shared_limits()
        self._warm_up()
        self.features["heavy_modules"] = [m for m in self._heavy_module_names() if m not in sys.modules]
        _freeze()

    def _unreadable_for_programs(self) -> list[str]:
        """The interpreter's module directories that the programs' uid cannot list.

        Bubblewrap re-exposes the installation to every uid; plain processes cannot, so a Python installed
        under a closed directory (root's home, mode 0700) is out of the programs' reach. Checked by a
        forked probe that takes the programs' uid, before anything is imported (the fork is cheap then)."""
        if self.uid is None:  # programs run as our own uid
            return []
        dirs = sorted({os.path.dirname(os.__file__), *(p for p in sys.path if p.endswith("site-packages"))})
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                self._take_program_uid()
                bad = []
                for d in dirs:
                    try:
                        os.listdir(d)
                    except OSError:
                        bad.append(d)
                os.write(w, json.dumps(bad).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as answer:
            data = answer.read()
        os.waitpid(pid, 0)
        try:
            return list(json.loads(data))
        except ValueError:  # the probe could not even take the uid: assume the worst
            return dirs

    def _heavy_module_names(self) -> list[str]:
        return [*HEAVY_PREIMPORT, *self.cfg.get("preimport_extra", [])]

    def _become_subreaper(self) -> None:
        try:
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
            self.features["subreaper"] = True
        except OSError:
            self.features["subreaper"] = False

    def fork_heavy(self) -> None:
        """Fork the heavy zygote (see the module docstring) and hand its control socket to the parent.

        It starts as a copy of this warm zygote, so all it adds is the imports. ``os.fork`` (not
        ``raw_fork``): a long-lived process gets CPython's full after-fork reinitialisation."""
        pid, ours = self._fork_server(self._serve_as_heavy)
        self.heavy_pid = pid
        socket.send_fds(self.ctrl, [struct.pack(">q", pid)], [ours.fileno()])
        ours.close()

    def _fork_judge_zygote(self) -> None:
        """Fork the worker's judge zygote (``judge_zygote.py``); its control socket goes to the parent right
        after this zygote's own "ready". ``os.fork``: a long-lived process gets CPython's full reinit."""
        self.judge_pid, self.judge_ctrl = self._fork_server(self._serve_as_judges)

    @staticmethod
    def _fork_server(serve) -> tuple[int, socket.socket]:
        """Fork a long-lived server of this sandbox (``serve(its control socket)``, which never returns);
        (its pid, our end of its control socket). A failure goes to the worker's log: the parent then fails
        the start or the request."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                serve(theirs)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(70)
        theirs.close()
        return pid, ours

    def _serve_as_judges(self, ctrl: socket.socket) -> None:
        """The judge zygote's life (see judge_zygote.py); no return."""
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the lean zygote, and so do its judges
        if os.getppid() != self.zygote_pid:
            os._exit(72)
        self.ctrl.close()
        import judge_zygote

        server = judge_zygote.JudgeZygote(ctrl, self.cfg, raw_fork, install_filter, _prctl)
        bpf = self.bpf
        if bpf is not None and self.uid is None:  # the programs' filter denies kill(): judges are killed
            bpf = _compile_seccomp(shared_uid=False)  # by their zygote, which their own filter keeps out
        server.prepare(self.cfg.get("judge_uid"), bytes(bpf[1]) if bpf is not None else None)
        server.warm_up()
        _prctl(PR_SET_DUMPABLE, 0)  # after the uid switch, which resets it: no /proc/<pid>/mem for judges
        _freeze()
        server.serve()
        os._exit(0)

    def _serve_as_heavy(self, ctrl: socket.socket) -> None:
        """The heavy zygote's life: drop the lean zygote's channels and children, import, serve; no return."""
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the lean zygote, and so does all it forked
        if os.getppid() != self.zygote_pid:
            os._exit(72)
        self.ctrl.close()
        for _pid, sock in self.spares:
            sock.close()
        self.spares.clear()
        self.children.clear()
        self.exited.clear()
        self.ctrl, self.zygote_pid, self.heavy_pid, self.judge_pid = ctrl, os.getpid(), None, None
        self._become_subreaper()
        _import_all(self._heavy_module_names())
        _forget_tempdir()  # importing some modules (pytest) makes tempfile choose one
        _freeze()
        self.serve()
        os._exit(0)

    @staticmethod
    def _warm_up() -> None:
        """Run the child's request loop here, on a fixed program of our own, before any fork.

        CPython 3.11 rewrites a function's bytecode in place as it warms up (counters, then specialised
        instructions). Code that first runs in a child does that in every child, on pages shared with the
        zygote: each such write is a copy-on-write fault. Warmed here once, the children inherit the
        specialised code and only read it (~80 fewer faults per program)."""
        program = "def _warm(x):\n    return [x, x + 1, str(x), (x, 0.5), {str(x): {x}}, x > 1, None]\n"

        def wire(src: str) -> list[str]:  # as the judge's planner sends a probe (planner._compiled)
            code = marshal.dumps(compile(src, "<test>", "eval", dont_inherit=True))
            return [src, binascii.b2a_base64(code, newline=False).decode("ascii")]

        for _ in range(WARM_UP_ROUNDS):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                protocol.send(ours, {"op": "load", "code": program, "salvage": False, "names": ["len"],
                                     "then": [wire("_warm(1)"), wire("_warm(2)"), wire("_warm")],
                                     "unless_bound": ["len"]})
                protocol.send(ours, {"op": "batch", "probes": [wire("_warm(3)"), ["_warm(4)", ""]]})
                protocol.send(ours, {"op": "probe", "src": "_warm(x)", "code": wire("_warm(x)")[1],
                                     "locals": {"x": ["val", ["i", "0x3"]]}, "fresh": True})
                ours.shutdown(socket.SHUT_WR)
                child.Harness(theirs, 100).serve()
            finally:
                ours.close()
                theirs.close()

    def _set_shared_limits(self) -> None:
        """What every child needs and the zygote can carry itself, set once instead of in each child
        (each line of Python a child runs costs it page faults; see raw_fork)."""
        cfg = self.cfg
        mem = int(cfg["memory_mb"]) * 1024 * 1024
        for which, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem),
                             (resource.RLIMIT_FSIZE, int(cfg["file_size_mb"]) * 1024 * 1024),
                             (resource.RLIMIT_NOFILE, int(cfg["max_open_files"])), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))
        # Relative on purpose: a program's home and temporary directory are its own working directory, the
        # private scratch directory its child chdir()s into (bubblewrap's PWD would name another one).
        os.environ["HOME"] = os.environ["TMPDIR"] = "."
        os.environ.pop("PWD", None)
        _forget_tempdir()
        self.devnull = os.open(os.devnull, os.O_RDWR)  # stdin/stdout are /dev/null already; stderr is our log

    def serve(self) -> None:
        protocol.send(self.ctrl, {"ready": True, "features": self.features})
        if self.judge_ctrl is not None:  # the lean zygote hands over the judge zygote's control socket
            socket.send_fds(self.ctrl, [struct.pack(">q", self.judge_pid)], [self.judge_ctrl.fileno()])
            self.judge_ctrl.close()
            self.judge_ctrl = None
        while True:
            try:
                request = protocol.recv(self.ctrl)
            except protocol.ChannelClosed:
                break
            op = request.get("op")
            if op == "spawn":
                self.spawn()
            elif op == "finish":
                protocol.send(self.ctrl, self.finish(int(request["pid"])))
                if request.get("spawn"):  # the next program's child, in the same round trip
                    self.spawn()
            elif op == "heavy":
                self.fork_heavy()
            else:
                protocol.send(self.ctrl, {"error": f"unknown op {op!r}"})
        while self.spares:
            self.spares.popleft()[1].close()
        for pid in list(self.children):
            self.finish(pid)
        for pid in (self.heavy_pid, self.judge_pid):  # they stop when the parent closes their sockets (first)
            if pid is not None:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:  # already reaped as an orphan
                    pass

    # ---------------------------------------------------------------------------------------- spawning
    def spawn(self) -> None:
        """Hand over a spare child (already set up); fork a new batch of spares when none is left."""
        if not self.spares:
            self._fork_spares()
        pid, ours = self.spares.popleft()
        socket.send_fds(self.ctrl, [struct.pack(">q", pid)], [ours.fileno()])
        ours.close()

    def _fork_spares(self) -> None:
        """Fork SPARES children in a row, each with its own socket and scratch directory.

        Every fork makes all of the zygote's pages copy-on-write again, and each page the zygote then writes
        costs it a fault: so everything is prepared first and the loop between forks does almost nothing,
        and the work between batches (finishing programs) is paid once per batch, not once per fork."""
        prepared = []
        for _ in range(SPARES):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.serial += 1
            # Several zygotes may share one scratch root (process isolation): the pid keeps names apart.
            # Ours (0700) until its child hands it to the programs' uid: a running program cannot reach it.
            scratch = os.path.join(self.scratch_root, f"z{self.zygote_pid}-p{self.serial}")
            os.mkdir(scratch, 0o700)
            prepared.append((ours, theirs, scratch))
        pids = [0] * SPARES
        for k in range(SPARES):
            pid = raw_fork()
            if pid == 0:
                self._child_main(prepared[k][1], prepared[k][2])
            pids[k] = pid
        for pid, (ours, theirs, scratch) in zip(pids, prepared):
            theirs.close()
            self.children[pid] = scratch
            self.spares.append((pid, ours))

    def _child_main(self, sock: socket.socket, scratch: str) -> None:
        """The forked child: set up, wait for its first request, become the programs' uid, serve; no return.

        The other sockets it inherited (the control socket, the other spares') are closed by
        ``_prepare_child``'s closerange; their Python objects are never finalised (the child leaves by
        ``os._exit``)."""
        try:
            random.seed()  # os.fork() would have; every program gets its own random state
            self._prepare_child(sock, scratch)
            # Wait for the first request still as the zygote's uid: a program running under the programs'
            # uid cannot signal or stop a child that is not yet its own.
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLHUP)
            poller.poll()
            self._drop_privileges()
            child.run(sock, int(self.cfg["error_cap"]))
        finally:
            os._exit(70)

    def _prepare_child(self, sock: socket.socket, scratch: str) -> None:
        """Everything that does not need the program yet (done while the child waits as a spare)."""
        os.setsid()
        os.dup2(self.devnull, 2)  # the zygote's stderr is its log: never a program's
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        os.chdir(scratch)
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
        if self.uid is not None:  # applies to the programs' uid once we switch to it (root ignores it)
            resource.setrlimit(resource.RLIMIT_NPROC, (self.max_processes, self.max_processes))
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.zygote_pid:  # the zygote died before the prctl
            os._exit(72)

    def _take_program_uid(self) -> None:
        """Become the programs' uid and group, with no supplementary groups (in a forked process of ours:
        a program's child, the uid killer, the readability probe)."""
        os.setgroups([])
        os.setresgid(self.uid, self.uid, self.uid)
        os.setresuid(self.uid, self.uid, self.uid)

    def _drop_privileges(self) -> None:
        """Take over the scratch directory, then become the programs' uid, for good: no way back, no new
        privileges, seccomp."""
        try:
            cleanup.claim_scratch(self.uid)
        except OSError:
            os._exit(74)
        if self.uid is not None:
            self._take_program_uid()
            if os.getuid() != self.uid or os.geteuid() != self.uid:
                os._exit(71)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # changing uid cleared it
        _prctl(PR_SET_DUMPABLE, 0)  # no /proc/<pid>/mem access by other processes of the same uid
        if os.getppid() != self.zygote_pid:
            os._exit(72)
        if self.bpf is not None:
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
            if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self.bpf[0]), 0, 0) != 0:
                os._exit(73)

    # --------------------------------------------------------------------------------------- finishing
    def _leftovers(self) -> bool:
        """Does any process of the programs' uid remain? (Spares run as the zygote's uid until handed over.)
        Inside bubblewrap's PID namespace /proc lists only this sandbox's few processes."""
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        return True
                except OSError:
                    pass
        return False

    def _kill_uid(self) -> None:
        """kill(-1) as the programs' uid: reaches every process that uid owns, whatever session or process
        group it moved to, and nothing else; then reap them all (they are orphans of this subreaper), so no
        zombie keeps counting against the next program's RLIMIT_NPROC."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            killer = os.fork()
            if killer == 0:
                try:
                    self._take_program_uid()
                    if os.getuid() == self.uid and self.uid != 0:
                        try:
                            os.kill(-1, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                finally:
                    os._exit(0)
            os.waitpid(killer, 0)
            self._reap_orphans()
            if not self._leftovers():
                return
            time.sleep(0.001)  # dying processes: give the kernel a moment, then reap (or kill what forked)

    def _reap(self, pid: int) -> int | None:
        status = self.exited.pop(pid, None)
        if status is None:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        return status

    def finish(self, pid: int) -> dict:
        if pid not in self.children or any(pid == spare for spare, _ in self.spares):
            return {"exit": None, "signal": None, "error": "unknown pid"}
        try:
            os.kill(pid, signal.SIGKILL)  # no-op on a child that already ended: its own status is kept
        except ProcessLookupError:
            pass
        status = self._reap(pid)
        if self.uid is not None:
            if self._leftovers():
                self._kill_uid()
        else:
            # Without a dedicated uid the child's session is the boundary (seccomp denies setsid/setpgid).
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._reap_orphans()
        # Only now that none of its processes can write any more: its files and IPC objects.
        self.sweeper.after_program(self.children.pop(pid))
        if status is None:
            return {"exit": None, "signal": None}
        if os.WIFSIGNALED(status):
            return {"exit": None, "signal": os.WTERMSIG(status)}
        return {"exit": os.WEXITSTATUS(status), "signal": None}

    def _reap_orphans(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:  # a live program's child that exited on its own: keep its status
                self.exited[pid] = status


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    cfg = json.loads(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    zygote = Zygote(ctrl, cfg)
    zygote.prepare()
    zygote.serve()


if __name__ == "__main__":
    main()
