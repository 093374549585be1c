"""A row's tests as trainers, datasets and requests give them: assert strings, or a tests object.

``parse_tests`` accepts (each also as its JSON string, as OpenRLHF labels and parquet columns carry them):

- a list of assert strings (AceCode-87K): unchanged, judged as Python tests;
- ``{"inputs": [...], "outputs": [...], "fn_name": NAME}`` (verl's ``ground_truth``, APPS/TACO's
  ``input_output``, LiveCodeBench's evaluation form). Without ``fn_name`` every input is a program's stdin
  and every output its expected stdout (compared as LiveCodeBench does, see ``sandbox/io_tests.py``). With
  ``fn_name`` the program's function (or ``Solution().NAME``, LeetCode style) is called; both shapes in use are
  read as their graders read them: LiveCodeBench's (each input a string of newline-separated JSON arguments,
  each output a JSON string) and APPS/TACO/verl's (each input a list of arguments, each output the value or a
  one-item list holding it);
- LiveCodeBench's test lists, ``[{"input": str, "output": str, "testtype": "stdin" | "functional"}, ...]``,
  alone (stdin tests) or as ``{"tests": [...], "fn_name": NAME}``;
- open-r1's ``verification_info``: ``{"language": "python", "test_cases": [{"input", "output",
  "type": "stdin_stdout"}]}``;
- whole test sources: ``{"format": "check", "source": "def check(candidate): ...", "entry_point": "f"}``
  (HumanEval: one test, ``check(f)``) and ``{"format": "pytest", "source": FILE, "module": "solution"}``
  (KodCode: every top-level ``def test_...():`` is one test; the program is importable as ``module``).

Options a tests object may carry: ``"preamble"`` (``"lcb"``, the default: the imports LiveCodeBench and APPS
solutions assume, ``from typing import *``, ``import collections``...; ``"none"``), ``"compare"``
(``"lcb"``, the default, or ``"exact"``: stdout byte for byte) and ``"abs_tol"`` / ``"rel_tol"`` (a float
tolerance for numbers in stdout, 0 by default as in LiveCodeBench).

Only the shape is checked here (the host never runs or parses a test's content: JSON arguments are read by
the judge, in the sandbox). Errors name the field and say what was expected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PREAMBLES = ("lcb", "none")
COMPARES = ("lcb", "exact")
_OPTIONS = ("preamble", "compare", "abs_tol", "rel_tol")


class LabelError(ValueError):
    """A row's tests are not in any accepted shape; ``field`` names where (``labels[3].inputs[2]``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IOTests:
    """stdin/stdout tests (``fn_name`` None) or function-call tests. ``inputs`` and ``outputs`` are text as
    the judge reads it: stdin and expected stdout, or JSON (``call_shape`` says which JSON)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fn_name: str | None = None
    call_shape: str = "lcb"  # "lcb": newline-separated JSON arguments; "apps": a JSON array of them
    preamble: str = "lcb"
    compare: str = "lcb"
    abs_tol: float = 0.0
    rel_tol: float = 0.0

    @property
    def mode(self) -> str:
        return "stdin" if self.fn_name is None else "call"

    def __len__(self) -> int:
        return len(self.inputs)

    def sizes(self) -> list[int]:
        """Characters per test (input and output), for the engine's size limits."""
        return [len(i) + len(o) for i, o in zip(self.inputs, self.outputs)]

    def wire(self) -> dict:
        """The form the judge zygote plans (``sandbox/io_tests.plan_io``), also the row's cache key."""
        return {
            "format": self.mode,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "fn_name": self.fn_name,
            "shape": self.call_shape,
            "preamble": self.preamble,
            "compare": self.compare,
            "abs_tol": self.abs_tol,
            "rel_tol": self.rel_tol,
        }

    def to_json(self) -> dict:
        """A tests object ``parse_tests`` reads back as this one (what clients send over HTTP)."""
        inputs: list = list(self.inputs)
        outputs: list = list(self.outputs)
        if self.mode == "call" and self.call_shape == "apps":
            inputs = [json.loads(i) for i in inputs]
            outputs = [json.loads(o) for o in outputs]
        out: dict = {"inputs": inputs, "outputs": outputs}
        if self.fn_name is not None:
            out["fn_name"] = self.fn_name
        defaults = IOTests((), ())
        for key in _OPTIONS:
            if getattr(self, key) != getattr(defaults, key):
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class PytestTests:
    """A pytest-style test file: each top-level ``def test_...():`` is one test (``names``, in file order,
    found by a scan of the text; the judge checks them against the parsed file). The program is importable
    as ``module`` (KodCode's tests start ``from solution import ...``)."""

    source: str
    names: tuple[str, ...]
    module: str = "solution"

    def __len__(self) -> int:
        return len(self.names)

    def sizes(self) -> list[int]:
        return [len(self.source)] + [0] * (len(self.names) - 1)

    def wire(self) -> dict:
        return {"format": "pytest", "source": self.source, "names": list(self.names), "module": self.module}

    def to_json(self) -> dict:
        return {"format": "pytest", "source": self.source, "module": self.module}


Tests = list[str] | IOTests | PytestTests
_TEST_FUNCTION = re.compile(r"^(?:async[ \t]+)?def[ \t]+(test\w*)[ \t]*\(", re.MULTILINE)


def wire(tests: Tests) -> list[str] | dict:
    """What the judge zygote receives for a row (and the row's cache key): the strings, or the object's form."""
    return list(tests) if isinstance(tests, list) else tests.wire()


def sizes(tests: Tests) -> list[int]:
    """Characters per test, for the engine's size limits."""
    return [len(t) for t in tests] if isinstance(tests, list) else tests.sizes()


def parse_tests(value: object, field: str = "tests") -> Tests:
    """One row's tests in any accepted shape (see the module docstring); raises :class:`LabelError`."""
    if isinstance(value, (IOTests, PytestTests)):
        return _non_empty(value, field)
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "surrogatepass")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise LabelError(f"{field} is a string but not JSON tests ({exc}"[:200] + "): pass a list of test "
                             "strings, a tests object, or the JSON text of one", field) from None
    elif not isinstance(value, (list, tuple, dict)) and callable(getattr(value, "tolist", None)):
        value = value.tolist()  # a numpy array from a parquet column
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        if value and all(isinstance(t, dict) for t in value):
            return _from_case_list(value, None, {}, field)
        for j, test in enumerate(value):
            if not isinstance(test, str):
                raise LabelError(f"{field}[{j}] must be a test string, got {_kind(test)}", f"{field}[{j}]")
        if not value:
            raise LabelError(f"{field} is empty: a program needs at least one test to be scored", field)
        return value
    if isinstance(value, dict):
        return _from_object(value, field)
    raise LabelError(f"{field} must be a list of test strings or a tests object, got {_kind(value)}", field)


# -------------------------------------------------------------------------------------------- internals
def _from_object(obj: dict, field: str) -> Tests:
    if "format" in obj:
        return _from_source(obj, field)
    options = {k: obj[k] for k in _OPTIONS if k in obj}
    if "test_cases" in obj and "inputs" not in obj:  # open-r1's verification_info
        known = {"test_cases", "language", *_OPTIONS}
        _no_unknown(obj, known, field)
        language = obj.get("language", "python")
        if language != "python":
            raise LabelError(f"{field}.language is {language!r}: only Python programs are scored", field)
        cases = obj["test_cases"]
        if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
            raise LabelError(f"{field}.test_cases must be a list of objects", f"{field}.test_cases")
        return _from_case_list(cases, obj.get("fn_name"), options, f"{field}.test_cases")
    if "tests" in obj and "inputs" not in obj:  # LiveCodeBench's test list with its fn_name
        _no_unknown(obj, {"tests", "fn_name", *_OPTIONS}, field)
        cases = obj["tests"]
        if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
            raise LabelError(f"{field}.tests must be a list of objects", f"{field}.tests")
        return _from_case_list(cases, obj.get("fn_name"), options, f"{field}.tests")
    _no_unknown(obj, {"inputs", "outputs", "fn_name", *_OPTIONS}, field)
    for key in ("inputs", "outputs"):
        if key not in obj:
            raise LabelError(f"{field} has no {key!r}: a tests object needs 'inputs' and 'outputs'", field)
        if not isinstance(obj[key], list):
            raise LabelError(f"{field}.{key} must be a list, got {_kind(obj[key])}", f"{field}.{key}")
    inputs, outputs = obj["inputs"], obj["outputs"]
    if len(inputs) != len(outputs):
        raise LabelError(f"{field} has {len(inputs)} inputs but {len(outputs)} outputs", field)
    fn_name = _fn_name(obj.get("fn_name"), field)
    if fn_name is None:
        ins = [_text(x, f"{field}.inputs[{k}]", "a stdin string") for k, x in enumerate(inputs)]
        outs = [_expected_stdout(x, f"{field}.outputs[{k}]") for k, x in enumerate(outputs)]
        return _build(ins, outs, None, "lcb", options, field)
    if all(isinstance(x, str) for x in inputs):  # LiveCodeBench: newline-separated JSON arguments
        outs = [_text(x, f"{field}.outputs[{k}]", "a JSON string (LiveCodeBench's form)")
                for k, x in enumerate(outputs)]
        return _build(list(inputs), outs, fn_name, "lcb", options, field)
    for k, x in enumerate(inputs):
        if not isinstance(x, list):
            raise LabelError(f"{field}.inputs[{k}] must be a list of arguments (APPS/TACO form) like the other "
                             f"inputs, got {_kind(x)}", f"{field}.inputs[{k}]")
    ins = [_json(x, f"{field}.inputs[{k}]") for k, x in enumerate(inputs)]
    outs = [_json(x, f"{field}.outputs[{k}]") for k, x in enumerate(outputs)]
    return _build(ins, outs, fn_name, "apps", options, field)


def _from_source(obj: dict, field: str) -> Tests:
    """``{"format": "check", "source": S, "entry_point": F}`` (HumanEval: ``S`` defines ``check(candidate)``,
    one test, ``check(F)``) or ``{"format": "pytest", "source": S, "module": "solution"}``."""
    kind = obj["format"]
    if kind == "check":
        _no_unknown(obj, {"format", "source", "entry_point"}, field)
        source = _text(obj.get("source"), f"{field}.source", "the test source (a string)")
        entry = _fn_name(obj.get("entry_point"), f"{field}.entry_point")
        if entry is None:
            raise LabelError(f"{field}.entry_point is missing: check(candidate) needs the function to call",
                             f"{field}.entry_point")
        return [f"{source}\ncheck({entry})"]
    if kind == "pytest":
        _no_unknown(obj, {"format", "source", "module"}, field)
        source = _text(obj.get("source"), f"{field}.source", "the test file (a string)")
        module = obj.get("module", "solution")
        if not isinstance(module, str) or not module.isidentifier():
            raise LabelError(f"{field}.module must be a module name, got {module!r}"[:300], f"{field}.module")
        names = tuple(dict.fromkeys(_TEST_FUNCTION.findall(source)))
        if not names:
            raise LabelError(f"{field}.source has no top-level 'def test_...():' function", f"{field}.source")
        return PytestTests(source, names, module)
    raise LabelError(f"{field}.format is {kind!r}: expected 'check' or 'pytest' (stdin/stdout and "
                     "function-call tests need no format: 'inputs', 'outputs', 'fn_name')", f"{field}.format")


def _from_case_list(cases: list[dict], fn_name: object, options: dict, field: str) -> IOTests:
    ins, outs, types = [], [], set()
    for k, case in enumerate(cases):
        where = f"{field}[{k}]"
        _no_unknown(case, {"input", "output", "testtype", "type"}, where)
        kind = case.get("testtype", case.get("type", "stdin"))
        if kind in ("stdin", "stdin_stdout"):
            types.add("stdin")
        elif kind in ("functional", "function_call"):
            types.add("call")
        else:
            raise LabelError(f"{where} has test type {kind!r}: expected 'stdin' or 'functional'", where)
        ins.append(_text(case.get("input"), f"{where}.input", "a string"))
        outs.append(_text(case.get("output"), f"{where}.output", "a string"))
    if len(types) > 1:
        raise LabelError(f"{field} mixes stdin and functional tests", field)
    name = _fn_name(fn_name, field)
    if types == {"call"} and name is None:
        raise LabelError(f"{field} holds functional tests but no fn_name: pass {{'tests': [...], 'fn_name': "
                         "NAME}", field)
    return _build(ins, outs, name if types == {"call"} else None, "lcb", options, field)


def _build(inputs: list[str], outputs: list[str], fn_name: str | None, shape: str, options: dict,
           field: str) -> IOTests:
    preamble = options.get("preamble", "lcb")
    if preamble not in PREAMBLES:
        raise LabelError(f"{field}.preamble is {preamble!r}: expected one of {', '.join(PREAMBLES)}",
                         f"{field}.preamble")
    compare = options.get("compare", "lcb")
    if compare not in COMPARES:
        raise LabelError(f"{field}.compare is {compare!r}: expected one of {', '.join(COMPARES)}",
                         f"{field}.compare")
    tolerances = {}
    for key in ("abs_tol", "rel_tol"):
        value = options.get(key, 0.0)
        if type(value) not in (int, float) or not 0 <= value < float("inf"):
            raise LabelError(f"{field}.{key} must be a finite number >= 0, got {value!r}", f"{field}.{key}")
        tolerances[key] = float(value)
    tests = IOTests(tuple(inputs), tuple(outputs), fn_name, shape, preamble, compare, **tolerances)
    return _non_empty(tests, field)


def _non_empty(tests: IOTests | PytestTests, field: str) -> IOTests | PytestTests:
    if not len(tests):
        raise LabelError(f"{field} has no tests: a program needs at least one test to be scored", field)
    return tests


def _fn_name(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isidentifier():
        raise LabelError(f"{field}.fn_name must be a Python identifier, got {value!r}"[:300], f"{field}.fn_name")
    return value


def _text(value: object, field: str, what: str) -> str:
    if not isinstance(value, str):
        raise LabelError(f"{field} must be {what}, got {_kind(value)}", field)
    return value


def _expected_stdout(value: object, field: str) -> str:
    """An expected stdout: a string, or (APPS/TACO) a list of its lines."""
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    return _text(value, field, "the expected stdout (a string or a list of lines)")


def _json(value: object, field: str) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise LabelError(f"{field} is not JSON data ({exc})"[:300], field) from None


def _no_unknown(obj: dict, known: set[str], field: str) -> None:
    unknown = sorted(str(k) for k in obj if k not in known)
    if unknown:
        raise LabelError(f"{field} has unknown key(s) {', '.join(map(repr, unknown))}; expected "
                         f"{', '.join(sorted(known))}", field)


def _kind(value: object) -> str:
    """The JSON name of a value's type (labels mostly arrive as JSON), for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
