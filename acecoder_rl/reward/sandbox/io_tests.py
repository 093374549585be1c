"""stdin/stdout and function-call tests: their plans, and the comparisons the judge makes on the answers.

A tests object (``labels.IOTests.wire``) becomes one plan per test, each a check made as data, so the
judge zygote judges such rows itself, as it does literal asserts: no test code exists, and every
comparison is bounded work on plain data (stdout text, or the function's decoded return value).

stdin/stdout (plan kind ``stdin``): the child runs the program as a script (``__name__ == "__main__"``), its
stdin a file holding the input (so ``input()``, ``sys.stdin`` iteration, ``sys.stdin.buffer``, ``open(0)``
and ``os.read(0, n)`` all read it, as on a contest judge), its stdout (fd 1, up to ``MAX_OUTPUT`` bytes)
captured whole. The comparison (:func:`stdout_matches`) is LiveCodeBench's by default:

- both texts are stripped, split on ``"\\n"`` and each line stripped: ``" 3 \\n4\\n\\n"`` reads as
  ``["3", "4"]``; a different number of lines fails;
- lines equal as text pass; otherwise both lines are split on whitespace and every token read as a
  ``Decimal``: ``"1.0 2"`` equals ``"1 2.00"``, ``"1e3"`` equals ``"1000"``; a token that is not a number on
  either side fails the line (``"YES"`` vs ``"yes"``);
- with ``abs_tol``/``rel_tol`` (not in LiveCodeBench, which has no float tolerance; 0 by default), numbers
  within ``max(abs_tol, rel_tol * max(|a|, |b|))`` of each other are equal too: ``"0.3333"`` vs
  ``"0.333333"`` with ``abs_tol=1e-3``;
- ``compare="exact"``: the two texts byte for byte.

Function call (plan kind ``call``): the program is loaded once (after the preamble); each test calls
``NAME(*args)``, or ``Solution().NAME(*args)`` when the program defines ``Solution`` (LeetCode style; a fresh
instance per test, where LiveCodeBench reuses one), with the arguments decoded from JSON here. The return
value comes back as plain data (``values.py``) and :func:`call_matches` compares it as the dataset's own
grader does: LiveCodeBench's (a tuple is read as a list, then ``==``), or APPS/TACO's (also equal to the
first item of a one-item list of outputs; a list of tuples equal to the first output's lists; JSON's string
dict keys read back as ints). A program's own object never takes part in ``==`` (unverifiable, as for
asserts).

Runs inside the sandbox (stdlib only).
"""

from __future__ import annotations

import decimal
import json

try:  # in the sandbox the scripts are top-level modules side by side
    from planner import Probe, RowRefused, TestPlan
except ImportError:  # imported from the package (its tests)
    from acecoder_rl.reward.sandbox.planner import Probe, RowRefused, TestPlan

MODES = ("stdin", "call")
MAX_OUTPUT = 4 * 1024 * 1024  # bytes of a program's stdout kept for the comparison
# The names LiveCodeBench's and APPS's graders put in scope before a solution runs.
PREAMBLES = {
    "none": "",
    "lcb": "\n".join(
        [f"from {m} import *" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy",
                                        "math", "random", "statistics", "itertools", "functools", "operator",
                                        "io", "sys", "json", "builtins", "typing")]
        + [f"import {m}" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math",
                                   "random", "statistics", "itertools", "functools", "operator", "io", "sys",
                                   "json")]
        + ["sys.setrecursionlimit(50000)"]
    ),
}
SOLUTION = "Solution"
ARGS = "__acecoder_args__"


def plan_io(spec: dict) -> list[TestPlan]:
    """One plan per test of a tests object; raises ``RowRefused`` for a malformed one (the host checked
    the shape; this is the judge's own check, since the request is data it did not make)."""
    mode = spec.get("format")
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    if mode not in MODES or not isinstance(inputs, list) or not isinstance(outputs, list):
        raise RowRefused("malformed tests object")
    if len(inputs) != len(outputs) or not all(isinstance(x, str) for x in inputs + outputs):
        raise RowRefused("malformed tests object")
    preamble = PREAMBLES.get(spec.get("preamble"))
    if preamble is None:
        raise RowRefused(f"unknown preamble {spec.get('preamble')!r}")
    if mode == "stdin":
        compare = spec.get("compare")
        tolerances = (spec.get("abs_tol"), spec.get("rel_tol"))
        if compare not in ("lcb", "exact") or not all(type(t) in (int, float) and t >= 0 for t in tolerances):
            raise RowRefused("malformed stdout comparison")
        options = (compare, float(tolerances[0]), float(tolerances[1]))
        return [
            TestPlan(text, "stdin", setup=preamble or None, check=("stdout", expected, options, None))
            for text, expected in zip(inputs, outputs)
        ]
    name, shape = spec.get("fn_name"), spec.get("shape")
    if not isinstance(name, str) or not name.isidentifier() or shape not in ("lcb", "apps"):
        raise RowRefused("malformed function-call tests")
    plans = []
    for text, expected in zip(inputs, outputs):
        try:
            args, value = _call_data(text, expected, shape)
        except (ValueError, RecursionError) as exc:
            plans.append(TestPlan(text, "invalid", error=f"test arguments are not JSON: {exc}"[:300]))
            continue
        plans.append(
            TestPlan(text, "call", setup=preamble or None, names=frozenset({name, SOLUTION}),
                     check=("call", (args, value), shape, name))
        )
    return plans


def _call_data(text: str, expected: str, shape: str) -> tuple[list, object]:
    if shape == "lcb":  # one JSON value per line (LiveCodeBench's grade_call_based)
        return [json.loads(line) for line in text.split("\n")], json.loads(expected)
    args = json.loads(text)
    value = json.loads(expected)
    if not isinstance(args, list):
        raise ValueError("the arguments are not a JSON array")
    args = _int_keys_first(args)
    if isinstance(value, dict):
        value = _int_keys_first([value])
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        value = _int_keys_first(value[:1])
    return args, value


def _int_keys_first(items: list) -> list:
    """APPS/TACO: JSON makes a dict's int keys strings; their grader turns them back when the first item is
    a dict (and keeps it as is when a key is not an int)."""
    if items and isinstance(items[0], dict):
        try:
            return [{int(k): v for k, v in items[0].items()}]
        except ValueError:
            return items
    return items


def entry_probe(name: str, bound: set[str]) -> Probe:
    """The call each test makes in the child (see the module docstring)."""
    target = f"{SOLUTION}().{name}" if SOLUTION in bound else name
    return Probe(f"{target}(*{ARGS})", (ARGS,))


# ------------------------------------------------------------------------------------------ comparisons
def stdout_matches(got: object, expected: str, options: tuple) -> bool:
    """Does a program's stdout pass (see the module docstring for every rule, with examples)?"""
    if type(got) is not str:
        return False
    compare, abs_tol, rel_tol = options
    if compare == "exact":
        return got == expected
    ours, theirs = _lines(got), _lines(expected)
    if len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs):
        if a == b:
            continue
        x, y = _numbers(a), _numbers(b)
        if x is None or y is None:
            return False
        if x == y:
            continue
        if not (abs_tol or rel_tol) or len(x) != len(y) or not all(_close(p, q, abs_tol, rel_tol)
                                                                  for p, q in zip(x, y)):
            return False
    return True


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


_CONTEXT = decimal.Context(prec=60, traps=[])  # comparisons with NaN give False instead of raising


def _numbers(line: str) -> list[decimal.Decimal] | None:
    try:
        return [decimal.Decimal(token) for token in line.split()]
    except (decimal.InvalidOperation, ValueError):
        return None


def _close(p: decimal.Decimal, q: decimal.Decimal, abs_tol: float, rel_tol: float) -> bool:
    if p == q:
        return True
    if not (p.is_finite() and q.is_finite()):
        return False
    diff = _CONTEXT.abs(_CONTEXT.subtract(p, q))
    bound = max(decimal.Decimal(abs_tol), _CONTEXT.multiply(decimal.Decimal(rel_tol), max(abs(p), abs(q))))
    return _CONTEXT.compare(diff, bound) <= 0


def call_matches(answer: object, expected: object, shape: str) -> bool:
    """Does a function's return value pass, as the dataset's grader reads it (module docstring)?"""
    if isinstance(answer, tuple):
        answer = list(answer)
    holds = bool(answer == expected)
    if shape == "apps":
        if not holds and isinstance(expected, list) and expected:
            holds = bool(answer == expected[0])
        if not holds and isinstance(answer, list) and answer and isinstance(answer[0], tuple):
            try:
                holds = isinstance(expected, list) and bool(expected) and [list(x) for x in answer] == expected[0]
            except TypeError:  # an item that is not a sequence: their grader's try/except reads it as a fail
                holds = False
    return holds
