"""How a sandbox worker is launched: bubblewrap namespaces when they work here, plain processes otherwise.

With bubblewrap each worker gets its own network namespace (no network at all), PID/IPC/UTS namespaces,
a read-only view of the Python installation and system libraries only (no home directory, no project
files, no datasets: nothing to read expected values from), a size-capped private ``/tmp`` for scratch
space, and dies with the engine. When the engine runs as root, each worker's programs run under a
dedicated uid (see ``zygote.py``). Whatever is missing is named in one warning at start-up.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_SCRIPTS = ("zygote.py", "child.py", "cleanup.py", "protocol.py", "values.py", "planner.py", "judge.py",
                   "judge_zygote.py", "judge_modules.py", "io_tests.py")
_HERE = Path(__file__).resolve().parent
SANDBOX_MOUNT = "/opt/acecoder-sandbox"
SCRATCH_TMPFS_BYTES = 256 * 1024 * 1024

# uids handed to programs: unique per (engine process, worker slot), far above real accounts.
_UID_BASE = 1_000_000
_UID_SLOTS = 256


@dataclass
class LaunchSpec:
    """Everything needed to start one worker's zygote."""

    argv_prefix: list[str]  # the command up to (not including) the zygote's own arguments
    script_dir: str  # where zygote.py is, as seen by the zygote
    scratch_root: str
    mode: str  # "bwrap" or "process"
    log_dir: str  # zygotes' own error logs (outside anything a program can see)
    cleanup_dirs: list[str] = field(default_factory=list)
    python: str = sys.executable  # the interpreter, and the isolation asked for (for fallback_launch)
    isolation: str = "auto"
    degraded: list[str] = field(default_factory=list)  # what is missing, for the engine's start-up warning

    def command(self, ctrl_fd: int, cfg: dict) -> list[str]:
        return [*self.argv_prefix, f"{self.script_dir}/zygote.py", str(ctrl_fd), json.dumps(cfg)]


_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def program_uid() -> int | None:
    """A fresh uid for one worker's programs when we can switch uids (root), else None.

    Unique among live workers of this process (a counter, for several engines in one process) and of other
    processes (the pid is part of it), so ``kill(-1)`` as that uid can never reach another worker.
    """
    if os.geteuid() != 0:
        return None
    with _uid_lock:
        serial = next(_uid_counter)
    return _UID_BASE + (os.getpid() % 4_000_000) * _UID_SLOTS + serial % _UID_SLOTS


def _python_roots(python: str) -> list[str]:
    """Directories the interpreter needs (prefixes and site-packages), outside /usr."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(python)), os.path.dirname(python)}
    paths.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    paths.update(site.getsitepackages())
    roots = []
    for p in sorted({os.path.realpath(p) for p in paths if p}):
        if p.startswith("/usr/") or p == "/usr" or not os.path.isdir(p):
            continue
        if any(p.startswith(r + "/") for r in roots):
            continue
        roots.append(p)
    return roots


def _hidden_paths() -> list[str]:
    """Installed copies of this package (its data holds benchmark tests and solutions): hidden inside."""
    hidden = []
    for sp in {sysconfig.get_paths()["purelib"], *site.getsitepackages()}:
        candidate = os.path.join(sp, "acecoder_rl")
        if os.path.isdir(candidate):
            hidden.append(candidate)
    return hidden


# The whole environment of the sandbox: nothing of the engine's (tokens, paths, cluster addresses) reaches
# programs. LD_BIND_NOW: the zygote resolves every C symbol once at start; lazily bound, each child would
# resolve (and so write, copying the page) the ones it calls first (~12 fewer page faults per program).
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "LD_BIND_NOW": "1"}


def _bwrap_argv(python: str, scripts: str, root: bool) -> list[str]:
    # The path found here: workers start with the sandbox's own PATH, which must not pick another bwrap.
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in SANDBOX_ENV.items():
        argv += ["--setenv", name, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/ssl/certs"):
        argv += ["--ro-bind-try", etc, etc]
    # /tmp first: later mounts may land inside it (a virtualenv under /tmp must stay visible).
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(SCRATCH_TMPFS_BYTES), "--tmpfs", "/tmp"]
    roots = _python_roots(python)
    ancestors = sorted({str(a) for r in roots for a in Path(r).parents if str(a) != "/"})
    for ancestor in ancestors:  # e.g. /root is 0700 on the host: programs run under another uid
        argv += ["--perms", "0755", "--dir", ancestor]
    for root_dir in roots:
        argv += ["--ro-bind", root_dir, root_dir]
    for hidden in _hidden_paths():
        argv += ["--tmpfs", hidden]
    argv += ["--ro-bind", scripts, SANDBOX_MOUNT]
    if root:
        # The zygote keeps only what it needs to hand programs their own uid and clean up after them (run as
        # root, bubblewrap would otherwise keep every capability, CAP_SYS_ADMIN included).
        argv += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
            argv += ["--cap-add", cap]
    return [*argv, "--chdir", "/tmp", python, "-I", "-B"]


def _bwrap_problem(python: str) -> str | None:
    """Try bubblewrap once (start the interpreter inside it): None when it works here, else why not."""
    if shutil.which("bwrap") is None:
        return _NOT_INSTALLED
    with tempfile.TemporaryDirectory(prefix="acecoder-probe-") as scripts:
        argv = [*_bwrap_argv(python, scripts, os.geteuid() == 0), "-c", "pass"]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap failed to start: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {proc.stderr.decode(errors='replace').strip()[:200]}"
    return None


_NOT_INSTALLED = "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
# Interpreter -> why bubblewrap fails with it here (None: it works), once this process knows.
_verdicts: dict[str, str | None] = {}


def note_bwrap_works(python: str) -> None:
    """Workers started under bubblewrap: later engines in this process need no trial either."""
    _verdicts[python] = None


def prepare_launch(python: str, isolation: str) -> LaunchSpec:
    """Choose the isolation and stage the sandbox scripts; what is missing goes in ``spec.degraded``.

    Where bubblewrap is installed and not already known to fail here, this returns bubblewrap's spec without
    a trial run (a whole interpreter start, ~80 ms, before any worker could start): the workers' own start
    is the trial, and :func:`fallback_launch` decides what to do when it fails."""
    scripts = tempfile.mkdtemp(prefix="acecoder-sandbox-")
    for name in SANDBOX_SCRIPTS:
        shutil.copy2(_HERE / name, scripts)
    os.chmod(scripts, 0o755)
    logs = tempfile.mkdtemp(prefix="acecoder-logs-")
    if isolation == "process":
        problem: str | None = "isolation='process' was requested"
    elif shutil.which("bwrap") is None:
        problem = _NOT_INSTALLED
    else:
        problem = _verdicts.get(python)
    if problem is not None:
        return _process_spec(python, isolation, scripts, logs, problem)
    return LaunchSpec(_bwrap_argv(python, scripts, os.geteuid() == 0), SANDBOX_MOUNT, "/tmp/programs",
                      "bwrap", logs, [scripts, logs], python=python, isolation=isolation,
                      degraded=_uid_problems())


def fallback_launch(spec: LaunchSpec) -> LaunchSpec | None:
    """After workers failed to start under ``spec``: is bubblewrap the reason?

    Returns the plain-process spec to start again with (``isolation='auto'``), raises for
    ``isolation='bwrap'``, or returns None when the failure is something else."""
    if spec.mode != "bwrap":
        return None
    if spec.python not in _verdicts:
        _verdicts[spec.python] = _bwrap_problem(spec.python)
    problem = _verdicts[spec.python]
    if problem is None:
        return None
    return _process_spec(spec.python, spec.isolation, spec.cleanup_dirs[0], spec.log_dir, problem)


def _process_spec(python: str, isolation: str, scripts: str, logs: str, problem: str) -> LaunchSpec:
    if isolation == "bwrap":
        shutil.rmtree(scripts, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        from acecoder_rl.errors import AcecoderError

        raise AcecoderError(f"RewardConfig.isolation='bwrap' but {problem}")
    scratch = tempfile.mkdtemp(prefix="acecoder-scratch-")
    os.chmod(scratch, 0o711)
    namespaces = (f"no namespaces ({problem}): programs can read world-readable host files and only seccomp "
                  "blocks the network")
    degraded = [namespaces, *_uid_problems()]
    return LaunchSpec([python, "-I", "-B"], scripts, scratch, "process", logs, [scripts, scratch, logs],
                      python=python, isolation=isolation, degraded=degraded)


def _uid_problems() -> list[str]:
    if os.geteuid() == 0:
        return []
    return ["not running as root: programs share this user's uid (no RLIMIT_NPROC, clean-up by process "
            "group only)"]
