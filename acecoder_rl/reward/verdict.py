"""Verdicts, made in the trusted parent.

``TestEvaluator.run`` evaluates the rewritten test expression from ``asserts.compile_test`` with Python's
own semantics. Each ``__probe__(k)`` in it asks the sandbox child for the value of one program expression;
the answer comes back as plain data (``sandbox/values.py``), so the comparison with the expected value runs
on builtin types the program cannot influence.

When the child's value is not plain data (a custom object, a generator) it is represented here by a
:class:`RemoteObject` that forwards harmless operations (attribute access, calls, iteration, ``len``,
``str``) to the child, whose answers are again plain data. The operations a lying object could use to win
(``==``/``<`` against a plain value, arithmetic) are refused as *unverifiable*: the test fails with that
reason. Two cases have no safe answer and run inside the child, counted as fallbacks: truthiness of a
custom object and a comparison between two objects that both live in the child (e.g. two dataclass
instances).
"""
from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable

from acecoder_rl.reward.asserts import PARENT_BUILTINS, TestPlan
from acecoder_rl.reward.results import TestStatus
from acecoder_rl.reward.sandbox import values

# Bounds on what the parent computes from program-supplied values.
MAX_ITEMS = 10_000_000
MAX_BITS = 10_000_000


class SandboxInterrupt(Exception):
    """The child did not answer: it timed out or died. Handled by the runner, never a verdict by itself."""


class ProbeTimeout(SandboxInterrupt):
    pass


class ChildDied(SandboxInterrupt):
    """The child's socket closed (it died) or carried garbage (``malformed``): either way it is finished."""

    def __init__(self, malformed: bool = False) -> None:
        super().__init__("malformed answer" if malformed else "process died")
        self.malformed = malformed


class ChildFailure(Exception):
    """Evaluating a program expression raised inside the child (or its answer was unusable)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Unverifiable(Exception):
    """The value cannot be checked without trusting code the program controls."""


Requester = Callable[[dict], dict]


class RemoteObject:
    """Stand-in for an object that only exists in the child (see the module docstring)."""

    __slots__ = ("_ev", "_opaque")

    def __init__(self, evaluator: "TestEvaluator", opaque: values.Opaque) -> None:
        object.__setattr__(self, "_ev", evaluator)
        object.__setattr__(self, "_opaque", opaque)

    def _remote(self, kind: str, args: tuple = (), name: str | None = None, kwargs: dict | None = None) -> object:
        return self._ev.apply(kind, self, args, name=name, kwargs=kwargs or {})

    def _compare(self, other: object, op: str, reflected_default: bool | None) -> object:
        if isinstance(other, RemoteObject):
            self._ev.fallback = True
            return self._remote("compare", (other,), name=op)
        if reflected_default is not None and self._opaque.default_eq:
            return reflected_default  # identity semantics: a child-only object is never equal to a plain value
        raise Unverifiable(f"a {self._opaque.type_name} object with custom comparison was compared with a plain value")

    def __eq__(self, other: object) -> object:
        return self._compare(other, "Eq", False)

    def __ne__(self, other: object) -> object:
        return self._compare(other, "NotEq", True)

    def __lt__(self, other: object) -> object:
        return self._compare(other, "Lt", None)

    def __le__(self, other: object) -> object:
        return self._compare(other, "LtE", None)

    def __gt__(self, other: object) -> object:
        return self._compare(other, "Gt", None)

    def __ge__(self, other: object) -> object:
        return self._compare(other, "GtE", None)

    def __contains__(self, item: object) -> bool:
        raise Unverifiable(f"membership test on a {self._opaque.type_name} object (custom __contains__)")

    def __bool__(self) -> bool:
        self._ev.fallback = True
        return bool(self._remote("truth"))

    def __len__(self) -> int:
        try:
            n = self._remote("len")
        except ChildFailure as exc:
            if str(exc).startswith("TypeError:"):  # no __len__: list() and friends then just iterate
                raise TypeError(str(exc)) from None
            raise
        if type(n) is not int:
            raise Unverifiable("len() of a child object did not give an int")
        return n

    def __iter__(self):
        items = self._remote("iter")
        if type(items) is not list:
            raise Unverifiable("iterating a child object did not give a list")
        return iter(items)

    def __getitem__(self, key: object) -> object:
        return self._remote("getitem", (key,))

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._remote("getattr", name=name)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._remote("call", args, kwargs=kwargs)

    def __str__(self) -> str:
        return _as_str(self._remote("str"))

    def __repr__(self) -> str:
        return _as_str(self._remote("repr"))

    __hash__ = None  # type: ignore[assignment]


def _as_str(value: object) -> str:
    if type(value) is not str:
        raise Unverifiable("str()/repr() of a child object did not give a str")
    return value


# -------------------------------------------------------------------------------- guarded parent operations
def guarded_binop(op: str, a: object, b: object) -> object:
    if op == "Pow":
        if type(a) is int and type(b) is int and b > 0 and abs(a) > 1 and b * a.bit_length() > MAX_BITS:
            raise Unverifiable("power too large to compute")
        return a ** b
    if op == "Mult":
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, (str, bytes, bytearray, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_ITEMS:
                raise Unverifiable("repetition too large to compute")
        return a * b
    if op == "LShift":
        if isinstance(b, int) and b > MAX_BITS:
            raise Unverifiable("shift too large to compute")
        return a << b
    raise ValueError(op)


def _guarded_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise Unverifiable("range too large to iterate in the checker")
    return r


def _guarded_pow(base: object, exp: object, mod: object = None) -> object:
    return pow(base, exp, mod) if mod is not None else guarded_binop("Pow", base, exp)


_PARENT_BUILTINS = {name: getattr(builtins, name) for name in PARENT_BUILTINS}
_PARENT_BUILTINS.update(range=_guarded_range, pow=_guarded_pow)


# ----------------------------------------------------------------------------------------------- evaluator
class TestEvaluator:
    """Evaluates the tests of one loaded program, one request to the child per program expression."""

    __test__ = False  # not a pytest test class

    def __init__(self, request: Requester, error_cap: int) -> None:
        self._request = request
        self.cap = error_cap
        self.fallback = False
        self.memory = False
        self._fresh = True
        self._encoder = values.Encoder()

    # -- messages
    def _send(self, message: dict) -> object:
        message["fresh"] = self._fresh
        self._fresh = False
        return self._answer(self._request(message))

    def _answer(self, reply: object) -> object:
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise ChildFailure("protocol", "malformed answer from the sandbox")
        if not reply["ok"]:
            kind = reply.get("kind") if isinstance(reply.get("kind"), str) else "exception"
            error = reply.get("error") if isinstance(reply.get("error"), str) else "error"
            if kind == "memory":
                self.memory = True
            raise ChildFailure(kind, error[: self.cap])
        try:
            value = values.decode(reply.get("v"))
        except values.DecodeError as exc:
            raise ChildFailure("protocol", str(exc)) from None
        return RemoteObject(self, value) if isinstance(value, values.Opaque) else value

    def _ref(self, value: object) -> list:
        if isinstance(value, RemoteObject):
            return ["slot", value._opaque.slot]
        encoded = self._encoder.encode(value)
        self._encoder.slots.clear()
        if encoded[0] == "o":
            raise Unverifiable(f"cannot pass a {type(value).__name__} from the test to the program")
        return ["val", encoded]

    def probe(self, source: str, local_values: dict) -> object:
        message: dict = {"op": "probe", "src": source}
        if local_values:
            message["locals"] = {k: self._ref(v) for k, v in local_values.items()}
        return self._send(message)

    def apply(self, kind: str, target: RemoteObject, args: tuple, *, name: str | None, kwargs: dict) -> object:
        message: dict = {"op": "apply", "kind": kind, "target": self._ref(target),
                         "args": [self._ref(a) for a in args]}
        if name is not None:
            message["name"] = name
        if kwargs:
            message["kwargs"] = {k: self._ref(v) for k, v in kwargs.items()}
        return self._send(message)

    # -- one test
    def run(self, plan: TestPlan, bound: frozenset[str], prefetched: object = None) -> tuple[TestStatus, str | None]:
        """Verdict of one test. ``prefetched``: the child's answer for the plan's (eager) probe, already read."""
        self._fresh = prefetched is None
        if plan.kind == "invalid":
            return TestStatus.ERROR, plan.error
        try:
            if plan.kind == "statement":
                self.fallback = True
                self._send({"op": "exec", "src": plan.source})
                return TestStatus.PASS, None
            if plan.setup:
                self._send({"op": "exec", "src": plan.setup})
                bound = bound | plan.imported
            if prefetched is not None:
                probe = lambda k, **local: self._answer(prefetched)  # noqa: E731 - eager plans have one probe
            else:
                probe = lambda k, **local: self.probe(plan.probes[k].source, local)  # noqa: E731
            namespace: dict = {"__builtins__": _PARENT_BUILTINS, "__binop__": guarded_binop, "__probe__": probe}
            for module in plan.modules:
                if module in bound:  # otherwise the name stays undefined, as in plain Python
                    namespace[module] = importlib.import_module(module)
            holds = bool(eval(plan.code, namespace))
        except SandboxInterrupt:
            raise
        except ChildFailure as exc:
            return TestStatus.ERROR, str(exc)
        except Unverifiable as exc:
            return TestStatus.ERROR, f"unverifiable: {exc}"[: self.cap]
        except Exception as exc:  # raised by the check itself on plain values, as plain Python would
            return TestStatus.ERROR, f"{type(exc).__name__}: {exc}"[: self.cap]
        return (TestStatus.PASS, None) if holds else (TestStatus.FAIL, "AssertionError")

