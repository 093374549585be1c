"""Statuses, reward modes, caching, async, start/close: through the real sandbox."""
import asyncio
import os
import re
import time
import warnings

import pytest

from acecoder_rl.errors import AcecoderError
from acecoder_rl.reward import ProgramStatus, RewardConfig, RewardEngine, TestStatus
from acecoder_rl.reward.sandbox import isolation

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(-1, 1) == 0"]
GOOD = "def add(a, b):\n    return a + b\n"
HALF = "def add(a, b):\n    return a + b if a > 0 else 99\n"


@pytest.fixture(scope="module", params=["bwrap", "process"])
def engine(request):
    """Every behaviour below holds with bubblewrap namespaces and in the degraded process isolation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # process isolation warns that it is degraded
        cfg = RewardConfig(workers=2, timeout_per_test=1.0, memory_mb=512, isolation=request.param)
        with RewardEngine(cfg) as e:
            assert e.features["isolation"] == request.param
            yield e


def score1(engine, completion, tests=ADD_TESTS):
    [result] = engine.score([completion], [tests])
    return result


def test_pass_fail_and_partial(engine):
    good, bad, half = engine.score([GOOD, "def add(a, b):\n    return 99", HALF], [ADD_TESTS] * 3)
    assert (good.status, good.test_results, good.reward, good.score) == (ProgramStatus.OK, [1, 1, 1], 1.0, 1.0)
    assert bad.test_results == [0, 0, 0] and bad.test_status[0] is TestStatus.FAIL
    assert half.test_results == [1, 1, 0] and half.pass_rate == pytest.approx(2 / 3)


def test_statuses(engine):
    no_code = score1(engine, "")
    assert no_code.status is ProgramStatus.NO_CODE and no_code.test_status == [TestStatus.NOT_RUN] * 3
    syntax = score1(engine, "def add(a, b)\n    return a + b")
    assert syntax.status is ProgramStatus.SYNTAX_ERROR and syntax.test_results == [0, 0, 0]
    runtime = score1(engine, "raise ValueError('boom')\ndef add(a, b): return a + b")
    assert runtime.status is ProgramStatus.RUNTIME_ERROR and "boom" in runtime.error
    timeout = score1(engine, "def add(a, b):\n    while a == 1: pass\n    return a + b")
    assert timeout.status is ProgramStatus.TIMEOUT
    assert timeout.test_status == [TestStatus.TIMEOUT, TestStatus.PASS, TestStatus.PASS]  # the rest still ran
    crashed = score1(engine, "import os\ndef add(a, b):\n    if a == 2: os._exit(3)\n    return a + b")
    assert crashed.status is ProgramStatus.CRASHED and crashed.test_results == [1, 0, 1]
    memory = score1(engine, "x = bytearray(10 ** 10)\ndef add(a, b): return a + b")
    assert memory.status is ProgramStatus.MEMORY and memory.test_results == [0, 0, 0]
    error = score1(engine, "def add(a, b):\n    return [][a]")
    assert error.test_status == [TestStatus.ERROR] * 3 and "IndexError" in error.test_errors[0]


def test_program_state_carries_over_between_tests(engine):
    counter = "calls = []\ndef add(a, b):\n    calls.append(1)\n    return len(calls)"
    assert score1(engine, counter, ["assert add(0, 0) == 1", "assert add(0, 0) == 2"]).test_results == [1, 1]


def test_main_block_does_not_run(engine):
    code = GOOD + "if __name__ == '__main__':\n    raise SystemExit(1)\n"
    assert score1(engine, code).test_results == [1, 1, 1]


def test_stdout_noise_threads_and_stdlib_are_fine(engine):
    code = ("import threading, collections, itertools\nprint('noise' * 1000)\n"
            "def add(a, b):\n    out = []\n    t = threading.Thread(target=lambda: out.append(a + b))\n"
            "    t.start(); t.join()\n    return out[0]\n")
    assert score1(engine, code).test_results == [1, 1, 1]


def test_pytest_is_importable_for_programs(engine):
    assert score1(engine, "import pytest\n" + GOOD).test_results == [1, 1, 1]


def test_custom_objects_follow_python_semantics_safely(engine):
    tests = ["assert Point(1, 2) == Point(1, 2)", "assert Point(1, 2).x == 1", "assert make() is not None",
             "assert str(Point(3, 4)) == 'P(3, 4)'", "assert list(gen(3)) == [0, 1, 2]"]
    code = ("from dataclasses import dataclass\n@dataclass\nclass Point:\n    x: int\n    y: int\n"
            "    def __str__(self): return f'P({self.x}, {self.y})'\n"
            "def make(): return object()\ndef gen(n):\n    yield from range(n)\n")
    result = score1(engine, code, tests)
    assert result.test_results == [0, 1, 1, 1, 1]  # strict (the default): dataclass == dataclass is refused
    assert "strict" in result.test_errors[0]
    with RewardEngine(RewardConfig(workers=1, strict=False)) as lenient:
        [result] = lenient.score([code], [tests])
    assert result.test_results == [1, 1, 1, 1, 1]
    assert result.fallback_tests == 1  # compared inside the child by the program's own __eq__, and counted


def test_binary_mode_bonus_and_format_penalty():
    cfg = RewardConfig(workers=1, mode="binary", all_pass_bonus=0.5, format_penalty=0.1, stop_on_first_failure=True)
    with RewardEngine(cfg) as e:
        good, half, none = e.score([GOOD, "def add(a, b):\n    return 0 if a == 1 else a + b", "no code here"],
                                   [ADD_TESTS] * 3)
    assert (good.score, good.reward) == (1.0, 1.5)
    assert (half.score, half.reward) == (0.0, 0.0)
    assert half.test_status == [TestStatus.FAIL, TestStatus.NOT_RUN, TestStatus.NOT_RUN]
    # bare prose holds no Python statement: no code, so the format penalty applies
    assert none.status is ProgramStatus.NO_CODE and (none.score, none.reward) == (0.0, -0.1)


def test_format_penalty_for_no_code():
    with RewardEngine(RewardConfig(workers=1, format_penalty=0.2)) as e:
        [r] = e.score(["<think>I will write it later"], [ADD_TESTS])
    assert r.status is ProgramStatus.NO_CODE and r.reward == -0.2 and r.score == 0.0


def test_identical_programs_are_scored_once(engine):
    unique = "def add(a, b):\n    return a + b  # cache-test\n"
    before = engine.stats["executed"]
    results = engine.score([unique] * 5, [ADD_TESTS] * 5)
    assert all(r.test_results == [1, 1, 1] for r in results)
    assert engine.stats["executed"] - before == 1
    [again] = engine.score([unique], [ADD_TESTS])
    assert again.cached and engine.stats["executed"] - before == 1


def test_async_variant(engine):
    results = asyncio.run(engine.ascore([GOOD, HALF], [ADD_TESTS, ADD_TESTS]))
    assert [r.test_results for r in results] == [[1, 1, 1], [1, 1, 0]]


@pytest.mark.parametrize("completions,tests,message", [
    (["x"], [], "1 completions but 0"),
    ([3], [ADD_TESTS], "completions[0] must be a str"),
    (["x"], ["assert f()"], "test_cases[0] is a string but not JSON tests"),
    (["x"], [[]], "test_cases[0] is empty"),
])
def test_bad_input_is_a_clear_error(engine, completions, tests, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        engine.score(completions, tests)


def test_config_validation():
    with pytest.raises(ValueError, match="mode"):
        RewardConfig(mode="fuzzy")
    with pytest.raises(ValueError, match="unknown reward config key"):
        RewardConfig.from_dict({"mode": "binary", "timeout": 3})
    with pytest.raises(ValueError, match="stop_on_first_failure"):
        RewardConfig(stop_on_first_failure=True)


def _uid_of(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def test_start_is_fast_and_close_leaves_nothing():
    engine = RewardEngine(RewardConfig(workers=2))
    assert engine.start_seconds < 5  # the benchmark reports the real figure; this only catches a hang
    staging = engine._spec.cleanup_dirs[0]  # this engine's copy of the sandbox scripts
    uids = {w.uid for w in engine._workers}
    sandboxes = {str(w.proc.pid) for w in engine._workers}  # bwrap (or the zygote itself)
    assert all(os.path.exists(f"/proc/{p}") for p in sandboxes)
    assert engine.score([GOOD], [ADD_TESTS])[0].test_results == [1, 1, 1]
    assert all(w.heavy is None for w in engine._workers)  # started only when a program needs it
    assert engine.score(["import pytest\n" + GOOD], [ADD_TESTS])[0].test_results == [1, 1, 1]
    assert sum(w.heavy is not None for w in engine._workers) == 1
    engine.close()
    deadline = time.time() + 5
    while time.time() < deadline and (any(os.path.exists(f"/proc/{p}") for p in sandboxes) or
                                      any(_uid_of(p) in uids for p in filter(str.isdigit, os.listdir("/proc")))):
        time.sleep(0.05)
    assert [p for p in sandboxes if os.path.exists(f"/proc/{p}")] == []
    assert [p for p in filter(str.isdigit, os.listdir("/proc")) if _uid_of(p) in uids] == []
    assert not os.path.exists(staging)
    with pytest.raises(RuntimeError, match="closed"):
        engine.score([GOOD], [ADD_TESTS])


def test_test_side_imports(engine):
    code = "def area(r):\n    return 3.14159 * r * r\n"
    tests = ["import math; assert math.isclose(area(1), 3.14159)", "from math import pi; assert abs(area(1) - pi) < 1e-3"]
    assert score1(engine, code, tests).test_results == [1, 1]


def test_batched_probes_keep_call_order_opaque_stops_and_timeouts(engine):
    """Runs of one-probe tests are fetched in one request; the program must see exactly the calls of
    sequential evaluation, an object answer must be handled before the next test runs, and a hang inside
    a batch costs only its own test."""
    code = ("log = []\nclass Box:\n    def __init__(self, v): self.v = v\n"
            "def step(x):\n    log.append(x)\n    if x == 3: return Box(len(log))\n"
            "    if x == 5:\n        while True: pass\n    return len(log)\n")
    tests = ["assert step(1) == 1", "assert step(2) == 2", "assert step(3).v == 3", "assert step(4) == 4",
             "assert step(5) == 5", "assert step(6) == 1"]  # after the timeout a fresh process starts over
    result = score1(engine, code, tests)
    assert result.test_results == [1, 1, 1, 1, 0, 1]
    assert result.test_status[4] is TestStatus.TIMEOUT


def test_first_batch_rides_with_the_program_unless_it_redefines_a_checked_builtin(engine):
    """The first run of one-probe tests is sent with the program; a program that redefines a builtin the
    tests use changes how they split, so then the child must not run that batch (the parent re-plans)."""
    tests = ["assert f(1) == [1, 1]", "assert f(2) == [2, 2]", "assert sum(f(3)) == 6", "assert sum(10, 4) == 6"]
    plain = "def f(x):\n    return [x, x]\n"
    shadowing = "def sum(a, b=0):\n    return a - b\n" + plain
    assert score1(engine, plain, tests).test_results == [1, 1, 1, 0]
    # sum(f(3)) keeps the real sum (it wraps the program's answer); sum(10, 4) is the program's own sum
    assert score1(engine, shadowing, tests).test_results == [1, 1, 1, 1]


def test_blank_test_runs_as_plain_python_would(engine):
    """A blank or comment-only test string checks nothing (``exec`` of it succeeds), as in AceCoder's
    harness: it passes for every program alike, and never breaks the engine."""
    result = score1(engine, GOOD, [ADD_TESTS[0], "", "# nothing to check"])
    assert result.status is ProgramStatus.OK and result.test_results == [1, 1, 1]


def test_without_working_bubblewrap_auto_degrades_loudly_and_bwrap_refuses(tmp_path, monkeypatch):
    """A bubblewrap that cannot create namespaces (an unprivileged container): ``auto`` falls back to plain
    processes with a warning naming why, ``bwrap`` refuses to start."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(isolation, "_verdicts", {})
    for attempt in ("first: the workers' start fails, then a trial names why", "later: known at once"):
        with warnings.catch_warnings(record=True) as caught:  # (the one warning may name more than this)
            warnings.simplefilter("always", RuntimeWarning)
            engine = RewardEngine(RewardConfig(workers=1, isolation="auto"))
        assert any(re.search("no namespaces .*No permissions to create new namespace", str(w.message))
                   for w in caught), attempt
        with engine:
            assert engine.features["isolation"] == "process", attempt
            assert score1(engine, GOOD, ADD_TESTS).test_results == [1, 1, 1]
    with pytest.raises(AcecoderError, match="isolation='bwrap'.*No permissions to create new namespace"):
        RewardEngine(RewardConfig(workers=1, isolation="bwrap"))
    monkeypatch.setattr(isolation, "_verdicts", {})
    with pytest.raises(AcecoderError, match="isolation='bwrap'.*No permissions to create new namespace"):
        RewardEngine(RewardConfig(workers=1, isolation="bwrap"))  # found out by trying, same answer


def test_working_bubblewrap_needs_no_trial_run(monkeypatch):
    """The workers' own start shows that bubblewrap works: no extra interpreter start before them."""
    def no_trial(python):
        raise AssertionError("bubblewrap was tried before starting the workers")

    monkeypatch.setattr(isolation, "_verdicts", {})
    monkeypatch.setattr(isolation, "_bwrap_problem", no_trial)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # and nothing to warn about
        with RewardEngine(RewardConfig(workers=1, isolation="auto")) as engine:
            assert engine.features["isolation"] == "bwrap"
            assert score1(engine, GOOD, ADD_TESTS).test_results == [1, 1, 1]


def test_imap_streams_in_input_order(engine):
    codes = [f"def add(a, b):\n    return a + b + {k % 2}\n" for k in range(9)]
    results = list(engine.imap(((c, ADD_TESTS) for c in codes), window=2))
    assert [r.test_results for r in results] == [[1, 1, 1] if k % 2 == 0 else [0, 0, 0] for k in range(9)]


def test_unexpected_worker_error_becomes_sandbox_error_not_a_hang(monkeypatch):
    """A bug of ours in one program's run must not kill the worker thread (its futures would never resolve)."""
    from acecoder_rl.reward import runner

    with RewardEngine(RewardConfig(workers=1)) as e:
        real_run = runner.ProgramRun.run
        calls = []

        def broken_once(self):
            calls.append(1)
            if len(calls) <= 2:  # the first attempt and its retry
                raise RuntimeError("injected")
            return real_run(self)

        monkeypatch.setattr(runner.ProgramRun, "run", broken_once)
        [bad] = e.score([GOOD], [ADD_TESTS])
        assert bad.status is ProgramStatus.SANDBOX_ERROR and "injected" in bad.error
        [good] = e.score([GOOD + "# again\n"], [ADD_TESTS])  # the same worker thread still serves
        assert good.test_results == [1, 1, 1]


def test_programs_can_use_tempfile_and_home(engine):
    """Temporary files and ~ live in the program's private scratch directory (its working directory)."""
    code = ("import os, tempfile\n"
            "def add(a, b):\n"
            "    with tempfile.NamedTemporaryFile('w+') as t:\n"
            "        t.write(str(a + b)); t.seek(0); value = int(t.read())\n"
            "    with open(os.path.expanduser('~/note'), 'w') as f:\n"
            "        f.write('x')\n"
            "    assert os.path.samefile(tempfile.gettempdir(), os.getcwd())\n"
            "    return value\n")
    assert score1(engine, code).test_results == [1, 1, 1]


def test_programs_importing_large_modules_fork_from_the_heavy_zygote(engine):
    """The lean zygote has not imported the large modules, the heavy one has; a program sees the modules of
    the zygote it came from (and nothing else differs: its scratch directory is still its temporary one).
    Where programs cannot read the installation (see the next test) there is only one zygote, with all."""
    probe = ("def add(a, b):\n"
             "    import sys, tempfile, os\n"
             "    assert os.path.samefile(tempfile.gettempdir(), os.getcwd())\n"
             "    return a + b if ({}'statistics' in sys.modules) else None\n")
    lean_has_it = "statistics" not in engine.features["heavy_modules"]
    assert score1(engine, probe.format("" if lean_has_it else "not ")).test_results == [1, 1, 1]
    assert score1(engine, "import pytest\n" + probe.format("")).test_results == [1, 1, 1]
    assert score1(engine, "import math, statistics as st\n" + probe.format("")).test_results == [1, 1, 1]


def _host_pid(worker, sandbox_pid):
    """The host pid of the process known as ``sandbox_pid`` inside ``worker``'s PID namespace."""
    stack = [worker.proc.pid]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                stack.extend(int(k) for k in f.read().split())
        except (OSError, StopIteration):
            continue
        if int(nspid[-1]) == sandbox_pid and pid != worker.proc.pid:
            return pid
    raise AssertionError(f"no process {sandbox_pid} in worker {worker.slot}'s sandbox")


def test_a_dead_heavy_zygote_costs_one_worker_restart():
    with RewardEngine(RewardConfig(workers=1, isolation="bwrap")) as e:
        heavy = "from unittest import mock\n" + GOOD
        assert e.score([heavy], [ADD_TESTS])[0].test_results == [1, 1, 1]
        os.kill(_host_pid(e._workers[0], e._workers[0].heavy.pid), 9)
        assert e.score([heavy + "# again\n"], [ADD_TESTS])[0].test_results == [1, 1, 1]
        assert e.worker_restarts == 1
        assert e.score([GOOD], [ADD_TESTS])[0].test_results == [1, 1, 1]


def _closed_to_others(path):
    """Is some directory on the way to ``path`` not searchable by other users?"""
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & 0o001:
            return True
    return False


def test_process_isolation_names_an_installation_the_programs_cannot_read():
    """Without bubblewrap, a root engine's programs run as another uid, which cannot reach a Python installed
    under a closed directory (as on this project's machines: root's home). That is named at start, and every
    preimported module then lives in the one zygote that programs are forked from."""
    expected = os.geteuid() == 0 and _closed_to_others(os.__file__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        with RewardEngine(RewardConfig(workers=1, isolation="process")) as e:
            code = "import dataclasses, pytest, fractions\n" + GOOD
            assert e.score([code], [ADD_TESTS])[0].test_results == [1, 1, 1]
            assert bool(e.features["unreadable_paths"]) == expected
            assert (e.features["heavy_modules"] == []) == expected
    named = [w for w in caught if "cannot read" in str(w.message)]
    assert bool(named) == expected
    if expected:
        assert os.path.dirname(os.__file__) in str(named[0].message)


def test_programs_see_only_the_sandbox_environment(engine):
    """Nothing of the engine's environment reaches programs, in either isolation; home and temporary
    directory are the program's own scratch directory."""
    expected = dict(isolation.SANDBOX_ENV, HOME=".", TMPDIR=".")
    code = "import os\ndef env():\n    return dict(os.environ)\n"
    assert score1(engine, code, [f"assert env() == {expected!r}"]).test_results == [1]


def _gone_or_zombie(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[1] == "Z" for line in f if line.startswith("State:"))
    except OSError:
        return True


def test_a_sandbox_that_dies_while_starting_fails_fast_and_leaves_nothing(tmp_path):
    """A bubblewrap SIGKILLed while it sets up the sandbox can leave its inner half blocked for ever, holding
    the zygote's control socket open (seen under the service's worker-kill load test: a 60 s stall and a
    leftover process). Stand-in: a first process that leaves a child holding the socket, then exits. The
    start must fail at once, not after its 60 s time-out, and stopping must take that child down too."""
    from acecoder_rl.reward.sandbox.isolation import LaunchSpec
    from acecoder_rl.reward.sandbox.worker import SandboxWorker, WorkerFailure

    pidfile = tmp_path / "holder.pid"
    spec = LaunchSpec(argv_prefix=["/bin/sh", "-c", 'sleep 600 & echo $! > "$0"; exit 0', str(pidfile)],
                      script_dir=str(tmp_path), scratch_root=str(tmp_path / "scratch"), mode="process",
                      log_dir=str(tmp_path))
    worker = SandboxWorker(spec, 0, {})
    started = time.monotonic()
    with pytest.raises(WorkerFailure, match="did not start"):
        worker.start()
    assert time.monotonic() - started < 10
    holder = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _gone_or_zombie(holder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone_or_zombie(holder), "the process holding the control socket survived the worker's stop"
