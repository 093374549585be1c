"""stdin/stdout and function-call tests: the label shapes, the comparisons, and verdicts through the real
sandbox, including what a program does to get a verdict it did not earn."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from acecoder_rl.reward import ProgramStatus, RewardConfig, RewardEngine, TestStatus
from acecoder_rl.reward.labels import IOTests, LabelError, parse_tests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "acecoder_rl" / "reward" / "sandbox"))
import io_tests  # noqa: E402  (a sandbox script: top-level imports, as the judge runs it)

STDIN = {"inputs": ["1\n", "3\n", "5\n"], "outputs": ["2\n", "6", "10\n"]}
LCB_CALL = {"inputs": ["[1, 2]\n3", "[]\n0"], "outputs": ["[4, 5]", "[]"], "fn_name": "addAll"}
APPS_CALL = {"inputs": [[[1, 2], 3], [[], 0]], "outputs": [[[4, 5]], [[]]], "fn_name": "addAll"}


# ------------------------------------------------------------------------------------------------ labels
def test_every_accepted_shape_parses_to_the_same_tests():
    stdin = parse_tests(STDIN)
    assert isinstance(stdin, IOTests) and stdin.mode == "stdin" and len(stdin) == 3
    assert parse_tests(json.dumps(STDIN)) == stdin  # a JSON string (OpenRLHF labels, parquet columns)
    lcb_list = [{"input": i, "output": o, "testtype": "stdin"} for i, o in zip(STDIN["inputs"], STDIN["outputs"])]
    assert parse_tests(lcb_list) == stdin
    open_r1 = {"language": "python",
               "test_cases": [{"input": i, "output": o, "type": "stdin_stdout"} for i, o in
                              zip(STDIN["inputs"], STDIN["outputs"])]}
    assert parse_tests(open_r1) == stdin
    call = parse_tests(LCB_CALL)
    assert call.mode == "call" and call.call_shape == "lcb" and call.fn_name == "addAll"
    functional = [{"input": i, "output": o, "testtype": "functional"} for i, o in
                  zip(LCB_CALL["inputs"], LCB_CALL["outputs"])]
    assert parse_tests({"tests": functional, "fn_name": "addAll"}) == call
    apps = parse_tests(APPS_CALL)
    assert apps.call_shape == "apps" and parse_tests(apps.to_json()) == apps
    assert parse_tests(["assert f(1) == 2"]) == ["assert f(1) == 2"]  # asserts: unchanged
    assert parse_tests({**STDIN, "compare": "exact", "abs_tol": 1e-6}).abs_tol == 1e-6


@pytest.mark.parametrize("label, field, words", [
    ({"inputs": ["1"]}, "t", "needs 'inputs' and 'outputs'"),
    ({"inputs": ["1"], "outputs": ["1", "2"]}, "t", "1 inputs but 2 outputs"),
    ({"inputs": [1], "outputs": ["1"]}, "t.inputs[0]", "must be a stdin string"),
    ({"inputs": ["1"], "outputs": ["1"], "fn_name": "not a name"}, "t.fn_name", "Python identifier"),
    ({"inputs": [[1], "2"], "outputs": [1, 2], "fn_name": "f"}, "t.inputs[1]", "list of arguments"),
    ({"inputs": ["1"], "outputs": ["1"], "input": 3}, "t", "unknown key(s) 'input'"),
    ({"inputs": ["1"], "outputs": ["1"], "preamble": "all"}, "t.preamble", "expected one of lcb, none"),
    ({"inputs": ["1"], "outputs": ["1"], "rel_tol": -1}, "t.rel_tol", "finite number >= 0"),
    ({"inputs": [], "outputs": []}, "t", "has no tests"),
    ([{"input": "1", "output": "1", "testtype": "functional"}], "t", "no fn_name"),
    ({"language": "cpp", "test_cases": []}, "t", "only Python"),
    ("{not json", "t", "not JSON tests"),
])
def test_malformed_labels_name_the_field(label, field, words):
    with pytest.raises(LabelError) as info:
        parse_tests(label, "t")
    assert info.value.field == field and words in str(info.value), str(info.value)


# ------------------------------------------------------------------------------------------- comparisons
LCB = ("lcb", 0.0, 0.0)


@pytest.mark.parametrize("got, expected, options, holds", [
    (" 3 \n4\n\n", "3\n4", LCB, True),  # stripped text, stripped lines
    ("3\n\n4", "3\n4", LCB, False),  # a blank line inside is a line
    ("1.0 2", "1 2.00", LCB, True),  # numbers compared as Decimals
    ("1e3", "1000", LCB, True),
    ("YES", "yes", LCB, False),
    ("0.3333", "0.333333", LCB, False),  # LiveCodeBench has no float tolerance...
    ("0.3333", "0.333333", ("lcb", 1e-3, 0.0), True),  # ...a tests object may give one
    ("1000001", "1000000", ("lcb", 0.0, 1e-6), True),
    ("1000002", "1000000", ("lcb", 0.0, 1e-6), False),
    ("nan", "nan", LCB, True), ("nan 1", "nan 2", ("lcb", 1.0, 0.0), False),
    ("3\n", "3", ("exact", 0.0, 0.0), False),
    (None, "3", LCB, False),
])
def test_stdout_comparison_rules(got, expected, options, holds):
    assert io_tests.stdout_matches(got, expected, options) is holds


@pytest.mark.parametrize("answer, expected, shape, holds", [
    ((1, 2), [1, 2], "lcb", True),  # a tuple reads as a list
    ([1, 2], [[1, 2]], "lcb", False),
    ([1, 2], [[1, 2]], "apps", True),  # APPS/TACO: the value or a one-item list of it
    ([(1, 2), (3, 4)], [[[1, 2], [3, 4]]], "apps", True),
    ([(1, 2), 3], [[[1, 2], 3]], "apps", False),
    (1, True, "lcb", True),  # Python's own ==, as their graders
])
def test_return_value_comparison_rules(answer, expected, shape, holds):
    assert io_tests.call_matches(answer, expected, shape) is holds


def test_apps_string_keys_become_ints_as_their_grader_reads_them():
    [plan] = io_tests.plan_io({"format": "call", "inputs": ['[{"1": 2}]'], "outputs": ['{"3": 4}'], "fn_name": "f",
                               "shape": "apps", "preamble": "none"})
    (args, expected), shape = plan.check[1], plan.check[2]
    assert args == [{1: 2}] and expected == [{3: 4}] and shape == "apps"


# ------------------------------------------------------------------------------------------ the sandbox
@pytest.fixture(scope="module")
def engine():
    with RewardEngine(RewardConfig(workers=2, timeout_per_test=1.0, timeout_per_program=20)) as e:
        yield e


STDIN_PROGRAMS = [
    ("n = int(input())\nprint(n * 2)\n", [1, 1, 1]),
    ("import sys\nfor line in sys.stdin:\n    print(int(line) * 2)\n", [1, 1, 1]),  # iteration (LCB: fails)
    ("print(int(open(0).read()) * 2)\n", [1, 1, 1]),  # open(0) (LCB: reads the grader's own stdin)
    ("import sys\nprint(int(sys.stdin.buffer.readline()) * 2)\n", [1, 1, 1]),
    ("import os\nos.write(1, str(int(os.read(0, 99)) * 2).encode())\n", [1, 1, 1]),
    ("n = int(input())\nprint(f'{n * 2:.3f}')\n", [1, 1, 1]),  # 2.000 reads as 2
    ("def main():\n    print(int(input()) * 2)\nif __name__ == '__main__':\n    main()\n", [1, 1, 1]),
    ("import threading\ndef main():\n    print(int(input()) * 2)\nthreading.Thread(target=main).start()\n", [1, 1, 1]),
    ("print(max(accumulate([int(input())])) * 2)\n", [1, 1, 1]),  # the LiveCodeBench preamble's names
    ("import sys\nprint(int(input()) * 2)\nsys.exit(0)\n", [1, 1, 1]),
    ("import sys\nprint(int(input()) * 2)\nsys.exit(1)\n", [0, 0, 0]),  # a non-zero exit is a runtime error
    ("n = int(input())\nprint(n * 2 + 1 // (n - 3))\n", [0, 0, 1]),  # 2 + -1, a crash, 10 + 0
    ("n = int(input())\nprint(n * 2 + 0 // (n - 3))\n", [1, 0, 1]),  # a crash costs its own test
    ("n = int(input())\nprint(n * 3)\n", [0, 0, 0]),
    ("print(int(input()) * 2)\nprint('debug')\n", [0, 0, 0]),  # an extra line
]


def test_stdin_programs_get_a_contest_judges_verdicts(engine):
    results = engine.score([p for p, _ in STDIN_PROGRAMS], [STDIN] * len(STDIN_PROGRAMS))
    for (program, expected), result in zip(STDIN_PROGRAMS, results):
        assert result.test_results == expected, (program, result.test_errors)


def test_function_calls_in_both_shapes_and_on_a_solution_class(engine):
    programs = [
        ("class Solution:\n    def addAll(self, xs, k):\n        return [x + k for x in xs]\n", [1, 1]),
        ("def addAll(xs, k):\n    return tuple(x + k for x in xs)\n", [1, 1]),
        ("def addAll(xs, k):\n    return xs\n", [0, 1]),
        ("def addAll(xs, k):\n    xs.append(k)\n    return [x + k for x in xs[:-1]]\n", [1, 1]),
        ("def other(xs, k):\n    return xs\n", [0, 0]),
    ]
    for label in (LCB_CALL, APPS_CALL):
        results = engine.score([p for p, _ in programs], [label] * len(programs))
        assert [r.test_results for r in results] == [e for _, e in programs], [r.test_errors for r in results]
    assert "NameError" in results[-1].test_errors[0]


CHEATS = [
    "import os\nos._exit(0)\n",  # leave before printing anything
    "import sys\nsys.exit(0)\n",
    "print(open('/proc/self/status').read())\n",  # whatever it can read, the expected output is not there
    "import os\nprint(os.listdir('/'))\n",
    "print('x' * (8 * 1024 * 1024))\n",  # more than the captured stdout
    "while True:\n    print('y' * 1000)\n",
    "import gc\nprint([o for o in gc.get_objects() if isinstance(o, str) and o.strip().isdigit()][:5])\n",
]


def test_cheating_programs_earn_nothing_and_a_stuck_one_costs_only_its_budget(engine):
    honest = "print(int(input()) * 2)\n"
    started = time.monotonic()
    results = engine.score(CHEATS + [honest] * 8, [STDIN] * (len(CHEATS) + 8))
    for program, result in zip(CHEATS, results):
        assert result.test_results == [0, 0, 0], (program, result.test_errors)
    assert all(r.test_results == [1, 1, 1] for r in results[len(CHEATS):])
    assert time.monotonic() - started < 15
    assert "over the" in results[4].test_errors[0]


def test_an_always_equal_return_value_earns_nothing(engine):
    liar = ("class Liar(list):\n    def __eq__(self, other):\n        return True\n"
            "class Solution:\n    def addAll(self, xs, k):\n        return Liar()\n")
    opaque = "class Liar:\n    def __eq__(self, other):\n        return True\ndef addAll(xs, k):\n    return Liar()\n"
    for label in (LCB_CALL, APPS_CALL):
        results = engine.score([liar, opaque], [label, label])
        assert [r.test_results for r in results] == [[0, 1], [0, 0]], [r.test_errors for r in results]
    assert "unverifiable" in results[1].test_errors[0]


def test_io_rows_are_refused_past_the_size_limits():
    config = RewardConfig(workers=1, max_test_chars=10)
    with RewardEngine(config) as small:
        [result] = small.score(["print(1)"], [{"inputs": ["x" * 20], "outputs": ["1"]}])
    assert result.status is ProgramStatus.INVALID_TESTS and result.test_status == [TestStatus.NOT_RUN]


# ------------------------------------------------------------------------------ whole test sources
PYTEST_FILE = '''import pytest
from solution import add, div

LIMIT = 10

def test_add():
    assert add(1, 2) == 3
    for k in range(LIMIT):
        assert add(k, 0) == k

def test_div_zero():
    with pytest.raises(ZeroDivisionError):
        div(1, 0)

def test_approx():
    assert div(1, 3) == pytest.approx(0.3333333)

def test_fixture(tmp_path):
    assert add(1, 1) == 2

@pytest.mark.parametrize("a", [1, 2])
def test_param(a=1):
    assert add(a, 0) == a
'''


def test_pytest_files_judge_each_test_function_alone(engine):
    good = "def add(a, b):\n    return a + b\ndef div(a, b):\n    return a / b\n"
    wrong = "def add(a, b):\n    return a - b\ndef div(a, b):\n    return 0 if b == 0 else a / b\n"
    liar = "class L:\n    def __eq__(s, o):\n        return True\ndef add(a, b):\n    return L()\ndiv = add\n"
    label = {"format": "pytest", "source": PYTEST_FILE}
    assert parse_tests(label).names == ("test_add", "test_div_zero", "test_approx", "test_fixture", "test_param")
    results = engine.score([good, wrong, liar], [label] * 3)
    assert [r.test_results for r in results] == [[1, 1, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    assert "fixture(s) tmp_path" in results[0].test_errors[3]
    assert "decorated" in results[0].test_errors[4]
    assert "DID NOT RAISE" in results[1].test_errors[1]


def test_a_pytest_file_whose_text_hides_a_test_function_is_refused(engine):
    tricky = 'X = """\ndef test_hidden():\n    pass\n"""\ndef test_a():\n    assert f() == 1\n'
    [result] = engine.score(["def f():\n    return 1\n"], [{"format": "pytest", "source": tricky}])
    assert result.status is ProgramStatus.INVALID_TESTS, result.test_errors


def test_check_sources_call_the_entry_point(engine):
    label = {"format": "check", "entry_point": "add",
             "source": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n"}
    assert parse_tests(label) == [label["source"] + "\ncheck(add)"]
    results = engine.score(["def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a * b\n"], [label] * 2)
    assert [r.test_results for r in results] == [[1], [0]]


def test_a_program_exception_is_the_builtin_one_in_the_test():
    """`except ValueError`, `pytest.raises(KeyError)`: a program's builtin exception (or a subclass of one)
    is raised in the judge as that builtin class."""
    program = "class Bad(ValueError):\n    pass\ndef f(x):\n    if x < 0:\n        raise Bad('negative')\n    return {}[x]\n"
    tests = ["try:\n    f(-1)\n    ok = False\nexcept ValueError as e:\n    ok = str(e) == 'negative'\nassert ok",
             "import pytest\nwith pytest.raises(KeyError):\n    f(1)", "assert f(2) == 1"]
    with RewardEngine(RewardConfig(workers=1)) as e:
        [result] = e.score([program], [tests])
    assert result.test_results == [1, 1, 0] and result.test_errors[2] == "KeyError: 2", result.test_errors
