"""The judge, through the real sandbox: verdicts that cannot be bought, checks that cannot stall the engine,
test strings that cannot reach the host.

Each class of the trust-boundary review has a test here (the attack programs of ``test_attacks.py`` cover
what a program can do to the sandbox itself). After each attack the same engine must still score honest
programs exactly, and nothing may exist on the host that an attack aimed at.
"""

from __future__ import annotations

import glob
import os
import textwrap
import time

import pytest

from acecoder_rl.reward import ProgramStatus, RewardConfig, RewardEngine, TestStatus

PWNED = "/tmp/acecoder_judge_pwned"
CONFIG = RewardConfig(workers=2, timeout_per_test=1.0, timeout_per_program=30, memory_mb=1024)

# Every dunder a lying object could use to pass a comparison made anywhere.
ALWAYS_EQUAL = textwrap.dedent("""
    class _Liar:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __lt__(self, other): return True
        def __le__(self, other): return True
        def __gt__(self, other): return True
        def __ge__(self, other): return True
        def __bool__(self): return True
        def __abs__(self): return 0
        def __sub__(self, other): return 0
        __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__
        def __float__(self): return 0.5
        def __int__(self): return 0
        def __index__(self): return 0
        def __hash__(self): return 0
        def __len__(self): return 0
        def __iter__(self): return iter(())
        def __contains__(self, item): return True
        def __getattr__(self, name): return self
        def __call__(self, *a, **k): return self
    """)


@pytest.fixture(scope="module")
def engine():
    with RewardEngine(CONFIG) as e:
        yield e


def _score(engine: RewardEngine, programs: list[str], tests: list[str]) -> list:
    return engine.score([textwrap.dedent(p) for p in programs], [tests] * len(programs))


def _assert_healthy(engine: RewardEngine) -> None:
    """Honest programs, right and wrong, get exact verdicts on every worker afterwards."""
    right = "import time\ndef add(a, b):\n    time.sleep(0.05)\n    return a + b\n"
    wrong = "import time\ndef add(a, b):\n    time.sleep(0.05)\n    return a - b\n"
    tests = ["assert add(1, 2) == 3", "x = add(2, 5)\nassert x == 7", "assert add(-4, 1) == -3"]
    results = engine.score([right, wrong] * 3, [tests] * 6)
    assert [r.test_results for r in results] == [[1, 1, 1], [0, 0, 0]] * 3
    assert all(r.status is ProgramStatus.OK for r in results)
    assert not glob.glob(PWNED + "*")
    assert _judges_settle(engine), "a judge outlived its program"


def _judges_settle(engine: RewardEngine, timeout: float = 3.0) -> bool:
    """Between programs no judge holds a program. Each worker's judge uid runs its zygote (whose parent is
    the programs' zygote) and the spare judges it forked, which hold two sockets each (their zygote's, the
    engine's); a judge given a program holds a third, until the zygote kills it."""
    uids = {w.judge_uid for w in engine._workers}
    deadline = time.monotonic() + timeout
    while True:
        judges: dict[str, tuple[str, int]] = {}  # pid -> (ppid, sockets held)
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if int(fields.get("Uid", "-1").split()[0]) not in uids or fields["State"].split()[0] == "Z":
                    continue
                sockets = sum(
                    os.readlink(f"/proc/{entry}/fd/{fd}").startswith("socket:")
                    for fd in os.listdir(f"/proc/{entry}/fd")
                )
            except (OSError, KeyError, ValueError):
                continue
            judges[entry] = (fields["PPid"].strip(), sockets)
        if not [pid for pid, (ppid, sockets) in judges.items() if ppid in judges and sockets > 2]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# ----------------------------------------------------------------- 1. names the test takes from a module
MODULE_CASES = [
    # (honest program, test): the honest program passes, the same program returning a liar does not
    ("import pytest\ndef f(x):\n    return 0.5000000001", "assert f(1) == pytest.approx(0.5)"),
    ("from pytest import approx\ndef f(x):\n    return 0.5000000001", "assert f(1) == approx(0.5)"),
    ("import math\ndef f(x):\n    return 0.5", "import math as m\nassert m.isclose(f(1), 0.5)"),
    ("import math\ndef f(x):\n    return 0.5", "assert math.isclose(f(1), 0.5)"),
    ("import numpy as np\ndef f(x):\n    return 0.5", "assert np.isclose(f(1), 0.5)"),
    ("def f(x):\n    return 0.5", "import numpy\nassert numpy.isclose(f(1), 0.5)"),
    ("from decimal import Decimal\ndef f(x):\n    return Decimal('0.3')", "assert f(1) == Decimal('0.3')"),
    (
        "from fractions import Fraction\ndef f(x):\n    return Fraction(1, 3)",
        "from fractions import Fraction; assert f(1) == Fraction(1, 3)",
    ),
    (
        "from collections import OrderedDict\ndef f(x):\n    return OrderedDict([('a', 1), ('b', 2)])",
        "assert f(1) == OrderedDict([('a', 1), ('b', 2)])",
    ),
    (
        "import collections\ndef f(x):\n    return collections.Counter('abca')",
        "assert f(1) == collections.Counter({'a': 2, 'b': 1, 'c': 1})",
    ),
]


@pytest.mark.parametrize("honest,test", MODULE_CASES)
def test_expected_values_from_modules_are_built_by_the_judge(engine, honest, test):
    imports = "\n".join(line for line in honest.splitlines() if "import" in line)
    liar = imports + "\n" + ALWAYS_EQUAL + "\ndef f(x):\n    return _Liar()\n"
    good, bad = _score(engine, [honest, liar], [test])
    assert good.test_status == [TestStatus.PASS], good.test_errors
    assert bad.test_results == [0], bad.test_errors
    _assert_healthy(engine)


# ------------------------------------------------------------------------ 2. tests that are not one assert
WHOLE_TESTS = [
    "x = add(1, 2)\nassert x == 3",
    "assert add(1, 2) == 3; assert add(2, 2) == 4",
    "for a in range(3):\n    assert add(a, 1) == a + 1",
    "for k in range(3):\n    assert add(k, 1) == k + 1",  # `k` is also the probe's own first parameter
    "def helper(a):\n    return add(a, a)\nassert helper(2) == 4",
    "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\ncheck(add)",
    "results = [add(i, i) for i in range(4)]\nassert results == [0, 2, 4, 6]",
    "try:\n    add(1, 2)\nexcept Exception:\n    raise AssertionError\nassert add(5, 5) == 10",
]
HARNESS_PATCH = """
import sys
def add(a, b):
    return 12345
for mod in list(sys.modules.values()):
    for name in ("Harness", "Evaluator", "ProgramJudge"):
        cls = getattr(mod, name, None)
        if isinstance(cls, type):
            for attr in ("handle", "serve", "run", "batch", "_value"):
                if hasattr(cls, attr):
                    setattr(cls, attr, lambda self, *a, **k: {"ok": True, "v": ["b", 1]})
"""


@pytest.mark.parametrize("test", WHOLE_TESTS)
def test_whole_test_sources_are_judged_outside_the_child(engine, test):
    honest = "def add(a, b):\n    return a + b\n"
    wrong = "def add(a, b):\n    return 12345\n"
    good, bad, patched = _score(engine, [honest, wrong, HARNESS_PATCH], [test])
    assert good.test_status == [TestStatus.PASS], good.test_errors
    assert bad.test_results == [0] and patched.test_results == [0], (bad.test_errors, patched.test_errors)
    _assert_healthy(engine)


def test_statement_on_a_program_object_runs_in_the_child(engine):
    honest = "def f(x):\n    return f.scale * x\nf.scale = 1\n"
    [result] = _score(engine, [honest], ["f.scale = 3\nassert f(2) == 6"])
    assert result.test_status == [TestStatus.PASS], result.test_errors


# ------------------------------------------------------------- 3. what crosses the boundary keeps meaning
BOUNDARY_CASES = [
    # (program that must fail, honest program that must pass, test)
    (
        "from collections import OrderedDict\ndef f(x):\n    return OrderedDict([('b', 2), ('a', 1)])",
        "from collections import OrderedDict\ndef f(x):\n    return OrderedDict([('a', 1), ('b', 2)])",
        "assert f(1) == OrderedDict([('a', 1), ('b', 2)])",
    ),
    (
        "class L(list):\n    pass\ndef f(x):\n    return L([x])",
        "def f(x):\n    return [x]",
        "assert type(f(1)) == list",
    ),
    ("def f(l):\n    return l", "def f(l):\n    return list(l)", "assert (l := [1, 2]) is not f(l)"),
    ("def f(l):\n    l.append(9)", "def f(l):\n    return None", "l = [1, 2]\nf(l)\nassert l == [1, 2]"),
    (
        "def f(l):\n    return sorted(l)",
        "def f(l):\n    l.sort()",
        "l = [3, 1, 2]\nf(l)\nassert l == [1, 2, 3]",
    ),
    (
        "def make_adder(n):\n    return 5",
        "def make_adder(n):\n    return lambda x: x + n",
        "assert callable(make_adder(1))",
    ),
    (
        "def f(d):\n    d['k'] = 1\n    return d",
        "def f(d):\n    return dict(d, k=1)",
        "d = {}\nassert f(d) == {'k': 1} and d == {}",
    ),
]


@pytest.mark.parametrize("cheat,honest,test", BOUNDARY_CASES)
def test_types_order_identity_and_mutation_cross_the_boundary(engine, cheat, honest, test):
    bad, good = _score(engine, [cheat, honest], [test])
    assert good.test_status == [TestStatus.PASS], good.test_errors
    assert bad.test_results == [0], bad.test_errors


# ------------------------------------------------------------------------------- 4. checks past the budget
STALLS = [
    ("def f(x):\n    return range(10**18)", "assert sum(f(1)) == 6"),
    ("def f(x):\n    return range(10**10)", "assert len(set(f(1))) == 3"),
    ("def f(x):\n    return [k * (2**61 - 1) for k in range(100000)]", "assert len(set(f(1))) == 3"),
    ("BIG = (1 << 8_000_000) - 1\ndef f(x):\n    return BIG - x", "assert f(1) * f(2) * f(3) == 3"),
    ("def f(x):\n    return 10 ** 7", "import math\nassert math.factorial(f(1)) == 3"),
    ("def f(x):\n    return 'a' * 40", "import re\nassert re.fullmatch(r'(a+)+b', f(1))"),
    ("def f(x):\n    return 1", "x = f(1)\nwhile x:\n    pass"),
    ("def f(x):\n    return 10**8", "assert [0] * f(1) * 100 == []"),
]


def test_no_check_holds_the_engine_past_its_budget(engine):
    """Each stall would hold a check for minutes (or exhaust memory); it costs one test's budget, and the
    honest programs of the same batch finish on time on the other worker."""
    honest = "def f(x):\n    return x\n"
    programs = [p for p, _ in STALLS] + [honest] * 20
    tests = [[t] for _, t in STALLS] + [["assert f(2) == 2"]] * 20
    started = time.monotonic()
    results = engine.score(programs, tests)
    elapsed = time.monotonic() - started
    for (program, test), result in zip(STALLS, results):
        assert result.test_status == [TestStatus.ERROR], (test, result.test_errors)
        assert "check too expensive" in result.test_errors[0], (test, result.test_errors)
    assert all(r.test_status == [TestStatus.PASS] for r in results[len(STALLS) :])
    assert all(r.duration_s < 1.0 for r in results[len(STALLS) :])
    # 8 stalls of at most (1 s + 1 s grace) each, spread over 2 workers, plus the honest programs
    assert elapsed < len(STALLS) * 2.5, elapsed
    _assert_healthy(engine)


def test_a_stalled_check_costs_only_its_own_test(engine):
    program = "def f(x):\n    return range(10**18) if x == 0 else x\n"
    [result] = _score(engine, [program], ["assert f(1) == 1", "assert sum(f(0)) == 0", "assert f(2) == 2"])
    assert result.test_status == [TestStatus.PASS, TestStatus.ERROR, TestStatus.PASS], result.test_errors


# ------------------------------------------------------------------------- 5. test strings attack the host
HOST_ATTACKS = [
    # each test also holds for the honest program, so only the attack decides what happens
    f"assert add(1, 2) == 3 and [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "
    f"'_wrap_close'][0].__init__.__globals__['system']('touch {PWNED}1') is not None",
    f"assert add(1, 2) == 3 and [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "
    f"'catch_warnings'][0]()._module.__builtins__['__import__']('os').system('touch {PWNED}2') >= 0",
    f"g = (lambda: 0).__globals__\nassert add(1, 2) == 3\ng['__builtins__']['__import__']('os').system('touch {PWNED}3')",
    f"gen = (x for x in [1])\nassert add(1, 2) == 3\ngen.gi_frame.f_globals['__builtins__']['open']('{PWNED}4', 'w')",
    f"import collections\nassert add(1, 2) == 3\ncollections._sys.modules['os'].system('touch {PWNED}5')",
    f"import statistics\nassert add(1, 2) == 3\nstatistics.sys.modules['os'].system('touch {PWNED}6')",
    f"assert add(1, 2) == 3\ndatetime.sys.modules['os'].system('touch {PWNED}7')",
    "import collections\nos = collections._sys.modules['os']\nos.fork()\nassert add(1, 2) == 3",
    f"import collections\nos = collections._sys.modules['os']\nfd = os.open('{PWNED}8', os.O_CREAT | os.O_WRONLY)\n"
    f"os.write(fd, b'x')\nassert add(1, 2) == 3",
    "import collections\nos = collections._sys.modules['os']\nos.kill(os.getppid(), 9)\nassert add(1, 2) == 3",
    "import collections\ns = collections._sys.modules['socket']\nassert add(1, 2) == 3\n"
    "s.create_connection(('127.0.0.1', 1))",
]


@pytest.mark.parametrize("test", HOST_ATTACKS)
def test_a_test_string_gets_no_more_rights_than_a_program(engine, test):
    for path in glob.glob(PWNED + "*"):
        os.unlink(path)
    honest = "import datetime\ndef add(a, b):\n    return a + b\n"
    engine.score([honest], [[test]])
    time.sleep(0.1)
    assert not glob.glob(PWNED + "*"), "a test string wrote a file on the host"
    _assert_healthy(engine)


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_READS = [
    # each passes only if the judge could read the host's files
    f"import collections\nos = collections._sys.modules['os']\nassert add(1, 2) == 3 and os.path.exists('{REPO}')",
    f"import collections\nos = collections._sys.modules['os']\nfd = os.open('{REPO}/README.md', os.O_RDONLY)\n"
    "assert add(1, 2) == 3",
    "import collections\nos = collections._sys.modules['os']\nassert add(1, 2) == 3 and len([p for p in os.listdir('/proc') if p.isdigit()]) > 40",
    "import collections\nos = collections._sys.modules['os']\nassert add(1, 2) == 3 and os.getuid() == 0",
]


@pytest.mark.parametrize("test", HOST_READS)
def test_a_test_string_cannot_read_the_host(engine, test):
    honest = "def add(a, b):\n    return a + b\n"
    [result] = engine.score([honest], [[test]])
    assert result.test_results == [0], "the judge saw the host"
    _assert_healthy(engine)


def test_a_hostile_test_of_one_row_cannot_change_another_rows_verdicts(engine):
    poison = (
        "import math\nmath.pi = 3\n(lambda: 0).__globals__['__builtins__']['len'] = lambda x: 0\nassert True"
    )
    program = "import math\ndef f():\n    return 3.141592653589793\n"
    results = engine.score([program] * 6, [[poison]] * 3 + [["assert f() == math.pi and len([1]) == 1"]] * 3)
    assert [r.test_results for r in results] == [[1]] * 6


ALIASED = "import numpy as np\nimport math as m\ndef f(x):\n    return x\n"


def test_a_literal_check_the_program_turns_into_test_code_is_not_run_in_the_judge_zygote(engine):
    """`assert np.sum(f(x)) == 3` compares one program expression with a literal, so the judge zygote judges
    the row itself; the program's `import numpy as np` makes `np.sum` the judge's own numpy, so the check is
    test code, and a judge forked for the program runs it. Had the zygote run it, the first row's test
    would have changed the numpy of every later judge (the second row's `np.poison` would exist)."""
    tests = [
        ["assert f(1) == 1", "assert np.__dict__.setdefault('poison', 7) == 7", "assert np.sum(f([1, 2])) == 3"],
        ["assert f(1) == 1", "assert np.poison == 7", "assert m.sqrt(f(4)) == 2.0"],
    ]
    for _ in range(2):  # each row on each worker
        results = engine.score([ALIASED] * 4, tests * 2)
        assert [r.test_results for r in results] == [[1, 1, 1], [1, 0, 1]] * 2, [r.test_errors for r in results]
        assert "AttributeError" in results[1].test_errors[1]
    _assert_healthy(engine)


def test_a_stalled_check_the_program_turns_into_test_code_costs_only_its_own_test(engine):
    started = time.monotonic()
    [result] = _score(engine, [ALIASED], ["assert f(1) == 1", "assert m.factorial(f(10**8)) == 1", "assert f(2) == 2"])
    assert result.test_status == [TestStatus.PASS, TestStatus.ERROR, TestStatus.PASS], result.test_errors
    assert "check too expensive" in result.test_errors[1]
    assert time.monotonic() - started < 5.0
    _assert_healthy(engine)


DATA_CHECKS = [
    "assert math.isclose(f(), 0.5, rel_tol=1e-6)",
    "assert math.isclose(0.5, f(), abs_tol=0.1)",
    "assert abs(f() - 0.5) < 1e-6",
    "assert abs(0.5 - f()) <= 1e-6",
    "assert set(f()) == set([1, 2])",
    "assert frozenset(f()) != frozenset({1, 2})",
    "assert tuple(f()) == tuple([1, 2])",
    "assert sorted(f()) == [1, 2]",
    "assert list(f()) == [1, 2]",
    "assert len(f()) == 2",
    "assert f() == (-2+2.5e-16j)",
    "assert 2 in set(f())",
]
DATA_ANSWERS = [
    "0.5", "0.5000000001", "0.51", "'x'", "None", "[2, 1]", "{1, 2}", "(1, 2)", "[[1]]", "float('nan')",
    "decimal.Decimal('0.5')", "fractions.Fraction(1, 2)", "numpy.float64(0.5)", "numpy.array([1, 2])",
    "_Liar()", "L([1, 2])", "(x for x in [1, 2])", "complex(-2, 2.5e-16)", "{1: 0, 2: 0}",
]


@pytest.mark.parametrize("strict", [True, False])
def test_checks_planned_as_data_give_the_verdicts_of_the_compiled_test(strict):
    """`math.isclose(f(x), 0.5)`, `abs(f(x) - y) < tol`, `set(f(x)) == set(...)`: the judge zygote makes
    these checks on the decoded answer without compiling the test; `pass` before a test makes it a whole
    source, which a judge compiles and runs. Both must give the same verdict and the same error, for plain
    answers, exact types, numpy, the program's own objects, and a program that never imported `math`."""
    preamble = "import decimal, fractions, numpy\n" + ALWAYS_EQUAL + "\nclass L(list):\n    pass\n"
    programs, tests = [], []
    for answer in DATA_ANSWERS:
        for imports in ("import math\n", ""):
            program = imports + preamble + f"def f():\n    return {answer}\n"
            programs.append(program)
            tests.append(DATA_CHECKS + ["pass\n" + t for t in DATA_CHECKS])
    config = RewardConfig(workers=2, timeout_per_test=1.0, timeout_per_program=30, memory_mb=1024, strict=strict)
    with RewardEngine(config) as engine:
        results = engine.score(programs, tests)
    n = len(DATA_CHECKS)
    verdicts = set()
    for program, result in zip(programs, results):
        assert result.status is ProgramStatus.OK, (program, result.error)
        data = list(zip(result.test_status[:n], result.test_errors[:n]))
        compiled = list(zip(result.test_status[n:], result.test_errors[n:]))
        for test, a, b in zip(DATA_CHECKS, data, compiled):
            assert a == b, (program.splitlines()[-1], test, a, b)
            verdicts.add(a[0])
    assert verdicts == {TestStatus.PASS, TestStatus.FAIL, TestStatus.ERROR}


# --------------------------------------------------------------------------------------------- 6. shapes
def test_a_deep_expression_refuses_the_row(engine):
    deep = "assert f(1) == " + "-" * 2000 + "1"
    [result] = _score(engine, ["def f(x):\n    return 1\n"], [deep, "assert f(1) == 1"])
    assert result.status is ProgramStatus.INVALID_TESTS and result.test_results == [0, 0]
    assert "nested" in result.error
    _assert_healthy(engine)


def test_a_shallow_expression_under_the_limit_is_judged_as_python_would(engine):
    test = "assert f(1) == " + "-" * 40 + "1"
    [result] = _score(engine, ["def f(x):\n    return 1\n"], [test])
    assert result.test_status == [TestStatus.PASS]


def test_rows_past_the_size_limits_are_refused_whole():
    config = RewardConfig(workers=1, max_tests=50, max_test_chars=2000)
    program = "def f(x):\n    return x\n"
    with RewardEngine(config) as e:
        many, huge, fine = e.score(
            [program] * 3,
            [["assert f(1) == 1"] * 51, ["assert f([" + "1," * 2000 + "]) == 1"], ["assert f(1) == 1"] * 50],
        )
    assert many.status is huge.status is ProgramStatus.INVALID_TESTS
    assert many.pass_rate == huge.pass_rate == 0.0 and "limit" in many.error and "limit" in huge.error
    assert fine.status is ProgramStatus.OK and fine.pass_rate == 1.0


def test_a_million_copies_of_a_test_or_a_million_element_literal_refuse_the_row(engine):
    program = "def f(x):\n    return 1\n"
    copies, literal = engine.score(
        [program] * 2, [["assert f(1) == 1"] * 1_000_000, ["assert f(1) in [" + "1, " * 1_000_000 + "]"]]
    )
    assert copies.status is literal.status is ProgramStatus.INVALID_TESTS
    assert copies.pass_rate == literal.pass_rate == 0.0
    _assert_healthy(engine)


def test_a_test_that_does_not_parse_fails_alone(engine):
    [result] = _score(
        engine, ["def f(x):\n    return x\n"], ["assert f(1) == 1", "assert f(", "assert f(2) == 2"]
    )
    assert result.test_status == [TestStatus.PASS, TestStatus.ERROR, TestStatus.PASS]
    assert result.status is ProgramStatus.OK


def test_a_redefined_builtin_is_the_function_under_test(engine):
    """MBPP's `def sum(a, b)` tested by `assert sum(10, 15) == 25`, while `abs(f(x) - y) < tol` keeps the
    real abs."""
    program = "def sum(a, b):\n    return a + b\ndef abs(x):\n    return 0\ndef f(x):\n    return x\n"
    [result] = _score(engine, [program], ["assert sum(10, 15) == 25", "assert abs(f(3) - 1) < 1"])
    assert result.test_status == [TestStatus.PASS, TestStatus.FAIL]


def test_program_defined_expected_values_are_refused_unless_strict_is_off():
    program = textwrap.dedent("""
        from dataclasses import dataclass
        @dataclass
        class Point:
            x: int
            y: int
        def f(x):
            return Point(x, 2)
    """)
    tests = ["assert f(1) == Point(1, 2)", "assert f(1) != Point(2, 2)"]
    with (
        RewardEngine(RewardConfig(workers=1, strict=False)) as lenient,
        RewardEngine(RewardConfig(workers=1)) as strict,
    ):
        [plain] = lenient.score([program], [tests])
        [refused] = strict.score([program], [tests])
    assert plain.test_results == [1, 1] and plain.fallback_tests == 2
    assert refused.test_results == [0, 0] and all("strict" in e for e in refused.test_errors)
