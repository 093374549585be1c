"""Test plans: where each test is split between the judge and the program's child (``sandbox/planner.py``)."""

import pytest

from acecoder_rl.reward.sandbox.planner import RowRefused, plan_row, plan_test

DEPTH = 100


def plan(source, shadowed=(), program_modules=()):
    return plan_test(source, DEPTH, frozenset(shadowed), frozenset(program_modules))


def probes(source, shadowed=(), program_modules=()):
    return [p.source for p in plan(source, shadowed, program_modules).probes]


def test_expected_value_never_reaches_a_probe():
    assert plan("assert add(1, 2) == 3").kind == "expr"
    assert probes("assert add(1, 2) == 3") == ["add(1, 2)"]


def test_arithmetic_and_builtins_stay_in_the_judge():
    assert probes("assert abs(area(2) - 12.56) < 1e-2") == ["area(2)"]
    assert probes("assert sorted(f([3, 1])) == [1, 3]") == ["f([3, 1])"]
    assert probes("assert math.isclose(f(1), 0.5)") == ["f(1)"]
    assert plan("assert math.isclose(f(1), 0.5)").modules == ("math",)


def test_access_chains_are_one_probe():
    assert probes("assert Stack().push(1).size() == 1") == ["Stack().push(1).size()"]
    assert probes("assert f(g(2))[0] == 1") == ["f(g(2))[0]"]


def test_names_the_test_binds_are_passed_as_locals():
    assert [(p.source, p.local_names) for p in plan("assert all(f(x) > 0 for x in range(3))").probes] == [
        ("f(x)", ("x",))
    ]
    assert [(p.source, p.local_names) for p in plan("l = [1]\nassert f(l) == 1").probes] == [("f(l)", ("l",))]


def test_shadowed_builtin_becomes_program_code():
    assert probes("assert max(3) == 3") == []
    assert probes("assert max(3) == 3", {"max"}) == ["max(3)"]
    assert probes("assert abs(f(1)) == 3", {"abs"}) == ["f(1)"]  # it wraps the program's answer


def test_whole_sources_are_planned_as_modules():
    module = plan("x = f(1)\nassert x == 2")
    assert module.kind == "module" and [p.source for p in module.probes] == ["f(1)"]
    check = plan("def check(candidate):\n    assert candidate(1) == 2\ncheck(f)")
    assert check.kind == "module" and [p.source for p in check.probes] == ["f"]
    stmt = plan("f.cache = {}\nassert f(1) == 2")
    assert [(p.source, p.statement) for p in stmt.probes] == [("f.cache = {}", True), ("f(1)", False)]


def test_imports_of_judge_modules_stay_in_the_judge_and_others_go_to_the_child():
    fractions = plan("from fractions import Fraction; assert f(1) == Fraction(1, 3)")
    assert fractions.imports == ("fractions",) and fractions.setup == "from fractions import Fraction"
    assert [p.source for p in fractions.probes] == ["f(1)"]
    child = plan("import os; assert os.path.exists(f())")
    assert child.kind == "expr" and [p.source for p in child.probes] == ["os.path.exists(f())"]
    assert child.setup == "import os" and child.imports == ()
    mixed = plan("import math, os\nassert f(math.pi) == os.sep")
    assert [p.source for p in mixed.probes] == ["f(math.pi)", "os.sep"] and mixed.imports == ("math",)


def test_a_program_alias_of_a_judge_module_is_the_judges():
    assert probes("assert np.isclose(f(1), 0.5)") == ["np.isclose(f(1), 0.5)"]
    assert probes("assert np.isclose(f(1), 0.5)", program_modules={"np"}) == ["f(1)"]


def test_invalid_tests():
    invalid = plan("assert f(1 ==")
    assert invalid.kind == "invalid" and "does not parse" in invalid.error
    uncompilable = plan("assert (yield) == 1")  # parses, but yield outside a function
    assert uncompilable.kind == "invalid" and "does not compile" in uncompilable.error


def test_depth_past_the_limit_refuses_the_row():
    with pytest.raises(RowRefused, match="nested"):
        plan_row(["assert f(1) == 1", "assert f(1) == " + "-" * 500 + "1"], DEPTH)
    assert plan("assert f(1) == " + "-" * 50 + "1").kind == "expr"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("assert f(1,\n 2) == 3", ["(f(1,\n 2))"]),
        ("assert (f(1)\n        .real) == 1", ["(f(1)\n        .real)"]),  # stands alone only in brackets
        ('assert f"{f(1)}" == "1"', ["f(1)"]),  # inside an f-string positions are unreliable: rebuilt text
        ("assert f('é', x='ü') == 'éü'", ["f('é', x='ü')"]),
    ],
)
def test_probe_text_is_the_tests_own_and_evaluates_alone(source, expected):
    assert probes(source) == expected
    for text in expected:
        compile(text, "<probe>", "eval")


def test_eager_plans_are_lone_probes_evaluated_first():
    assert plan("assert f(1) == 2").eager
    assert not plan("assert g(1) == f(1)").eager
    assert not plan("assert x(1) or f(1)").eager


@pytest.mark.parametrize(
    "source, check",
    [
        ("assert f(1) == [1, (2, -3)]", ("Eq", [1, (2, -3)], True, None)),
        ("assert -2.5 == f(1)", ("Eq", -2.5, False, None)),
        ("assert 3 in f(1)", ("In", 3, False, None)),
        ("assert f(1) is None", ("Is", None, True, None)),
        ("assert not f(1)", ("not", None, True, None)),
        ("assert f(1)", ("truth", None, True, None)),
        ("assert f(1) == (-2+2.5e-16j)", ("Eq", -2 + 2.5e-16j, True, None)),
        ("assert set(f(1)) == set([3, 1])", ("Eq", {1, 3}, True, "set")),
        ("assert tuple([1, 2]) != tuple(f(1))", ("NotEq", (1, 2), False, "tuple")),
        ("assert sorted(f(1)) == [1, 2]", ("Eq", [1, 2], True, "sorted")),
        ("assert len(f(1)) == 2", ("Eq", 2, True, "len")),
        ("assert math.isclose(f(1), 0.5, rel_tol=1e-3)", ("isclose", (0.5, (("rel_tol", 1e-3),)), True, None)),
        ("assert math.isclose(-2, f(1))", ("isclose", (-2, ()), False, None)),
        ("assert abs(f(1) - 0.33) < 1e-06", ("abs_lt", (0.33, 1e-06), True, None)),
        ("assert abs(2 - f(1)) <= 1", ("abs_le", (2, 1), False, None)),
    ],
)
def test_literal_checks_are_planned_as_data(source, check):
    p = plan(source)
    assert p.literal and p.check == check and p.code is None and [q.source for q in p.probes] == ["f(1)"]


@pytest.mark.parametrize(
    "source",
    [
        "assert f(1) == x",
        "assert f(1) + 1 == 2",
        "assert f(1) == {[1]: 2}",
        "assert f(1) == 2 == 2",
        "import math; assert f(1) == 2",
        "assert f(1) == 2 + 3",
        "assert set(f(1), 2) == {1}",
        "assert set(f(1)) == set(g(1))",
        "assert math.isclose(f(1), 0.5, tol=1)",
        "assert math.isclose(f(1), 0.5, rel_tol=x)",
        "assert math.isclose(f(1), g(1))",
        "assert abs(f(1) - 0.33) < x",
        "assert abs(f(1) + 0.33) < 1",
        "assert abs(f(1) - g(1)) < 1",
        "assert f(1) < 3",
    ],
)
def test_other_shapes_are_not_literal_checks(source):
    assert plan(source).check is None
