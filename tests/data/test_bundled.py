"""The shipped HumanEval and MBPP+ files converted to AceCode rows.

The canonical solutions are trusted data, so running them in-process against the converted tests is fine here.
"""

from __future__ import annotations

import ast

import pytest

from acecoder_rl.data import load_acecode, validate_rows
from acecoder_rl.data.bundled import HUMANEVAL, MBPPPLUS, humaneval_tests, read_jsonl
from acecoder_rl.data.schema import acecode_features


@pytest.fixture(scope="module")
def humaneval():
    return load_acecode("humaneval")


@pytest.fixture(scope="module")
def mbppplus():
    return load_acecode("mbppplus")


def _failing_tests(program: str, tests: list[str]) -> list[str]:
    failing = []
    for test in tests:
        namespace: dict = {}
        exec(program, namespace)  # a fresh namespace per test, as the reward runs them
        try:
            exec(test, namespace)
        except Exception:
            failing.append(test)
    return failing


def test_humaneval_rows(humaneval):
    assert humaneval.num_rows == 164
    assert humaneval.features == acecode_features()
    assert humaneval["id"][:2] == ["HumanEval/0", "HumanEval/1"]
    assert set(humaneval["source"]) == {"humaneval"}
    row = humaneval[0]
    assert row["inferences"] == []
    assert row["context_messages"] == [{"content": row["question"], "role": "user"}]
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in row["question"]
    assert row["test_cases"][0] == "assert has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True"
    assert len(row["test_cases"]) == 7
    _, report = validate_rows(humaneval)
    assert report.rows_skipped == 0


def test_every_converted_humaneval_test_is_one_parsable_line(humaneval):
    for tests in humaneval["test_cases"]:
        for test in tests:
            assert "\n" not in test
            ast.parse(test)
            assert test.startswith("exec(") or "candidate" not in test


def test_humaneval_canonical_solutions_pass_their_converted_tests(humaneval):
    problems = {p["task_id"]: p for p in read_jsonl(HUMANEVAL)}
    for row_id, tests in zip(humaneval["id"], humaneval["test_cases"], strict=True):
        problem = problems[row_id]
        assert _failing_tests(problem["prompt"] + problem["canonical_solution"], tests) == [], row_id


def test_humaneval_split_skips_loops_locals_and_trivial_asserts():
    source = (
        "def check(candidate):\n"
        "    import math\n"
        "    assert candidate(1) == 2, 'message dropped'\n"
        "    assert math.isclose(candidate(2), 3.0)\n"
        "    lst = [1, 2]\n"
        "    assert candidate(lst) == 3\n"
        "    for x in range(3):\n"
        "        assert candidate(x) == x + 1\n"
        "    assert True, 'no call'\n"
        "    assert inc(3) == candidate(3)\n"
    )
    assert humaneval_tests(source, "inc") == [
        "assert inc(1) == 2",
        "import math; assert math.isclose(inc(2), 3.0)",
    ]


def test_humaneval_problem_testing_only_in_a_loop_keeps_the_whole_check(humaneval):
    row = humaneval[32]
    assert row["id"] == "HumanEval/32"
    (test,) = row["test_cases"]
    assert test.startswith("exec(") and test.count("\n") == 0
    problem = read_jsonl(HUMANEVAL)[32]
    assert _failing_tests(problem["prompt"] + problem["canonical_solution"], [test]) == []
    assert _failing_tests(problem["prompt"] + "    return 0.5\n", [test]) == [
        test
    ]  # a wrong solution fails it


def test_mbppplus_rows(mbppplus):
    assert mbppplus.num_rows == 399
    assert mbppplus.features == acecode_features()
    row = mbppplus[0]
    assert (row["id"], row["source"]) == ("Mbpp/2", "mbppplus")
    assert row["test_cases"] == [
        "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
        "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
        "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
    ]
    assert row["question"].startswith(
        "Write a function to find the shared elements from the given two lists."
    )
    assert "`similar_elements`" in row["question"]
    _, report = validate_rows(mbppplus)
    assert report.rows_skipped == 0


def test_mbppplus_tests_import_the_modules_they_use(mbppplus):
    """Mbpp/120 calls math.isclose without importing math; its tests must run on their own."""
    tests = mbppplus[mbppplus["id"].index("Mbpp/120")]["test_cases"]
    assert all(test.startswith("import math; assert math.isclose(") for test in tests)


@pytest.mark.filterwarnings(
    "ignore:invalid escape sequence:DeprecationWarning"
)  # in some canonical solutions
def test_mbppplus_canonical_solutions_pass_their_tests(mbppplus):
    problems = {p["task_id"]: p for p in read_jsonl(MBPPPLUS)}
    failing = {
        row_id
        for row_id, tests in zip(mbppplus["id"], mbppplus["test_cases"], strict=True)
        if _failing_tests(problems[row_id]["canonical_solution"], tests)
    }
    assert failing == {"Mbpp/164", "Mbpp/295"}  # the "special oracle" tasks named in the resource README
