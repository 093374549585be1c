"""The data files shipped in ``acecoder_rl/data/resources`` and their conversion to AceCode-87K rows.

Three bundled sources let the pipeline run (and be tested) with no download: one real AceCode-87K row, OpenAI
HumanEval (164 problems) and a pre-release MBPP+ snapshot (399 problems; demo data only, see its README). The
two benchmarks are converted to the AceCode row schema so that every later step (validation, prepare, reward)
treats them like training rows; their raw prompts also form the decontamination index
(:func:`benchmark_prompts`).
"""

from __future__ import annotations

import ast
import builtins
import gzip
import json
import sys
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).resolve().parent / "resources"
ACECODE_SAMPLE = RESOURCES / "acecode" / "acecode_sample.jsonl"
HUMANEVAL = RESOURCES / "humaneval" / "HumanEval.jsonl.gz"
MBPPPLUS = RESOURCES / "mbppplus_dev" / "MbppPlus.jsonl"

#: Bundled source name -> the resource file it is read from.
BUNDLED_FILES: dict[str, Path] = {"sample": ACECODE_SAMPLE, "humaneval": HUMANEVAL, "mbppplus": MBPPPLUS}

#: Benchmarks whose prompts training rows are decontaminated against.
BENCHMARKS = ("humaneval", "mbppplus")

_BUILTIN_NAMES = frozenset(dir(builtins))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a (possibly gzipped) JSON-lines resource file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _module_imports(node: ast.AST) -> str:
    """``import m; `` for each standard-library module that ``node`` uses as ``m.attr``.

    Benchmark harnesses import modules such as ``math`` once for all their asserts (or not at all: MBPP+
    relies on the harness having ``math`` loaded). A test string runs on its own after the solution, so it
    must import them.
    """
    modules = sorted(
        {
            sub.value.id
            for sub in ast.walk(node)
            if isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.value.id in sys.stdlib_module_names
        }
    )
    return "".join(f"import {module}; " for module in modules)


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(self.new, node.ctx), node) if node.id == self.old else node


def _bound_names(function: ast.FunctionDef) -> set[str]:
    """Names that ``function`` binds itself (variables, loop targets, ``from``/``as`` imports).

    A plain ``import m`` of a standard-library module is not counted: :func:`_module_imports` re-creates it.
    """
    bound = {
        node.id
        for node in ast.walk(function)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    for node in ast.walk(function):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                plain = (
                    isinstance(node, ast.Import)
                    and alias.asname is None
                    and alias.name in sys.stdlib_module_names
                )
                if not plain:
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not function:
            bound.add(node.name)
    return bound


def humaneval_tests(test_source: str, entry_point: str) -> list[str]:
    """Split HumanEval's ``check(candidate)`` into one-line asserts on ``entry_point``.

    Kept: asserts directly in ``check``'s body that call ``candidate`` and otherwise use only builtins (and
    standard-library modules, which get an ``import`` prefix). Skipped: asserts inside loops or branches,
    asserts on names that ``check`` or the test module defines, and asserts that never call ``candidate``
    (``assert True``). Assert messages are dropped: they are debugging notes. Three problems (HumanEval/32,
    38, 50) test only inside a loop; for them the single test is the whole original ``check`` run through
    ``exec``, so that every row keeps a faithful test.
    """
    module = ast.parse(test_source)
    check = next(node for node in module.body if isinstance(node, ast.FunctionDef) and node.name == "check")
    allowed = (_BUILTIN_NAMES | sys.stdlib_module_names | {"candidate"}) - _bound_names(check)
    tests = []
    for stmt in check.body:
        if not isinstance(stmt, ast.Assert):
            continue
        names = {node.id for node in ast.walk(stmt) if isinstance(node, ast.Name)}
        if "candidate" not in names or not names <= allowed:
            continue
        renamed = _Rename("candidate", entry_point).visit(ast.Assert(test=stmt.test, msg=None))
        tests.append(_module_imports(renamed) + ast.unparse(renamed))
    if not tests:
        program = f"{test_source.rstrip()}\n\ncheck({entry_point})\n"
        tests = [f"exec({program!r})"]
    return tests


def humaneval_row(problem: dict[str, Any]) -> dict[str, Any]:
    """One HumanEval problem as an AceCode row (``id`` = ``task_id``, ``source`` = ``humaneval``)."""
    entry_point = problem["entry_point"]
    question = (
        "Complete the following Python code. Reply with the whole program: keep the given imports and helper "
        f"functions and implement `{entry_point}`.\n\n```python\n{problem['prompt'].rstrip()}\n```"
    )
    return _row(problem["task_id"], "humaneval", question, humaneval_tests(problem["test"], entry_point))


def mbppplus_tests(assertion: str) -> list[str]:
    """The ``assert`` lines of an MBPP+ ``assertion`` block, each made to run on its own (module imports)."""
    tests = []
    for line in assertion.splitlines():
        line = line.strip()
        if line.startswith("assert"):
            tests.append(_module_imports(ast.parse(line)) + line)
    return tests


def mbppplus_description(problem: dict[str, Any]) -> str:
    """The task text of an MBPP+ problem (its ``prompt`` is a quoted docstring)."""
    return str(ast.literal_eval(problem["prompt"])).strip()


def mbppplus_row(problem: dict[str, Any]) -> dict[str, Any]:
    """An MBPP+ problem as AceCode row; the question shows a test (MBPP text leaves the signature open)."""
    tests = mbppplus_tests(problem["assertion"])
    name = problem["entry_point"]
    question = f"{mbppplus_description(problem)}\n\nImplement it as a Python function named `{name}`."
    if tests:
        question += f" It must pass tests like this one:\n\n```python\n{tests[0]}\n```"
    return _row(problem["task_id"], "mbppplus", question, tests)


def _row(row_id: str, source: str, question: str, tests: list[str]) -> dict[str, Any]:
    return {
        "id": row_id,
        "source": source,
        "question": question,
        "test_cases": tests,
        "inferences": [],
        "context_messages": [{"content": question, "role": "user"}],
    }


def converted_rows(name: str) -> list[dict[str, Any]]:
    """The AceCode rows of a bundled benchmark (``humaneval`` or ``mbppplus``), in file order."""
    convert = {"humaneval": humaneval_row, "mbppplus": mbppplus_row}[name]
    return [convert(problem) for problem in read_jsonl(BUNDLED_FILES[name])]


def benchmark_prompts(name: str) -> dict[str, str]:
    """Benchmark item id -> the raw problem text a contaminated training row would copy (no wrapper text)."""
    problems = read_jsonl(BUNDLED_FILES[name])
    if name == "humaneval":
        return {problem["task_id"]: problem["prompt"] for problem in problems}
    return {problem["task_id"]: mbppplus_description(problem) for problem in problems}
