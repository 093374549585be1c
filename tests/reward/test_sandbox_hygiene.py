"""Every program starts from the same clean state, whatever the program before it on that worker did.

A worker's programs share its IPC namespace, its scratch filesystem and one uid, so each attack below leaves
something for later programs: SysV shared memory (holding host memory), semaphores, message queues, files
where they do not belong, trees that defeat a naive clean-up, files planted in the next programs' scratch
directories. Each is run on a one-worker engine, then honest programs on the same worker, which must get
exact verdicts and find nothing: no IPC object, no file, no process, no scratch space in use.
"""
from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import pytest

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward import ProgramStatus, RewardConfig, RewardEngine, TestStatus
from acecoder_rl.reward.sandbox import isolation

SANDBOX = Path(__file__).resolve().parents[2] / "acecoder_rl" / "reward" / "sandbox"
ADD_TESTS = ["assert add(10, 20) == 30", "assert add(2, 5) == 7", "assert add(-4, 1) == -3"]


def prog(body: str) -> str:
    return textwrap.dedent(body).strip("\n") + "\n"


def _cleanup_module():
    """The sandbox's clean-up module (a top-level module inside the sandbox), under a name of its own here."""
    spec = importlib.util.spec_from_file_location("acecoder_sandbox_cleanup", SANDBOX / "cleanup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cleanup = _cleanup_module()


# What an honest program can see of earlier programs: checked when it loads (before it does anything) and
# again in a test. Raises, naming what it found, so that a failure says what was left.
CHECK = prog("""
    import os
    def leftovers():
        found = []
        mine = os.listdir(".")
        if mine:
            found.append(("scratch directory not empty", mine[:5]))
        try:
            found.append(("scratch root listable", os.listdir("..")[:5]))
        except PermissionError:
            pass
        for kind in ("shm", "sem", "msg"):
            rows = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
            if rows:
                found.append((kind, len(rows), rows[0]))
        for place, expected in (("/dev/shm", []), ("/tmp", ["programs"])):
            if sorted(os.listdir(place)) != expected:
                found.append((place, os.listdir(place)[:5]))
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
                  and os.stat(f"/proc/{p}").st_uid == os.getuid()]
        if others:
            found.append(("processes of this uid", others))
        fs = os.statvfs(".")
        used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        if used > 1 << 20:
            found.append(("scratch space in use", used))
        inodes = fs.f_files - fs.f_ffree  # the scratch root and the spares' empty directories: a few dozen
        if inodes > 100:
            found.append(("scratch inodes in use", inodes))
        return found
    def clean():
        found = leftovers()
        if found:
            raise AssertionError(repr(found))
        return True
    def shm_bytes():
        rows = [r.split() for r in open("/proc/sysvipc/shm").read().splitlines()]
        return sum(int(r[rows[0].index("size")]) for r in rows[1:])
    def fresh_file():
        with open("out.txt", "x") as f:
            f.write("mine")
        with open("out.txt") as f:
            return f.read()
    AT_LOAD = leftovers()
""")
HONEST_TESTS = [*ADD_TESTS, "assert AT_LOAD == []", "assert clean()", "assert shm_bytes() == 0",
                "assert fresh_file() == 'mine'"]
HONEST_RIGHT = CHECK + "def add(a, b):\n    return a + b\n"
HONEST_WRONG = CHECK + "def add(a, b):\n    return a - b\n"
PASS, FAIL = TestStatus.PASS, TestStatus.FAIL

IPC = prog("""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    IPC_PRIVATE, IPC_CREAT, IPC_SET, IPC_STAT = 0, 0o1000, 1, 2
    def give_to_root(ctl, ident, *head):
        # IPC_STAT, then IPC_SET with owner uid/gid 0 (struct ipc_perm: key, uid, gid, ...): a program may
        # hand its object to any uid, and a clean-up that looked only at the owner would miss it
        buf = ctypes.create_string_buffer(512)
        if ctl(ident, *head, IPC_STAT, buf) == 0:
            ctypes.memset(ctypes.addressof(buf) + 4, 0, 8)
            ctl(ident, *head, IPC_SET, buf)
""")
ATTACKS = {
    # 3 x 200 MiB, touched (so really held), left attached; one handed to root
    "shm_segments": IPC + prog("""
        for k in range(3):
            shmid = libc.shmget(IPC_PRIVATE, 200 << 20, IPC_CREAT | 0o666)
            addr = libc.shmat(shmid, None, 0)
            ctypes.memset(addr, 1, 200 << 20)
        give_to_root(libc.shmctl, shmid)
    """),
    "semaphores": IPC + prog("""
        for k in range(200):
            semid = libc.semget(IPC_PRIVATE, 100, IPC_CREAT | 0o666)
        give_to_root(libc.semctl, semid, 0)
    """),
    "message_queues": IPC + prog("""
        msg = ctypes.create_string_buffer(b"\\x01" + b"\\0" * 7 + b"x" * 1024)  # long mtype, then the text
        for k in range(50):
            msqid = libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o666)
            while libc.msgsnd(msqid, msg, 1024, 0o4000) == 0:  # IPC_NOWAIT: until the queue is full
                pass
        give_to_root(libc.msgctl, msqid)
    """),
    # Named objects a later program could open by name (keys, paths): the places they would live.
    "named_ipc_and_shared_places": IPC + prog("""
        import os
        libc.shmget(0x5EED, 1 << 20, IPC_CREAT | 0o666)
        libc.semget(0x5EED, 1, IPC_CREAT | 0o666)
        libc.msgget(0x5EED, IPC_CREAT | 0o666)
        for path in ("/dev/shm/leftover", "/dev/shm/sem.leftover", "/tmp/leftover", "/dev/mqueue/leftover",
                     "/var/tmp/leftover", "/tmp/programs/leftover"):
            try:
                open(path, "w").write("x")
            except OSError:
                pass
        try:
            from multiprocessing import shared_memory
            shared_memory.SharedMemory("leftover", create=True, size=1 << 20)
        except OSError:
            pass
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        rt.mq_open(b"/leftover", os.O_CREAT | os.O_RDWR, 0o666, None)
    """),
    "deep_tree": prog("""
        import os
        here = os.open(".", os.O_RDONLY)
        for k in range(400):
            os.mkdir("d")
            os.chdir("d")
        open("deep.txt", "w").write("x")
        for k in range(3000):  # then deeper than PATH_MAX, with the longest names there are
            os.mkdir("n" * 255)
            os.chdir("n" * 255)
        os.fchdir(here)
    """),
    "chmod_000_tree": prog("""
        import os
        for top in ("a", "b"):
            os.makedirs(f"{top}/x/y/z")
            for d in (top, f"{top}/x", f"{top}/x/y"):
                open(f"{d}/f", "w").write("x")
                os.chmod(f"{d}/f", 0)
            os.chmod(f"{top}/x/y/z", 0)
            os.chmod(f"{top}/x/y", 0o1000)
            os.chmod(f"{top}/x", 0)
            os.chmod(top, 0o500)
        os.symlink("/tmp/programs", "root")
        os.symlink("..", "up")
        os.mkfifo("fifo")
        os.chmod(".", 0)
    """),
    "many_files": prog("""
        import os
        for k in range(20000):
            open(f"f{k}", "w").close()
        for k in range(1000):
            os.mkdir(f".flat{k}")
            open(f".flat{k}/f", "w").close()
            os.mkdir(f".flat{k}/.flat{k}")
        chunk = b"x" * (1 << 20)
        for k in range(12):  # and most of the scratch space
            with open(f"big{k}", "wb") as f:
                for _ in range(15):
                    f.write(chunk)
    """),
    # The next programs' scratch directories are created in advance, with guessable names: plant in them.
    "plant_in_other_scratch_dirs": prog("""
        import os
        me = os.path.basename(os.getcwd())
        zygote, serial = me[1:].split("-p")
        for z in {zygote, "1", "2", "3"}:
            for n in range(max(1, int(serial) - 20), int(serial) + 40):
                d = f"/tmp/programs/z{z}-p{n}"
                for name in ("out.txt", "planted"):
                    try:
                        open(f"{d}/{name}", "x").write("planted")
                    except OSError:
                        pass
                try:
                    os.mkdir(f"{d}/sub")
                except OSError:
                    pass
    """),
    # Still running when the program ends: creates IPC objects and files until it is killed.
    "orphan_keeps_creating": IPC + prog("""
        import os, time
        if os.fork() == 0:
            k = 0
            while True:
                libc.shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0o666)
                try:
                    open(f"late{k}", "w").close()
                except OSError:
                    pass
                k += 1
        time.sleep(0.2)
    """),
}
# Through the heavy zygote too: it sweeps after its own programs.
HEAVY = {f"heavy_{name}": "import unittest\n" + ATTACKS[name] for name in ("shm_segments", "deep_tree",
                                                                            "plant_in_other_scratch_dirs")}
SLOW = {"shm_segments", "heavy_shm_segments", "deep_tree", "heavy_deep_tree", "many_files"}


@pytest.fixture(scope="module")
def engine():
    cfg = RewardConfig(workers=1, cache_size=0, error_chars=2000, timeout_per_test=10.0)
    with RewardEngine(cfg) as e:
        assert e.features.get("isolation") == "bwrap" and e.features.get("dedicated_uid"), e.features
        yield e


def _run_then_check(engine: RewardEngine, attack: str) -> None:
    attack += "def add(a, b):\n    return 12345\n"
    results = engine.score([attack, HONEST_RIGHT, HONEST_WRONG, HONEST_RIGHT],
                           [ADD_TESTS, HONEST_TESTS, HONEST_TESTS, HONEST_TESTS])
    assert results[0].status is not ProgramStatus.SANDBOX_ERROR, results[0].error
    expected = [[PASS] * 7, [FAIL] * 3 + [PASS] * 4, [PASS] * 7]
    for r, want in zip(results[1:], expected):
        assert (r.status, r.test_status) == (ProgramStatus.OK, want), (r.status, r.error, r.test_errors)
    assert engine.worker_restarts == 0
    log = engine._workers[0].log_tail()
    assert "not removed" not in log, log


@pytest.mark.parametrize("name", [
    *(pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in [*ATTACKS, *HEAVY])])
def test_nothing_stays_for_the_next_program(engine, name):
    _run_then_check(engine, {**ATTACKS, **HEAVY}[name])


def test_ipc_objects_are_created_and_seen(engine):
    """The check above can see what it looks for: a program's own segment is listed while it runs."""
    code = IPC + CHECK + "shmid = libc.shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0o600)\n"
    [r] = engine.score([code], [["assert shm_bytes() == 1 << 20", "assert leftovers()[0][0] == 'shm'"]])
    assert r.test_status == [PASS, PASS], r.test_errors
    _run_then_check(engine, "")


# ------------------------------------------------------------------------------- without namespaces
def test_process_isolation_sweeps_shared_places_and_ipc_on_the_host():
    """Without bubblewrap the programs write to the host's shared temporary directories and IPC namespace:
    what their uid left there is removed after each program (and nothing of anyone else's)."""
    if os.geteuid() != 0:
        pytest.skip("needs a dedicated uid for programs (root)")
    names = [f"/tmp/acecoder-hygiene-{os.getpid()}", f"/dev/shm/acecoder-hygiene-{os.getpid()}",
             f"/var/tmp/acecoder-hygiene-{os.getpid()}"]
    attack = IPC + prog(f"""
        import os
        for path in {names!r}:
            try:
                os.makedirs(path + "/d/e")
                open(path + "/d/e/f", "w").write("x")
                os.chmod(path + "/d", 0)
                open(path + ".file", "w").write("x")
            except OSError:
                pass
        libc.shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0o600)
        libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600)
        def add(a, b):
            return 12345
    """)
    ours = Path(f"/tmp/acecoder-hygiene-ours-{os.getpid()}")
    ours.write_text("not the programs'")
    uid = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # process isolation warns that it is degraded
            with RewardEngine(RewardConfig(workers=1, isolation="process")) as engine:
                uid = engine._workers[0].uid
                results = engine.score([attack, "def add(a, b):\n    return a + b\n"], [ADD_TESTS] * 2)
                assert results[1].test_status == [PASS] * 3, results[1].test_errors
                left = [p for n in names for p in (n, n + ".file") if os.path.lexists(p)]
                assert not left, left
                assert cleanup.ipc_objects(uid) == []
        assert ours.read_text() == "not the programs'"
    finally:  # on the host: leave nothing even when the sweep failed
        ours.unlink()
        for path in [p for n in names for p in (n, n + ".file") if os.path.lexists(p)]:
            cleanup.remove_tree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
        if uid is not None:
            cleanup.remove_ipc(cleanup.ipc_objects(uid))


# ----------------------------------------------------------------------------------- the clean-up itself
def _in_child(work, uid: int | None = None, spare_fds: int | None = None) -> int:
    """Run ``work()`` in a forked process (as ``uid``, with room for only ``spare_fds`` more descriptors than
    it has); its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if spare_fds is not None:
                limit = max(int(fd) for fd in os.listdir("/proc/self/fd")) + 1 + spare_fds
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            if uid is not None:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            work()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _deep(path: Path, levels: int, name: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        deeper = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(fd)


def test_remove_tree_any_depth_with_few_descriptors(tmp_path):
    """shutil.rmtree holds a descriptor per level (and the zygote's RLIMIT_NOFILE is max_open_files)."""
    try:
        (tmp_path / "a").mkdir()
        _deep(tmp_path / "a", 3000, "n" * 255)
        (tmp_path / "b").mkdir()
        _deep(tmp_path / "b", 1500, "d")
        assert _in_child(lambda: cleanup.remove_tree(str(tmp_path / "a")), spare_fds=6) == 0
        assert _in_child(lambda: cleanup.remove_tree(str(tmp_path / "b")), spare_fds=6) == 0
        assert os.listdir(tmp_path) == []
    finally:  # pytest's own clean-up of old temporary directories is shutil.rmtree
        for name in os.listdir(tmp_path):
            cleanup.remove_tree(str(tmp_path / name))


def test_remove_tree_follows_no_link_and_opens_closed_directories(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    for link, target in (("to_outside", outside), ("to_root", "/"), ("a/b/up", "..")):
        os.symlink(target, tree / link)
    os.chmod(tree / "a" / "b", 0)
    os.chmod(tree / "a", 0o1000)
    os.chmod(tree, 0)
    cleanup.remove_tree(str(tree))
    assert os.listdir(tmp_path) == ["outside"] and (outside / "keep").read_text() == "x"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another uid")
def test_remove_tree_as_the_owner_of_a_closed_tree():
    """A zygote sharing the programs' uid has no privilege over a tree they closed, only ownership."""
    base = tempfile.mkdtemp()
    os.chmod(base, 0o777)
    uid = 4_000_123

    def build_and_remove():
        tree = Path(base) / "tree"
        (tree / "x" / "y" / "z").mkdir(parents=True)
        (tree / "x" / "y" / "f").write_text("x")
        for d, mode in (("x/y/z", 0), ("x/y", 0o1500), ("x", 0), ("", 0)):
            os.chmod(tree / d, mode)
        cleanup.remove_tree(str(tree))

    try:
        assert _in_child(build_and_remove, uid=uid) == 0
        assert os.listdir(base) == []
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another uid")
def test_what_cannot_be_removed_is_raised_and_logged_not_hidden():
    base = tempfile.mkdtemp()
    os.chmod(base, 0o777)
    scratch = Path(base) / "scratch"
    (scratch / "root-owned").mkdir(parents=True)
    (scratch / "root-owned" / "f").write_text("x")
    uid = 4_000_124
    os.chown(scratch, uid, uid)
    log = Path(base) / "log"

    def raises():
        with pytest.raises(PermissionError):
            cleanup.remove_tree(str(scratch))

    def sweep():
        with open(log, "w") as sys.stderr:  # the zygote's stderr is its log
            cleanup.Sweeper(None, False, lambda: None).after_program(str(scratch))

    try:
        assert _in_child(raises, uid=uid) == 0
        assert _in_child(sweep, uid=uid) == 0
        assert f"scratch directory {scratch} not removed: [Errno 13]" in log.read_text(), log.read_text()
    finally:
        shutil.rmtree(base)


# ------------------------------------------------------------------------------------------ seccomp list
def test_an_unknown_syscall_name_stops_the_start(tmp_path, monkeypatch):
    """A misspelt name in the filter's list is an error naming it, not a syscall silently left allowed."""
    pytest.importorskip("pyseccomp")
    for name in isolation.SANDBOX_SCRIPTS:
        shutil.copy(SANDBOX / name, tmp_path / name)
    zygote = tmp_path / "zygote.py"
    source = zygote.read_text()
    assert '"ptrace process_vm_readv' in source
    zygote.write_text(source.replace('"ptrace process_vm_readv', '"ptrase ptrace process_vm_readv'))
    monkeypatch.setattr(isolation, "_HERE", tmp_path)
    with pytest.raises(AcecoderError, match="unknown to libseccomp: ptrase"):
        RewardEngine(RewardConfig(workers=1))
