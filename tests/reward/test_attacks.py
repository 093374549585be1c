"""Adversarial tests of the reward sandbox: the policy is the adversary.

Each case is a completion that tries one way of earning reward without solving the task (or of hurting the
engine, the host, or the other programs scored beside it), run against a small honest task. After every
attack we check, on the host:

1. it passed nothing it could not have passed with a constant answer (for the ``add`` task: nothing);
2. no process is left: between programs a worker's uid owns no process at all (the zygote's pre-forked
   spare and the child the engine holds for the next program run as the zygote's uid until a program is
   handed to them), and nothing an attack named with :data:`MARK` exists anywhere (not even as a zombie: it
   would still count against the uid's RLIMIT_NPROC);
3. none of the files the attacks aim at exists on the host;
4. the engine still gives exact verdicts: a batch of honest right and honest wrong programs (each using eight
   threads at once), big enough that every worker runs at least one, gets 3/3 and 0/3 with status ``ok``,
   no worker had to be restarted and no zygote was replaced.

Every attack returns a wrong value for ``add`` (12345), and the expected values of :data:`ADD_TESTS`
(30, 7, -3) are not values any forged frame or cheat below can produce by accident (3, 1/True, 0, 42).
"""
from __future__ import annotations

import glob
import itertools
import os
import re
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest

from acecoder_rl.reward import ProgramStatus, RewardConfig, RewardEngine, TestStatus

ADD_TESTS = ["assert add(10, 20) == 30", "assert add(2, 5) == 7", "assert add(-4, 1) == -3"]
MARK = "acecoder-atk"  # comm name every process/thread an attack starts gives itself (PR_SET_NAME)
SECRET = "S3CR3T-8d1f"  # appears nowhere but here and in the test string (this file is on the host disk)
SECRET_TESTS = [f"assert get_secret() == {SECRET!r}"]

REPO = Path(__file__).resolve().parents[2]
HOST_FILES = [
    "/tmp/acecoder_pwned", "/tmp/acecoder_pwned_thread", "/tmp/acecoder_pwned_daemon",
    "/tmp/acecoder_pwned_atexit",
    "/tmp/acecoder_reduce_pwned", "/root/pwned", "/etc/pwned", str(REPO / "pwned"), str(Path.cwd() / "pwned"),
    os.path.expanduser("~/pwned"),
]
HOST_GLOBS = ["/tmp/acecoder_pwned*", "/tmp/acecoder_reduce_pwned*"]

CONFIG = RewardConfig(workers=2, timeout_per_test=1.0, timeout_per_program=20, memory_mb=1024)

# Building blocks pasted into attack programs.
NAME_SELF = f"""
import ctypes as _ct
def _name_me():
    try:
        _ct.CDLL(None).prctl(15, b"{MARK}", 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass
"""
FORGE = """
import json as _json, os as _os, struct as _struct
def _frames():
    out = b""
    for msg in ({"ok": True, "v": ["i", "0x3"]}, {"ok": True, "v": ["b", 1]},
                {"ok": True, "pass": True, "verdict": "pass", "status": "pass", "v": ["b", 1]},
                {"ok": True, "v": ["i", "0x2a"], "bound": ["abs", "len", "sorted"]},
                {"ready": True}, {"exit": 0, "signal": None}):
        body = _json.dumps(msg).encode()
        out += _struct.pack(">I", len(body)) + body
    return out
def _spray(extra=b""):
    data = _frames() + extra
    for fd in range(1024):
        try:
            _os.write(fd, data)
        except OSError:
            pass
"""


def prog(body: str) -> str:
    return textwrap.dedent(body).strip("\n") + "\n"


# ------------------------------------------------------------------------------------------ host inspection
def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _status_fields(pid: str) -> dict[str, str]:
    fields = {}
    for line in _read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _cmdline(pid: str | int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ")


def _argv0(pid: str | int) -> str:
    return _read(f"/proc/{pid}/cmdline").split("\0", 1)[0]


def _uid_pattern(uids: set[int]) -> re.Pattern:
    return re.compile(r'"uid":\s*(%s)\b' % "|".join(str(u) for u in sorted(uids)))


def zygote_pids(uids: set[int]) -> set[int]:
    """Host pids of this engine's zygotes: root python processes running zygote.py with one of our uids (not
    the two bubblewrap processes above each, whose command lines hold the same arguments)."""
    pattern = _uid_pattern(uids)
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _status_fields(entry)
            cmd = _cmdline(entry)
            ppid = fields.get("PPid", "")
            if (fields.get("Uid", "x").split()[:1] == ["0"] and "zygote.py" in cmd and pattern.search(cmd)
                    and os.path.basename(_argv0(entry)) != "bwrap"  # not the bubblewrap processes above it
                    # nor a short-lived fork of the zygote (its uid killer)
                    and ppid.isdigit() and os.path.basename(_argv0(ppid)) == "bwrap"):
                found.add(int(entry))
    return found


def heavy_zygote_pids(engine: RewardEngine) -> set[int]:
    """Host pids of the engine's heavy zygotes (each known to its worker by its pid inside the sandbox)."""
    found = set()
    for w in engine._workers:
        if w.heavy is None or w.proc is None:
            continue
        stack = [w.proc.pid]
        while stack:
            pid = stack.pop()
            nspid = _status_fields(str(pid)).get("NSpid", "").split()
            stack.extend(int(k) for k in _read(f"/proc/{pid}/task/{pid}/children").split())
            if pid != w.proc.pid and nspid and int(nspid[-1]) == w.heavy.pid:
                found.add(pid)
    return found


def _tids(pid: str) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def host_problems(uids: set[int]) -> list[str]:
    """What on the host says an attack left something behind (empty list: nothing)."""
    problems: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _status_fields(entry)
        if not fields:
            continue
        real_uids = {int(u) for u in fields.get("Uid", "").split()}
        if real_uids & uids:
            problems.append(f"uid {min(real_uids & uids)} still owns process {entry}:{fields.get('State')}:"
                            f"ppid={fields.get('PPid')}")
        for tid in _tids(entry):
            if _read(f"/proc/{entry}/task/{tid}/comm").strip() == MARK:
                problems.append(f"attack process/thread alive: pid {entry} tid {tid} ({fields.get('State')})")
    for path in HOST_FILES:
        if os.path.lexists(path):
            problems.append(f"file exists on the host: {path}")
    for pattern in HOST_GLOBS:
        for path in glob.glob(pattern):
            problems.append(f"file exists on the host: {path}")
    return problems


def wait_clean(uids: set[int], timeout: float = 2.5) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        problems = host_problems(uids)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.05)


def remove_host_files() -> None:
    for path in [*HOST_FILES, *(p for g in HOST_GLOBS for p in glob.glob(g))]:
        try:
            os.unlink(path)
        except OSError:
            pass


# --------------------------------------------------------------------------------------------- engine use
_serial = itertools.count()

# Honest programs of the health check: 0.1 s at load (so that every worker of a batch takes part) and eight
# threads alive at once per test (a program may use threads; the uid's process limit must be free for it).
HONEST = """import threading, time
time.sleep(0.1)

def add(a, b):
    barrier, out = threading.Barrier(8, timeout=2), []
    def work():
        barrier.wait()
        out.append(a {op} b)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out[0]  # check {{n}}
"""
HONEST_RIGHT = HONEST.format(op="+")
HONEST_WRONG = HONEST.format(op="-")


class Harness:
    """The module's engine plus what we know about it from the host."""

    def __init__(self, engine: RewardEngine) -> None:
        self.engine = engine
        self.uids = {w.uid for w in engine._workers}
        assert None not in self.uids and len(self.uids) == CONFIG.n_workers, "needs one uid per worker"
        self.scripts = list(engine._spec.cleanup_dirs)
        self.zygotes: set[int] = set()
        self.heavy: set[int] = set()
        self.restarts = 0

    def clean(self) -> list[str]:
        return wait_clean(self.uids)

    def honest_batch(self) -> tuple[list[str], list[str]]:
        n = next(_serial)
        right = [HONEST_RIGHT.format(n=f"{n}-{k}") for k in range(2)]
        wrong = [HONEST_WRONG.format(n=f"{n}-{k}") for k in range(2)]
        return right, wrong

    def check_exact(self, results, right_count: int) -> None:
        """The first ``right_count`` results are honest right programs, the rest honest wrong ones."""
        for k, r in enumerate(results):
            expected = [TestStatus.PASS] * 3 if k < right_count else [TestStatus.FAIL] * 3
            assert (r.status, r.test_status) == (ProgramStatus.OK, expected), (
                f"honest {'right' if k < right_count else 'wrong'} program #{k} got {r.status.value} "
                f"{[s.value for s in r.test_status]} ({r.error}; {r.test_errors})")

    def assert_healthy(self) -> None:
        """Honest programs on every worker still get exact verdicts, and no worker had to restart."""
        right, wrong = self.honest_batch()
        batch = [right[0], wrong[0], right[1], wrong[1]]  # 0.1 s each: both workers take part
        results = self.engine.score(batch, [ADD_TESTS] * 4)
        self.check_exact([results[0], results[2], results[1], results[3]], right_count=2)
        restarts, self.restarts = self.restarts, self.engine.worker_restarts
        zygotes, self.zygotes = self.zygotes, zygote_pids(self.uids)
        heavy, self.heavy = self.heavy, heavy_zygote_pids(self.engine)
        assert self.engine.worker_restarts == restarts, "an attack forced a sandbox worker restart"
        assert self.zygotes == zygotes, "a zygote was replaced or is gone"
        assert heavy <= self.heavy, "a heavy zygote was replaced or is gone"  # (new ones start on need)

    def attack(self, code: str, tests: list[str] = ADD_TESTS, *, max_passes: int = 0,
               max_seconds: float = 15.0):
        """Score ``code`` alone, then check the host and the engine. Every check runs (so that the next test
        starts from a clean engine) and all failures are reported together."""
        started = time.monotonic()
        [result] = self.engine.score([code], [tests])
        elapsed = time.monotonic() - started
        failures: list[str] = []
        if len(result.test_results) != len(tests) or sum(result.test_results) > max_passes:
            failures.append(f"attack passed {sum(result.test_results)} test(s): "
                            f"{[s.value for s in result.test_status]} {result.status.value} "
                            f"{result.test_errors}")
        if result.status is ProgramStatus.SANDBOX_ERROR:
            failures.append(f"sandbox error: {result.error}")
        if elapsed > max_seconds:
            failures.append(f"attack took {elapsed:.1f} s")
        problems = self.clean()
        if problems:
            failures.append(f"left behind on the host: {problems}")
        try:
            self.assert_healthy()
        except AssertionError as exc:
            failures.append(f"engine not healthy after the attack: {exc}")
        assert not failures, "\n".join(failures)
        return result


@pytest.fixture(scope="module")
def harness():
    remove_host_files()
    engine = RewardEngine(CONFIG)
    h = Harness(engine)
    try:
        assert engine.features.get("isolation") == "bwrap", engine.features
        assert engine.features.get("dedicated_uid"), engine.features
        # Warm-up: the first program on each worker may restart it (see test_workers_survive_startup).
        right, wrong = h.honest_batch()
        h.check_exact(engine.score([right[0], right[1], wrong[0], wrong[1]], [ADD_TESTS] * 4), right_count=2)
        h.restarts = engine.worker_restarts
        h.zygotes = zygote_pids(h.uids)
        assert len(h.zygotes) == CONFIG.n_workers, h.zygotes
        yield h
    finally:
        engine.close()
    # Module teardown: nothing of this engine may outlive close().
    problems = wait_clean(h.uids, timeout=5.0)
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and "acecoder-sandbox" in _cmdline(p)
                 and (any(s in _cmdline(p) for s in h.scripts) or _uid_pattern(h.uids).search(_cmdline(p)))]
    remove_host_files()
    assert not problems and not leftovers, (problems, leftovers)
    assert not any(os.path.exists(d) for d in h.scripts), "sandbox scripts directory left behind"


# ================================================================================ 1. exits and interrupts
EXIT_ATTACKS = {
    "sys_exit_top_level": "import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n",
    "sys_exit_in_test": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os_exit_top_level": "import os\nos._exit(0)\ndef add(a, b):\n    return a + b\n",
    "os_exit_in_test": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "raise_systemexit": "raise SystemExit\ndef add(a, b):\n    return a + b\n",
    "raise_systemexit_in_test": "def add(a, b):\n    raise SystemExit(0)\n",
    "raise_keyboardinterrupt": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "raise_keyboardinterrupt_top_level": "raise KeyboardInterrupt\ndef add(a, b):\n    return a + b\n",
    "str_raises": prog("""
        class E(Exception):
            def __str__(self):
                raise E()
        def add(a, b):
            raise E()
    """),
    "str_not_a_str": prog("""
        class E(Exception):
            def __str__(self):
                return 30
        def add(a, b):
            raise E()
    """),
    "str_exits": prog("""
        import os
        class E(Exception):
            def __str__(self):
                os._exit(0)
        def add(a, b):
            raise E()
    """),
    "str_sys_exit": prog("""
        import sys
        class E(Exception):
            def __str__(self):
                sys.exit("ok")
        def add(a, b):
            raise E()
    """),
    "format_and_name_hostile": prog("""
        class Meta(type):
            @property
            def __name__(cls):
                raise KeyboardInterrupt
        class E(Exception, metaclass=Meta):
            def __format__(self, spec):
                raise SystemExit
            def __str__(self):
                return "x" * 10**8
        def add(a, b):
            raise E()
    """),
    "str_loops_forever": prog("""
        class E(Exception):
            def __str__(self):
                while True:
                    pass
        def add(a, b):
            if (a, b) == (10, 20):
                raise E()
            return 12345
    """),
    "claims_to_be_memoryerror": prog("""
        class E(BaseException):
            __class__ = property(lambda self: MemoryError)
        def add(a, b):
            raise E()
    """),
}


@pytest.mark.parametrize("code", EXIT_ATTACKS.values(), ids=EXIT_ATTACKS.keys())
def test_exit_and_hostile_exceptions(harness, code):
    r = harness.attack(code)
    assert all(s is not TestStatus.PASS for s in r.test_status)


def test_exit_statuses_are_classified(harness):
    """Top-level SystemExit is a runtime error, os._exit a crash, an exit inside a test an error of it."""
    names = ("sys_exit_top_level", "os_exit_top_level", "sys_exit_in_test", "os_exit_in_test")
    codes = [EXIT_ATTACKS[k] for k in names]
    a, b, c, d = harness.engine.score(codes, [ADD_TESTS] * 4)
    assert a.status is ProgramStatus.RUNTIME_ERROR and a.test_status == [TestStatus.NOT_RUN] * 3
    assert b.status is ProgramStatus.CRASHED and b.test_status == [TestStatus.NOT_RUN] * 3
    assert c.status is ProgramStatus.OK and c.test_status == [TestStatus.ERROR] * 3
    assert d.status is ProgramStatus.CRASHED and d.test_status == [TestStatus.ERROR] * 3
    assert not harness.clean()
    harness.assert_healthy()


# ========================================================================================= 2. lying objects
EQ_ATTACKS = {
    "always_equal_object": prog("""
        class A:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __hash__(self): return 0
            def __bool__(self): return True
        def add(a, b):
            return A()
    """),
    "int_subclass_always_equal": prog("""
        class I(int):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = int.__hash__
            def __int__(self): return 30
            def __index__(self): return 30
        def add(a, b):
            return I(12345)
    """),
    "float_subclass_always_equal": prog("""
        class F(float):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = float.__hash__
            def __float__(self): return 30.0
        def add(a, b):
            return F(12345.5)
    """),
    "str_subclass_always_equal": prog("""
        class S(str):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = str.__hash__
            def __str__(self): return "30"
        def add(a, b):
            return S("nope")
    """),
    "list_subclass_always_equal": prog("""
        class L(list):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __iter__(self): return iter([30])
        def add(a, b):
            return L([12345])
    """),
    "spoofed_class_int": prog("""
        class A:
            __class__ = property(lambda self: int)
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __index__(self): return 30
            def __int__(self): return 30
        def add(a, b):
            return A()
    """),
    "eq_walks_stack_for_expected": prog("""
        import sys
        class A:
            def __eq__(self, other):
                f = sys._getframe()
                while f is not None:  # anything that looks like an expected value? compare it with itself
                    f = f.f_back
                return True
            __ne__ = lambda self, other: False
            __hash__ = lambda self: 0
        def add(a, b):
            return A()
    """),
}


@pytest.mark.parametrize("code", EQ_ATTACKS.values(), ids=EQ_ATTACKS.keys())
def test_always_equal_objects(harness, code):
    harness.attack(code)


def test_always_equal_str_subclass_on_a_string_task(harness):
    tests = ["assert greet('bob') == 'Hello, bob!'", "assert greet('') == 'Hello, !'",
             "assert greet('x') != 'y'"]
    cheat = prog("""
        class S(str):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = str.__hash__
        def greet(name):
            return S(name)
    """)
    # A plain `return name` passes the third test only; the cheat may not do better.
    plain, r = harness.engine.score(["def greet(name):\n    return name\n", cheat], [tests] * 2)
    assert plain.test_results == [0, 0, 1]
    assert r.test_results == [0, 0, 1], (r.test_status, r.test_errors)
    harness.assert_healthy()


TRUTH_TESTS = [
    "assert is_even(4)",            # a constant True passes this
    "assert not is_even(3)",        # a constant False passes this
    "assert is_even(3) == False",   # the rest need knowledge (or a constant of the right kind)
    "assert is_even(8) == True",
    "assert not is_even(7)",
    "assert is_even(5) is False",
]
TRUTH_CHEATS = {
    "truthy_always_equal": prog("""
        class B:
            def __bool__(self): return True
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = lambda self: 0
        def is_even(n):
            return B()
    """),
    "falsy_always_equal": prog("""
        class B:
            def __bool__(self): return False
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = lambda self: 0
        def is_even(n):
            return B()
    """),
    "int_subclass_truthy_equal": prog("""
        class B(int):
            def __bool__(self): return True
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = int.__hash__
        def is_even(n):
            return B(1)
    """),
}


@pytest.mark.parametrize("name", TRUTH_CHEATS, ids=TRUTH_CHEATS.keys())
def test_truthiness_cheat_gets_no_more_than_a_constant(harness, name):
    honest = "def is_even(n):\n    return n % 2 == 0\n"
    const_true = "def is_even(n):\n    return True\n"
    const_false = "def is_even(n):\n    return False\n"
    codes = [honest, const_true, const_false, TRUTH_CHEATS[name]]
    h, t, f, c = harness.engine.score(codes, [TRUTH_TESTS] * 4)
    assert h.test_results == [1] * 6
    assert t.test_results == [1, 0, 0, 1, 0, 0] and f.test_results == [0, 1, 1, 0, 1, 1]
    # Whatever the cheat's own truth value, it may only win what the constant of that truth value wins.
    const = t if name != "falsy_always_equal" else f
    won = [k for k, v in enumerate(c.test_results) if v]
    assert set(won) <= {k for k, v in enumerate(const.test_results) if v}, (c.test_status, c.test_errors)
    assert not harness.clean()
    harness.assert_healthy()


# ======================================================================== 3. stack, gc and harness patching
HARNESS_ATTACKS = {
    "frame_walk_overwrite_locals": prog("""
        import sys, ctypes
        def add(a, b):
            f = sys._getframe(1)
            while f is not None:
                for name in list(f.f_locals):
                    if name in ("reply", "request", "expected", "value", "code", "op"):
                        f.f_locals[name] = {"ok": True, "v": ["b", 1]} if name == "reply" else True
                try:
                    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(f), ctypes.c_int(0))
                except Exception:
                    pass
                f.f_globals["expected"] = 12345
                f = f.f_back
            return 12345
    """),
    "inspect_stack_patch_globals": prog("""
        import inspect
        def add(a, b):
            for info in inspect.stack():
                g = info.frame.f_globals
                if "_COMPARE_OPS" in g:
                    for k in list(g["_COMPARE_OPS"]):
                        g["_COMPARE_OPS"][k] = lambda x, y: True
                if "_describe" in g:
                    g["_describe"] = lambda exc, cap: "PASS"
            return 12345
    """),
    "gc_patch_encoder_and_send": prog("""
        import gc, sys
        forged = {"ok": True, "v": ["b", 1], "pass": True}
        for obj in gc.get_objects():
            if isinstance(obj, type) and obj.__name__ == "Encoder":
                obj.encode = lambda self, v: ["b", 1]
            if isinstance(obj, type) and obj.__name__ == "Harness":
                obj.handle = lambda self, request: dict(forged)
                obj._value = lambda self, v: dict(forged)
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "") in ("protocol", "values", "child"):
                if hasattr(mod, "send"):
                    real_send = mod.send
                    mod.send = lambda sock, message, _s=real_send: _s(sock, dict(forged))
        def add(a, b):
            return 12345
    """),
    "gc_patch_live_harness_instance": prog("""
        import gc
        def add(a, b):
            for obj in gc.get_objects():
                if type(obj).__name__ == "Harness":
                    obj.namespace["expected"] = 12345
                    obj.encoder.encode = lambda v: ["i", "0x2a"]
                    obj.cap = 10**9
                if type(obj).__name__ == "Encoder":
                    obj.slots.append(12345)
            return 12345
    """),
    "patch_socket_send_forged": FORGE + prog("""
        import gc, socket
        def add(a, b):
            for obj in gc.get_objects():
                if isinstance(obj, socket.socket):
                    try:
                        obj.sendall(_frames())
                    except OSError:
                        pass
            return 12345
    """),
}


@pytest.mark.parametrize("code", HARNESS_ATTACKS.values(), ids=HARNESS_ATTACKS.keys())
def test_stack_gc_and_harness_patching(harness, code):
    harness.attack(code)


# ================================================================================ 4. forged frames on fds
FD_ATTACKS = {
    "forge_at_top_level": FORGE + "_spray()\ndef add(a, b):\n    return 12345\n",
    "forge_in_test": FORGE + "def add(a, b):\n    _spray()\n    return 12345\n",
    "forge_then_desync_header": FORGE + "def add(a, b):\n    _spray(b'\\x00\\x00\\x01')\n    return 12345\n",
    "forge_and_exit": FORGE + "import os\ndef add(a, b):\n    _spray()\n    os._exit(0)\n",
    "forge_oversized_header": FORGE + "def add(a, b):\n    _spray(b'\\xff' * 4)\n    return 12345\n",
}


@pytest.mark.parametrize("code", FD_ATTACKS.values(), ids=FD_ATTACKS.keys())
def test_forged_frames_on_every_fd(harness, code):
    harness.attack(code)


def test_forged_maximal_frame_is_bounded_in_parent_memory(harness):
    """A child may send one frame of up to protocol.MAX_FRAME (32 MiB). What the trusted parent allocates for
    it must stay in proportion: values.MAX_NODES / MAX_TEXT exist to bound the parent, and a frame of
    11 million empty JSON objects must not cost it most of a gigabyte (one such frame per worker at once)."""
    code = prog("""
        import os, struct
        BODY = b'{"ok":true,"v":[' + b'{},' * 11_000_000 + b'{}]}'
        FRAME = struct.pack(">I", len(BODY)) + BODY  # built while loading: the test's 1 s is for sending
        def add(a, b):
            if (a, b) != (10, 20):
                return 12345
            for fd in range(3, 1024):
                try:
                    os.write(fd, FRAME)
                except OSError:
                    pass
            return 12345
    """)

    def status_mb(key: str) -> int:
        return int(_status_fields("self").get(key, "0 kB").split()[0]) // 1024

    # The parse runs in C holding the GIL, so a sampling thread would miss it: reset this process's
    # high-water mark (clear_refs 5) and read VmHWM afterwards.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_mb("VmRSS")
    harness.attack(code)
    grown = status_mb("VmHWM") - before
    assert grown < 256, f"parent RSS grew by {grown} MiB for one 32 MiB frame"


# ================================================================================ 5. reading the tests
SECRET_HUNT = prog(r"""
    import gc, os, re, sys, time
    PAT = re.compile(rb"S3CR3T-[0-9a-f]{4,}")
    found = []
    def _look(data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        m = PAT.search(data)
        if m and m.group().decode() != "S3CR3T-" + "0000":
            found.append(m.group().decode())
    def _read(path, n=1 << 20):
        try:
            with open(path, "rb") as f:
                _look(f.read(n))
        except Exception:
            pass
    # environment, other processes, our parents' memory
    for k, v in os.environ.items():
        _look(k + "=" + v)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for part in ("cmdline", "environ", "comm"):
                _read(f"/proc/{pid}/{part}")
    for pid in (os.getppid(), 1):
        try:
            with open(f"/proc/{pid}/maps") as m, open(f"/proc/{pid}/mem", "rb") as mem:
                for line in m:
                    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                    mem.seek(lo)
                    _look(mem.read(min(hi - lo, 1 << 22)))
        except Exception:
            pass
    # everything this process holds
    for obj in gc.get_objects():
        try:
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if isinstance(v, (str, bytes)):
                        _look(v)
            elif isinstance(obj, (list, tuple)):
                for v in obj:
                    if isinstance(v, (str, bytes)):
                        _look(v)
        except Exception:
            pass
    # where tests usually live, then the whole visible filesystem
    for guess in ("/work/main/tests/reward/test_attacks.py", "/work/main/tests", "/work", "/root", "/home"):
        _read(guess)
    def get_secret():
        deadline = time.monotonic() + 0.6
        if not found:
            for root in ("/work", "/root", "/home", "/tmp", "/opt", "/etc", "/"):
                for d, dirs, files in os.walk(root):
                    if found or time.monotonic() > deadline:
                        break
                    for name in files:
                        _read(os.path.join(d, name), 1 << 16)
        return found[0] if found else "S3CR3T-" + "0000"
""")


def test_program_cannot_find_expected_values(harness):
    # Sanity: the secret is really only in the test, and a program that knows it passes.
    [knows] = harness.engine.score([f"def get_secret():\n    return {SECRET!r}\n"], [SECRET_TESTS])
    assert knows.test_results == [1]
    harness.attack(SECRET_HUNT, SECRET_TESTS)


def test_program_cannot_see_project_or_home(harness):
    code = prog("""
        import os
        def add(a, b):
            seen = [p for p in ("/work/main", "/work/main/tests", "/work/main/acecoder_rl", "/root/.ssh",
                                "/proc/1/environ") if os.path.exists(p) and os.access(p, os.R_OK)]
            try:
                seen += [f for f in os.listdir("/root")]
            except OSError:
                pass
            return a + b if seen and seen != [".pyenv"] else 12345
    """)
    harness.attack(code)


# ============================================================================== 6. killing and signalling
KILL_ATTACKS = {
    "kill_parent": prog("""
        import os, time
        def add(a, b):
            os.kill(os.getppid(), 9)
            time.sleep(0.2)
            return 12345
    """),
    "kill_pid_1": "import os\ndef add(a, b):\n    os.kill(1, 9)\n    return 12345\n",
    "kill_minus_1": prog("""
        import os, time
        def add(a, b):
            time.sleep(0.2)  # the zygote's spare child is set up by now (it must be out of reach)
            os.kill(-1, 9)
            return 12345
    """),
    "kill_every_pid": prog("""
        import os, signal, time
        def add(a, b):
            time.sleep(0.2)
            for p in os.listdir("/proc"):
                if p.isdigit() and int(p) != os.getpid():
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except OSError:
                        pass
            return 12345
    """),
    "stop_every_pid": prog("""
        import os, signal, time
        def add(a, b):
            time.sleep(0.2)
            for p in os.listdir("/proc"):
                if p.isdigit() and int(p) != os.getpid():
                    try:
                        os.kill(int(p), signal.SIGSTOP)
                    except OSError:
                        pass
            return 12345
    """),
    "killpg_everything": prog("""
        import os, signal
        def add(a, b):
            for g in (0, os.getpgrp(), os.getpgid(os.getppid()), 1):
                try:
                    os.killpg(g, signal.SIGTERM)
                except OSError:
                    pass
            for p in range(1, 64):
                try:
                    os.killpg(p, signal.SIGKILL)
                except OSError:
                    pass
            return 12345
    """),
}


@pytest.mark.parametrize("code", KILL_ATTACKS.values(), ids=KILL_ATTACKS.keys())
def test_killing_or_signalling_others(harness, code):
    harness.attack(code)


# ============================================================================ 7-10. resource exhaustion
FORK_BOMB = NAME_SELF + prog("""
        import os, time
        def add(a, b):
            if (a, b) == (10, 20):
                deadline = time.monotonic() + 0.5
                while time.monotonic() < deadline:
                    try:
                        pid = os.fork()
                    except OSError:
                        continue
                    if pid == 0:
                        _name_me()
                        while True:
                            try:
                                os.fork()
                            except OSError:
                                pass
            return 12345
    """)


def test_fork_bomb(harness):
    harness.attack(FORK_BOMB, max_seconds=10)


@pytest.mark.parametrize("code", [
    "def add(a, b):\n    return bytearray(10**11)\n",
    # bytes(n) comes from calloc: the limit is reached in ~10 steps without touching 1 GiB (which alone can
    # take most of the 1 s per-test budget on a small VM)
    "def add(a, b):\n    x = []\n    while True:\n        x.append(bytes(10**8))\n",
    "x = []\nwhile True:\n    x.append(bytes(10**8))\ndef add(a, b):\n    return a + b\n",
], ids=["bytearray_1e11", "growing_list_in_test", "growing_list_top_level"])
def test_memory_bomb(harness, code):
    r = harness.attack(code)
    assert r.status is ProgramStatus.MEMORY or any("MemoryError" in (e or "") for e in r.test_errors), (
        r.status, r.test_errors)


def test_cpu_loop_in_c(harness):
    r = harness.attack("def add(a, b):\n    return sum(range(10**12))\n", max_seconds=10)
    assert r.test_status == [TestStatus.TIMEOUT] * 3 and r.status is ProgramStatus.TIMEOUT


def test_ignored_signals_and_infinite_loop(harness):
    code = prog("""
        import signal
        for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU,
                  signal.SIGUSR1):
            signal.signal(s, signal.SIG_IGN)
        signal.alarm(0)
        while True:
            pass
        def add(a, b):
            return a + b
    """)
    r = harness.attack(code, max_seconds=10)
    assert r.status is ProgramStatus.TIMEOUT, (r.status, r.test_errors)
    assert r.test_status == [TestStatus.NOT_RUN] * 3


# ========================================================================= 11. things that outlive a test
def test_background_thread_keeps_running(harness):
    code = NAME_SELF + prog("""
        import os, threading, time
        def _work():
            _name_me()
            i = 0
            while True:
                for path in ("/tmp/acecoder_pwned_thread", "pwned_thread", f"/tmp/acecoder_pwned_{i}"):
                    try:
                        with open(path, "w") as f:
                            f.write("x")
                    except OSError:
                        pass
                i += 1
                time.sleep(0.01)
        threading.Thread(target=_work).start()
        threading.Thread(target=_work, daemon=True).start()
        def add(a, b):
            threading.Thread(target=_work).start()
            return 12345
    """)
    harness.attack(code)


# The processes below hold 300 MiB (a big process takes a moment to die once killed) and report ready through
# a pipe before the test returns, so that the engine's clean-up always finds them running.
DAEMONISED_GRANDCHILD = NAME_SELF + prog("""
        import os, time
        def add(a, b):
            if (a, b) != (10, 20):
                return 12345
            r, w = os.pipe()
            if os.fork() == 0:
                try:
                    os.setsid()
                except OSError:
                    pass
                if os.fork() == 0:
                    _name_me()
                    ballast = bytearray(300 * 2**20)
                    os.write(w, b"x")
                    for _ in range(600):
                        try:
                            with open("/tmp/acecoder_pwned_daemon", "w") as f:
                                f.write("x")
                        except OSError:
                            pass
                        time.sleep(0.1)
                os._exit(0)
            os.read(r, 1)
            return 12345
    """)


def test_daemonised_grandchild(harness):
    harness.attack(DAEMONISED_GRANDCHILD)


def test_grandchild_that_ignores_sigterm_and_hides_in_new_process_group(harness):
    code = NAME_SELF + prog("""
        import os, signal, time
        def add(a, b):
            if (a, b) != (10, 20):
                return 12345
            r, w = os.pipe()
            if os.fork() == 0:
                _name_me()
                for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                    signal.signal(s, signal.SIG_IGN)
                try:
                    os.setpgid(0, 0)
                except OSError:
                    pass
                ballast = bytearray(300 * 2**20)
                os.write(w, b"x")
                time.sleep(60)
                os._exit(0)
            os.read(r, 1)
            return 12345
    """)
    harness.attack(code)


# ==================================================================================== 12. atexit / __del__
ATEXIT_ATTACKS = {
    "atexit_forges": FORGE + prog("""
        import atexit
        atexit.register(_spray)
        def add(a, b):
            return 12345
    """),
    "del_forges_on_collection": FORGE + prog("""
        class Ghost:
            def __del__(self):
                _spray()
        keep = [Ghost() for _ in range(3)]
        def add(a, b):
            Ghost()
            return [Ghost(), 12345]
    """),
    "del_of_returned_object": FORGE + prog("""
        class Ghost:
            def __del__(self):
                _spray()
                try:
                    open("/tmp/acecoder_pwned_atexit", "w").write("x")
                except OSError:
                    pass
        def add(a, b):
            return Ghost()
    """),
}


@pytest.mark.parametrize("code", ATEXIT_ATTACKS.values(), ids=ATEXIT_ATTACKS.keys())
def test_atexit_and_del(harness, code):
    harness.attack(code)


# ======================================================================================= 13. huge outputs
HUGE_ATTACKS = {
    "print_100mb": prog("""
        import sys
        def add(a, b):
            sys.stdout.write("x" * 10**8)
            print("y" * 10**8, file=sys.stderr)
            return 12345
    """),
    "list_50_million": "def add(a, b):\n    return [30] * 50_000_000 if (a, b) == (10, 20) else 12345\n",
    "str_1e8": "def add(a, b):\n    return '3' * 10**8\n",
    "int_huge": "def add(a, b):\n    return 1 << (8 * 8 * 1024 * 1024 + 1)\n",
    "deep_nesting": "def add(a, b):\n    x = []\n    for _ in range(10**5):\n        x = [x]\n    return x\n",
    "wide_dict": "def add(a, b):\n    return {i: [i] for i in range(3 * 10**5)} if a == 10 else 12345\n",
}


@pytest.mark.parametrize("code", HUGE_ATTACKS.values(), ids=HUGE_ATTACKS.keys())
def test_huge_outputs(harness, code):
    r = harness.attack(code, max_seconds=20)
    assert r.status is not ProgramStatus.SANDBOX_ERROR


# ============================================================================= 14. recursion and segfaults
CRASH_ATTACKS = {
    "deep_python_recursion": "import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return f(n + 1)\n"
                             "def add(a, b):\n    return f(0) if (a, b) == (10, 20) else 12345\n",
    "deep_c_recursion": "import sys\nsys.setrecursionlimit(10**6)\n"
                        "def f(n):\n    return list(map(f, [n + 1]))\ndef add(a, b):\n    return f(0)\n",
    "segfault": "import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n",
    "segfault_top_level": "import ctypes\nctypes.string_at(0)\ndef add(a, b):\n    return a + b\n",
    "abort": "import os\ndef add(a, b):\n    os.abort()\n",
}


@pytest.mark.parametrize("name", CRASH_ATTACKS, ids=CRASH_ATTACKS.keys())
def test_recursion_and_crashes(harness, name):
    r = harness.attack(CRASH_ATTACKS[name], max_seconds=10)
    if name in ("deep_c_recursion", "segfault", "abort"):
        assert r.status is ProgramStatus.CRASHED, (r.status, r.test_errors)
        assert r.test_status == [TestStatus.ERROR] * 3
    if name == "segfault_top_level":
        assert r.status is ProgramStatus.CRASHED and r.test_status == [TestStatus.NOT_RUN] * 3


# ============================================================================================ 15. network
def test_network_is_unreachable(harness):
    code = prog("""
        import socket
        def _reach():
            ok = []
            for target in (("1.1.1.1", 80), ("8.8.8.8", 53), ("127.0.0.1", 22), ("::1", 80)):
                try:
                    socket.create_connection(target, timeout=0.2).close()
                    ok.append(target)
                except Exception:
                    pass
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(b"x", ("8.8.8.8", 53))
                ok.append("udp")
            except Exception:
                pass
            try:
                import urllib.request
                urllib.request.urlopen("http://1.1.1.1/", timeout=0.2)
                ok.append("http")
            except Exception:
                pass
            try:
                s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
                ok.append("netlink")
            except Exception:
                pass
            return ok
        def add(a, b):
            return a + b if _reach() else 12345
    """)
    harness.attack(code)


# ================================================================================ 16. writing outside scratch
def test_writes_outside_scratch(harness):
    code = prog(f"""
        import os
        TARGETS = ["/tmp/acecoder_pwned", "/root/pwned", {str(REPO / "pwned")!r}, "/etc/pwned",
                   {str(Path.cwd() / "pwned")!r}, "/usr/pwned", "/opt/acecoder-sandbox/pwned",
                   "/dev/shm/pwned", "/tmp/programs/pwned", "/proc/pwned", "/pwned"]
        def _write_any():
            ok = []
            for path in TARGETS:
                try:
                    with open(path, "w") as f:
                        f.write("pwned")
                    ok.append(path)
                except OSError:
                    pass
            # HOME is the program's own scratch directory (wiped after the program): allowed, not counted
            try:
                with open(os.path.expanduser("~/pwned"), "w") as f:
                    f.write("x")
            except OSError:
                pass
            return ok
        def add(a, b):
            return a + b if _write_any() else 12345
    """)
    harness.attack(code)


# ======================================================================= 17. serialisation running code
def test_objects_whose_serialisation_runs_code(harness):
    code = prog("""
        import os
        def _pwn(*_):
            try:
                with open("/tmp/acecoder_reduce_pwned", "w") as f:
                    f.write("x")
            except OSError:
                pass
        class Evil:
            def __reduce__(self):
                return (os.system, ("touch /tmp/acecoder_reduce_pwned",))
            def __reduce_ex__(self, proto):
                return self.__reduce__()
            def __repr__(self):
                _pwn(); return "pwned"
            def __str__(self):
                _pwn(); return "pwned"
            def __hash__(self):
                _pwn(); return 30
            def __len__(self):
                _pwn(); return 12345
            def __iter__(self):
                _pwn(); return iter([12345])
            def __getstate__(self):
                _pwn(); return {}
            def __index__(self):
                _pwn(); return 30
            def __float__(self):
                _pwn(); return 30.0
            def __format__(self, spec):
                _pwn(); return "30"
            def __getattr__(self, name):
                _pwn(); return Evil()
        def add(a, b):
            return Evil()
    """)
    tests = [*ADD_TESTS, "assert len(add(1, 1)) == 2", "assert list(add(1, 1)) == [2]",
             "assert str(add(1, 1)) == '2'",
             "assert repr(add(1, 1)) == '2'", "assert hash(add(1, 1)) == 2", "assert add(1, 1).real == 2",
             "assert int(add(1, 1)) == 2", "assert float(add(1, 1)) == 2.0", "assert f'{add(1, 1)}' == '2'"]
    harness.attack(code, tests)


# =============================================================================== 18. replacing builtins
BUILTIN_ATTACKS = {
    # (the patched builtins lie only about the program's own garbage value, so the sandbox harness, which
    # uses them too, keeps working and the check itself is what is tested)
    "builtins_module_len": (prog("""
        import builtins
        _real_len = builtins.len
        builtins.len = lambda x: 3 if type(x) is str and x == "ab" else _real_len(x)
        def f(x):
            return "ab"
    """), ["assert len(f(3)) == 3"]),
    "builtins_dict_abs": (prog("""
        (__builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__)["abs"] = lambda x: 0
        import builtins
        builtins.abs = lambda x: 0
        def f(x):
            return 12345.0
    """), ["assert abs(f(1) - 0.5) < 1e-9"]),
    "patched_math_module": (prog("""
        import math
        math.isclose = lambda *a, **k: True
        def f(x):
            return 12345.0
    """), ["assert math.isclose(f(1), 0.5)"]),
    "fake_math_bound_in_namespace": (prog("""
        class math:
            isclose = staticmethod(lambda *a, **k: True)
        def f(x):
            return 12345.0
    """), ["assert math.isclose(f(1), 0.5)"]),
    # Shadowing a checker builtin in the program's namespace: the engine then evaluates the builtin call as
    # a program expression inside the sandbox (expected values included), so the program decides the check.
    "shadow_abs_in_namespace": (prog("""
        def abs(x):
            return 0
        def f(x):
            return 12345.0
    """), ["assert abs(f(1) - 0.5) < 1e-9"]),
    "shadow_len_in_namespace": (prog("""
        len = lambda x: 3
        def f(x):
            return "garbage"
    """), ["assert len(f(3)) == 3"]),
    "shadow_sorted_in_namespace": (prog("""
        def sorted(*args, **kwargs):
            return []
        def f(x):
            return "garbage"
    """), ["assert sorted(f(3)) == sorted([3, 1, 2])"]),
}


@pytest.mark.parametrize("name", BUILTIN_ATTACKS, ids=BUILTIN_ATTACKS.keys())
def test_replacing_builtins(harness, name):
    code, tests = BUILTIN_ATTACKS[name]
    harness.attack(code, tests)


# ================================================================================ 19. denied syscalls
# Each denied syscall is called directly (ctypes ``syscall()``) from a sandboxed program, which returns the
# errno it got; the test asserts that errno. The arguments are invalid on purpose: where a syscall checks its
# arguments before the caller's privileges, an unfiltered call fails with another errno (EINVAL, EFAULT,
# EBADF, ESRCH...), which test_denials_come_from_the_filter checks, so EPERM there can only be the filter's.
BAD = 1  # an unmapped address
SYSCALL_ARGS = {
    "unshare": [-1], "setns": [-1, 0], "mount": [BAD, BAD, BAD, 0, 0], "umount2": [BAD, 0], "chroot": [BAD],
    "pivot_root": [BAD, BAD], "fsopen": [BAD, 0], "fsconfig": [-1, 0, 0, 0, 0], "fsmount": [-1, 0, 0],
    "fspick": [-1, BAD, 0], "move_mount": [-1, BAD, -1, BAD, 0], "open_tree": [-1, BAD, 0],
    "open_by_handle_at": [-1, BAD, 0], "name_to_handle_at": [-1, BAD, BAD, BAD, 0],
    "ptrace": [16, 0x3FFFFFFF, 0, 0], "process_vm_readv": [0, 0, 0, 0, 0, 1],
    "process_vm_writev": [0, 0, 0, 0, 0, 1], "pidfd_getfd": [-1, 0, 0],
    "kcmp": [0x3FFFFFFF, 0x3FFFFFFF, 0, 0, 0],
    "execve": [BAD, 0, 0], "execveat": [-1, BAD, 0, 0, 0],
    "bpf": [-1, 0, 0], "perf_event_open": [BAD, 0, -1, -1, 0], "keyctl": [-1, 0, 0, 0, 0],
    "add_key": [BAD, BAD, 0, 0, 0], "request_key": [BAD, BAD, 0, 0], "userfaultfd": [-1],
    "kexec_load": [0, 0, 0, 0], "kexec_file_load": [-1, -1, 0, 0, -1], "init_module": [0, 0, BAD],
    "finit_module": [-1, 0, -1], "delete_module": [BAD, 0], "reboot": [0, 0, 0, 0], "swapon": [BAD, 0],
    "swapoff": [BAD], "acct": [BAD], "quotactl": [0xFF, 0, 0, 0], "iopl": [4], "ioperm": [0x10000, 1, 1],
    "mq_open": [BAD, 0, 0, 0], "io_uring_setup": [0, BAD], "io_uring_enter": [-1, 0, 0, 0, 0, 0],
    "io_uring_register": [-1, 0, 0, 0], "setsid": [], "setpgid": [0, 0], "clone3": [0, 0], "clone": [],
}
CLONE_NEW = {"NEWNS": 0x20000, "NEWCGROUP": 0x2000000, "NEWUTS": 0x4000000, "NEWIPC": 0x8000000,
             "NEWUSER": 0x10000000, "NEWPID": 0x20000000, "NEWNET": 0x40000000}
AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, SOCK_STREAM, SOCK_RAW = 2, 10, 16, 17, 1, 3
SYSCALL_PROBE = prog("""
    import ctypes, os
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.syscall.restype = ctypes.c_long
    def _call(name, *args):
        ctypes.set_errno(0)
        result = _libc.syscall(ctypes.c_long(NUMBERS[name]), *(ctypes.c_long(a) for a in args))
        return result, ctypes.get_errno()
    def errno_of(name):
        result, err = _call(name, *ARGS[name])
        return err if result == -1 else 0
    def errno_in_child(name):
        # setsid/setpgid: this process leads its session, which alone would be EPERM; its child's would not
        pid = os.fork()
        if pid == 0:
            os._exit(errno_of(name))
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    def errno_of_clone(flags):
        pid, err = _call("clone", flags | 17, 0, 0, 0, 0)  # | SIGCHLD: as fork() would, plus the flags
        if pid == 0:
            os._exit(0)
        if pid > 0:
            os.waitpid(pid, 0)
            return 0
        return err
    def errno_of_socket(family, kind):
        fd, err = _call("socket", family, kind, 0)
        if fd >= 0:
            os.close(fd)
            return 0
        return err
""")


def _syscall_numbers() -> dict[str, int]:
    """This architecture's numbers (from libseccomp, as the filter gets them); absent ones left out."""
    sc = pytest.importorskip("pyseccomp")
    numbers = {name: sc.resolve_syscall(sc.Arch.NATIVE, name) for name in [*SYSCALL_ARGS, "socket"]}
    return {name: n for name, n in numbers.items() if n >= 0}


def _calls(*names: str) -> list[str]:
    present = _syscall_numbers()
    return [f"assert errno_of({name!r}) == 1" for name in names if name in present]


DENIED_CLASSES = {
    "leaving_the_sandbox": lambda: [
        *_calls("unshare", "setns", "mount", "umount2", "chroot", "pivot_root", "fsopen", "fsconfig",
                "fsmount", "fspick", "move_mount", "open_tree", "open_by_handle_at", "name_to_handle_at"),
        *(f"assert errno_of_clone({flag:#x}) == 1" for flag in CLONE_NEW.values()),
        "assert errno_of('clone3') == 38",  # ENOSYS: the C library then falls back to clone()
    ],
    "reading_other_processes": lambda: _calls("ptrace", "process_vm_readv", "process_vm_writev",
                                              "pidfd_getfd", "kcmp"),
    "new_programs": lambda: _calls("execve", "execveat"),
    "kernel_admin": lambda: _calls("bpf", "perf_event_open", "keyctl", "add_key", "request_key",
                                   "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
                                   "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct",
                                   "quotactl", "iopl", "ioperm"),
    "uncleanable_ipc_and_io_uring": lambda: _calls("mq_open", "io_uring_setup", "io_uring_enter",
                                                   "io_uring_register"),
    "new_session_or_group": lambda: ["assert errno_in_child('setsid') == 1",
                                     "assert errno_in_child('setpgid') == 1"],
    "sockets_other_than_unix": lambda: [
        f"assert errno_of_socket({AF_INET}, {SOCK_STREAM}) == 13",
        f"assert errno_of_socket({AF_INET6}, {SOCK_STREAM}) == 13",
        f"assert errno_of_socket({AF_NETLINK}, {SOCK_RAW}) == 13",
        f"assert errno_of_socket({AF_PACKET}, {SOCK_RAW}) == 13",
        f"assert errno_of_socket(1, {SOCK_STREAM}) == 0",  # AF_UNIX stays allowed
    ],
}


def syscall_probe() -> str:
    numbers = _syscall_numbers()
    return f"NUMBERS = {numbers!r}\nARGS = {SYSCALL_ARGS!r}\n" + SYSCALL_PROBE


@pytest.mark.parametrize("kind", DENIED_CLASSES, ids=DENIED_CLASSES.keys())
def test_denied_syscalls(harness, kind):
    """A sandboxed program calling a denied syscall gets EPERM (sockets: EACCES), whatever its arguments."""
    tests = DENIED_CLASSES[kind]()
    [r] = harness.engine.score([syscall_probe()], [tests])
    failed = [t for t, s in zip(tests, r.test_status) if s is not TestStatus.PASS]
    assert r.status is ProgramStatus.OK and not failed, (r.status, failed, r.test_errors)
    assert not harness.clean()
    harness.assert_healthy()


def test_denials_come_from_the_filter():
    """Without the filter, the same calls fail otherwise (their arguments are checked before any privilege)
    or succeed: so the errnos above are the filter's, not a missing privilege's."""
    present = _syscall_numbers()
    tests = [f"assert errno_of({name!r}) not in (0, 1, 13)" for name in (
        "unshare", "setns", "mount", "chroot", "ptrace", "process_vm_readv", "execve", "execveat",
        "perf_event_open", "keyctl", "quotactl") if name in present]
    tests += ["assert errno_of('clone3') not in (0, 1, 38)", "assert errno_in_child('setsid') == 0",
              "assert errno_in_child('setpgid') == 0",
              f"assert errno_of_socket({AF_INET}, {SOCK_STREAM}) == 0"]
    with RewardEngine(RewardConfig(workers=1, seccomp=False)) as engine:
        assert not engine.features.get("seccomp")
        [r] = engine.score([syscall_probe()], [tests])
    failed = [t for t, s in zip(tests, r.test_status) if s is not TestStatus.PASS]
    assert r.status is ProgramStatus.OK and not failed, (r.status, failed, r.test_errors)


# ===================================================================== attacks beside honest programs
def test_attacks_in_the_same_batch_as_honest_programs(harness):
    attacks = [
        KILL_ATTACKS["kill_minus_1"], FD_ATTACKS["forge_in_test"],
        "def add(a, b):\n    return bytearray(10**11)\n",
        EXIT_ATTACKS["os_exit_in_test"], EQ_ATTACKS["always_equal_object"], KILL_ATTACKS["kill_every_pid"],
        "def add(a, b):\n    return sum(range(10**12)) if (a, b) == (10, 20) else 12345\n",
        HARNESS_ATTACKS["gc_patch_encoder_and_send"],
    ]
    attacks = [a + f"# batch {next(_serial)}\n" for a in attacks]
    honest: list[tuple[str, str]] = []
    for _ in range(len(attacks) // 2):
        right, wrong = harness.honest_batch()
        honest += [(right[0], "right"), (wrong[0], "wrong"), (right[1], "right"), (wrong[1], "wrong")]
    # Interleaved: every attack is followed by honest programs that may land on the worker it just ran on.
    batch, kinds = [], []
    for k, attack in enumerate(attacks):
        batch.append(attack)
        kinds.append("attack")
        for code, kind in honest[2 * k:2 * k + 2]:
            batch.append(code)
            kinds.append(kind)
    results = harness.engine.score(batch, [ADD_TESTS] * len(batch))
    bad = []
    for kind, r in zip(kinds, results):
        if kind == "attack":
            assert sum(r.test_results) == 0, (r.status, r.test_status)
        else:
            expected = [TestStatus.PASS if kind == "right" else TestStatus.FAIL] * 3
            if (r.status, r.test_status) != (ProgramStatus.OK, expected):
                bad.append((kind, r.status.value, [s.value for s in r.test_status], r.error))
    assert not bad, f"honest programs beside attacks got wrong verdicts: {bad}"
    assert not harness.clean()
    harness.assert_healthy()


# ====================================================== found on the way: honest verdicts, not attacks
def test_honest_probe_with_a_comprehension_argument(harness):
    """A program call whose argument is a comprehension (``f([i * 2 for i in range(3)])``) is one probe; the
    comprehension's own variable must not be looked up in the parent (where it does not exist)."""
    code = "def f(xs):\n    return sum(xs)\n"
    tests = ["assert f([i * 2 for i in range(3)]) == 6", "assert f({k: 1 for k in (1, 2)}) == 3",
             "assert f(list(range(3))) == 3", "assert f([i for i in range(3)]) == 4"]
    [r] = harness.engine.score([code], [tests])
    assert r.test_status == [TestStatus.PASS] * 3 + [TestStatus.FAIL], (r.test_status, r.test_errors)


# ======================================================================================== engine lifecycle
HEAVY_ROUTE = "import unittest\n"  # a program importing a large module is forked from the heavy zygote
FROM_HEAVY = {
    **{f"exit-{k}": EXIT_ATTACKS[k] for k in ("sys_exit_top_level", "os_exit_in_test", "raise_systemexit",
                                              "str_exits")},
    **{f"kill-{k}": v for k, v in KILL_ATTACKS.items()},
    **{f"harness-{k}": v for k, v in HARNESS_ATTACKS.items()},
    **{f"fd-{k}": v for k, v in FD_ATTACKS.items()},
    **{f"atexit-{k}": v for k, v in ATEXIT_ATTACKS.items()},
    "fork_bomb": FORK_BOMB, "daemonised_grandchild": DAEMONISED_GRANDCHILD,
}


@pytest.mark.parametrize("code", FROM_HEAVY.values(), ids=FROM_HEAVY.keys())
def test_attacks_from_the_heavy_zygote(harness, code):
    """The heavy zygote and its children hold the same line as the lean one's (and it is not replaced)."""
    harness.attack(HEAVY_ROUTE + code, max_seconds=10)
    assert harness.heavy, "the program did not go to a heavy zygote"


def test_workers_survive_startup():
    """The zygotes started by the constructor must be alive once it returns (no restart on first use)."""
    with RewardEngine(RewardConfig(workers=2, timeout_per_test=1.0)) as engine:
        time.sleep(0.3)
        alive = [w.alive() for w in engine._workers]
        codes = [w.proc.poll() if w.proc else None for w in engine._workers]
        engine.score(["def add(a, b):\n    return a + b\n"] * 1, [ADD_TESTS])
        restarts = engine.worker_restarts
    assert all(alive), f"zygotes dead right after start (exit codes {codes})"
    assert restarts == 0


def test_zz_close_leaves_nothing():
    """An engine of its own, closed right after attacks that leave processes behind: nothing survives."""
    remove_host_files()
    engine = RewardEngine(CONFIG)
    uids = {w.uid for w in engine._workers}
    scripts = list(engine._spec.cleanup_dirs)
    try:
        daemon = NAME_SELF + prog("""
            import os, time
            def add(a, b):
                if os.fork() == 0:
                    _name_me()
                    time.sleep(60)
                    os._exit(0)
                return 12345
        """)
        results = engine.score([daemon, HEAVY_ROUTE + daemon, HONEST_RIGHT.format(n="close")], [ADD_TESTS] * 3)
        assert [r.test_results for r in results] == [[0, 0, 0], [0, 0, 0], [1, 1, 1]]
        assert zygote_pids(uids), "no zygote found while the engine runs"
        assert heavy_zygote_pids(engine), "no heavy zygote found while the engine runs"
    finally:
        engine.close()
    problems = wait_clean(uids, timeout=5.0)
    zygotes = [p for p in os.listdir("/proc") if p.isdigit() and "acecoder-sandbox" in _cmdline(p)
               and (any(s in _cmdline(p) for s in scripts) or _uid_pattern(uids).search(_cmdline(p)))]
    assert not problems and not zygotes, (problems, zygotes)
    assert not any(os.path.exists(d) for d in scripts)
