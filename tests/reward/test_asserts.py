import pytest

from acecoder_rl.reward.asserts import compile_test, entry_names


def probes(source, shadowed=frozenset()):
    return [p.source for p in compile_test(source, frozenset(shadowed)).probes]


def test_expected_value_never_reaches_a_probe():
    plan = compile_test("assert add(1, 2) == 3")
    assert plan.kind == "assert"
    assert probes("assert add(1, 2) == 3") == ["add(1, 2)"]


def test_arithmetic_and_builtins_stay_in_the_parent():
    assert probes("assert abs(area(2) - 12.56) < 1e-2") == ["area(2)"]
    assert probes("assert sorted(f([3, 1])) == [1, 3]") == ["f([3, 1])"]
    assert probes("assert math.isclose(f(1), 0.5)") == ["f(1)"]


def test_access_chains_are_one_probe():
    assert probes("assert Stack().push(1).size() == 1") == ["Stack().push(1).size()"]
    assert probes("assert f(g(2))[0] == 1") == ["f(g(2))[0]"]


def test_comprehension_variables_are_passed_as_locals():
    plan = compile_test("assert all(f(x) > 0 for x in range(3))")
    assert [(p.source, p.local_names) for p in plan.probes] == [("f(x)", ("x",))]


def test_shadowed_builtin_becomes_program_code():
    assert probes("assert max(3) == 3") == []
    assert probes("assert max(3) == 3", {"max"}) == ["max(3)"]


def test_statements_and_invalid_tests():
    assert compile_test("x = f(1)").kind == "statement"
    invalid = compile_test("assert f(1 ==")
    assert invalid.kind == "invalid" and "does not parse" in invalid.error
    uncompilable = compile_test("assert (yield) == 1")  # parses, but yield outside a function
    assert uncompilable.kind == "invalid" and "does not compile" in uncompilable.error


@pytest.mark.parametrize("source, expected", [
    ("assert f(1,\n 2) == 3", ["(f(1,\n 2))"]),
    ("assert (f(1)\n        .real) == 1", ["(f(1)\n        .real)"]),  # stands alone only in brackets
    ('assert f"{f(1)}" == "1"', ["f(1)"]),  # inside an f-string positions are unreliable: rebuilt text
    ("assert f('é', x='ü') == 'éü'", ["f('é', x='ü')"]),
])
def test_probe_text_is_the_tests_own_and_evaluates_alone(source, expected):
    assert probes(source) == expected
    for text in expected:
        compile(text, "<probe>", "eval")


@pytest.mark.parametrize("source", ["assert 2 ** f(3) == 8", "assert 'a' * f(3) == 'aaa'", "assert 1 << f(2) == 4"])
def test_size_amplifying_operators_are_guarded(source):
    plan = compile_test(source)
    assert "__binop__" in plan.code.co_names


def test_entry_names_skip_builtins_and_modules():
    assert entry_names(["assert math.isclose(area(1), 3.14)", "assert len(area(2)) == 1"]) == ["area"]


def test_leading_imports_run_first_and_the_assert_is_still_split():
    plan = compile_test("import math; assert math.isclose(area(1), 3.14159, rel_tol=1e-3)")
    assert plan.kind == "assert" and plan.setup == "import math" and plan.imported == {"math"}
    assert [p.source for p in plan.probes] == ["area(1)"]
    assert compile_test("x = 1; assert f(x) == 2").kind == "statement"
