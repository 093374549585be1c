"""The judge: runs one program's tests and makes their verdicts, in a sandboxed process of its own.

Test sources are hostile input too (a dataset on the hub, a label sent over HTTP), so nothing of a test
runs in the engine's process. Each program gets a fresh judge, forked by the worker's judge zygote (see
``JudgeZygote``), running under a uid of its own (neither the engine's nor the programs'), with no
writable file, no network, the seccomp filter plus no signals, sockets or new processes, and an address
space limit. The judge runs the plans of ``planner.py`` with real Python semantics: each ``__probe__(k)``
asks the program's child (over a socket the engine handed over) for the value of one program expression,
which comes back as plain data (``values.py``). The engine only ever receives the verdict stream below,
small frames of a fixed shape that it checks field by field, and kills the judge when a verdict is late:
a check that runs C code for minutes (``sum(range(10**18))``), floods a set with colliding hashes or
backtracks in a regex costs one test (``check too expensive``), never the trainer.

When the child's value is not plain data (a custom object, a function) it is represented by a
:class:`RemoteObject` that forwards harmless operations (attribute access, calls, iteration, ``len``,
``str``) to the child, whose answers are again plain data. The operations a lying object could use to win
(``==``/``<`` against a plain value, arithmetic, membership) are refused as *unverifiable*: the test fails
with that reason. Two cases only the program's own code can decide, as in plain Python: truthiness of a
custom object and a comparison between two objects that both live in the child (two instances of the
program's dataclass). They run in the child and are counted as fallbacks; ``strict`` refuses them.

Verdict stream (judge -> engine), one frame each, in this order:
  {"k": "load", "ok": true, "code": str|null}            the program loaded (salvaged code when asked)
  {"k": "load", "ok": false, "status": S, "error": str}  it did not (S: syntax_error, runtime_error,
                                                         memory, timeout)
  {"k": "t", "i": n, "s": "pass|fail|error|timeout", "e": str|null, "fb": 0|1, "mem": 0|1}
                                                         test n's verdict (a timeout ends the stream)
  {"k": "died", "i": n, "malformed": bool}               the child died (or wrote garbage) during test n
                                                         (-1: while loading); ends the stream
  {"k": "end"}                                           no more tests for this child
"""

from __future__ import annotations

import builtins
import operator
import sys
import time

import io_tests
import planner
import protocol
import values


class ChildTimeout(Exception):
    """The child did not answer before the test's deadline."""


class CheckTooExpensive(Exception):
    """The test's time ran out in the judge's own work, before it asked the child anything more: the check
    is what is slow (a product of 8-million-bit integers), not the program."""


class ChildGone(Exception):
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


_INTERRUPTS = (ChildTimeout, ChildGone, CheckTooExpensive)
_CHECKS = {
    "truth": lambda answer, _: answer,
    "not": lambda answer, _: not answer,
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Is": operator.is_,
    "IsNot": operator.is_not,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
}
# Longest a coalescing judge holds a verdict back (far below runner.JUDGE_GRACE_S: the engine's deadline for
# the next frame counts from the last one it got).
COALESCE_S = 0.05


class RemoteObject:
    """Stand-in for an object that only exists in the child (see the module docstring)."""

    __slots__ = ("_ev", "_opaque")

    def __init__(self, evaluator: "Evaluator", opaque: values.Opaque) -> None:
        object.__setattr__(self, "_ev", evaluator)
        object.__setattr__(self, "_opaque", opaque)

    def _remote(
        self, kind: str, args: tuple = (), name: str | None = None, kwargs: dict | None = None
    ) -> object:
        return self._ev.apply(kind, self, args, name=name, kwargs=kwargs or {})

    def _compare(self, other: object, op: str, reflected_default: bool | None) -> object:
        if isinstance(other, RemoteObject):
            if not (self._opaque.native and other._opaque.native):
                self._ev.program_decides("a comparison between two of the program's objects")
            return self._remote("compare", (other,), name=op)
        if reflected_default is not None and self._opaque.default_eq:
            return (
                reflected_default  # identity semantics: a child-only object is never equal to a plain value
            )
        raise Unverifiable(
            f"a {self._opaque.type_name} object with custom comparison was compared with a plain value"
        )

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
        if not self._opaque.native:  # a C type's truth (re.Match) is not the program's to decide
            self._ev.program_decides("the truth value of one of the program's objects")
        return bool(self._remote("truth"))

    def __len__(self) -> int:
        n = self._remote("len")  # no __len__ raises TypeError here too: list() and friends then just iterate
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

    def __str__(self) -> str:
        return _as_str(self._remote("str"))

    def __repr__(self) -> str:
        return _as_str(self._remote("repr"))

    __hash__ = None  # type: ignore[assignment]


class RemoteCallable(RemoteObject):
    """A remote object that is callable in the child (a function, a class): ``callable()`` tells it apart."""

    __slots__ = ()

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._remote("call", args, kwargs=kwargs)


def _as_str(value: object) -> str:
    if type(value) is not str:
        raise Unverifiable("str()/repr() of a child object did not give a str")
    return value


def _restricted_import(
    name: str, globals: object = None, locals: object = None, fromlist: object = (), level: int = 0
) -> object:
    """``import`` in a test: the allowed test modules only (the judge's own copies)."""
    if level != 0 or name.split(".")[0] not in planner.JUDGE_MODULES:
        raise ImportError(f"a test may not import {name!r} in the judge")
    return builtins.__import__(name, globals, locals, fromlist, level)


_BUILTINS = {name: getattr(builtins, name) for name in planner.JUDGE_BUILTINS if hasattr(builtins, name)}
_BUILTINS["__import__"] = _restricted_import


# ----------------------------------------------------------------------------------------------- evaluator
class Evaluator:
    """Evaluates the tests of one loaded program, one request to the child per program expression."""

    def __init__(self, child: protocol.FrameReader, error_cap: int, strict: bool) -> None:
        self.child = child
        self.cap = error_cap
        self.strict = strict
        self.deadline = 0.0
        self.fallback = False
        self.memory = False
        self._fresh = True
        self._sent: list = []
        self._encoder = values.Encoder()
        self.entry: planner.Probe | None = None  # a function-call row's call (io_tests.entry_probe)

    # -- messages
    def ask(self, message: dict | None) -> object:
        """One answer from the child (sending ``message`` first unless it is None: an answer already due)."""
        if message is not None and time.monotonic() >= self.deadline:
            raise CheckTooExpensive()
        try:
            if message is not None:
                protocol.send(self.child.sock, message)
            return self.child.recv(self.deadline)
        except protocol.ChannelTimeout:
            raise ChildTimeout() from None
        except (protocol.ChannelClosed, OSError):
            raise ChildGone() from None
        except protocol.ProtocolError:
            raise ChildGone(malformed=True) from None

    def _send(self, message: dict) -> object:
        message["fresh"] = self._fresh
        self._fresh = False
        return self.answer(self.ask(message))

    def start_test(self, fresh: bool) -> None:
        """A new test: the child forgets its objects and its copies of the test's values (``fresh``)."""
        self._fresh = fresh
        self._sent = []  # the test's own values passed to the child, numbered as values.py says

    def answer(self, reply: object) -> object:
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise ChildFailure("protocol", "malformed answer from the sandbox")
        if not reply["ok"]:
            kind = reply.get("kind") if isinstance(reply.get("kind"), str) else "exception"
            error = reply.get("error") if isinstance(reply.get("error"), str) else "error"
            if kind == "memory":
                self.memory = True
            raised = _PROGRAM_EXCEPTIONS.get(reply.get("type")) if kind == "exception" else None
            if raised is not None:  # as in plain Python: the test's `pytest.raises` or `except` may expect it
                message = reply.get("message")
                exc = raised(message if isinstance(message, str) else "")
                exc.program_error = error[: self.cap]  # the verdict's text, as the child described it
                raise exc
            raise ChildFailure(kind, error[: self.cap])
        try:
            if self._sent:  # identity with the values the test passed, and what the call did to them
                value = values.decode_answer(reply.get("v"), reply.get("mut", {}), self._sent)
            else:
                value = values.decode(reply.get("v"))
        except (values.DecodeError, values.NotInPlace) as exc:
            raise ChildFailure("protocol", str(exc)) from None
        if isinstance(value, values.Opaque):
            return (RemoteCallable if value.callable else RemoteObject)(self, value)
        return value

    def _ref(self, value: object) -> list:
        if isinstance(value, RemoteObject):
            return ["slot", value._opaque.slot]
        encoded = self._encoder.encode(value, collect=self._sent)
        self._encoder.slots.clear()
        if encoded[0] == "o":
            raise Unverifiable(f"cannot pass a {type(value).__name__} from the test to the program")
        return ["val", encoded]

    def probe(self, probe: planner.Probe, local_values: dict) -> object:
        message: dict = {"op": "exec" if probe.statement else "probe", "src": probe.source, "code": probe.code}
        if local_values:
            message["locals"] = {k: self._ref(v) for k, v in local_values.items()}
        result = self._send(message)
        return None if probe.statement else result

    def apply(
        self, kind: str, target: RemoteObject, args: tuple, *, name: str | None, kwargs: dict
    ) -> object:
        message: dict = {
            "op": "apply",
            "kind": kind,
            "target": self._ref(target),
            "args": [self._ref(a) for a in args],
        }
        if name is not None:
            message["name"] = name
        if kwargs:
            message["kwargs"] = {k: self._ref(v) for k, v in kwargs.items()}
        return self._send(message)

    def program_decides(self, what: str) -> None:
        """Only the program's own code can answer (see the module docstring): counted, or refused (strict)."""
        if self.strict:
            raise Unverifiable(f"{what} is decided by the program's own code (strict mode)")
        self.fallback = True

    # -- one test
    def run(
        self, plan: planner.TestPlan, modules: dict[str, object], prefetched: object = None
    ) -> tuple[str, str | None]:
        """Verdict of one test. ``prefetched``: the child's answer for the plan's (eager) probe, already read.
        ``modules``: the real modules the judge supplies for the plan's implicit module names."""
        self.start_test(prefetched is None)
        if plan.kind == "invalid":
            return "error", plan.error
        try:
            if plan.kind == "stdin":  # io_tests.py: the program's stdout, compared as data
                out = self._send({"op": "script", "stdin": plan.source, "max_output": io_tests.MAX_OUTPUT})
                return _verdict(io_tests.stdout_matches(out, plan.check[1], plan.check[2]))
            if plan.kind == "call":  # its return value, compared as data
                (args, expected), shape = plan.check[1], plan.check[2]
                answer = self.probe(self.entry, {io_tests.ARGS: args})
                return _verdict(io_tests.call_matches(answer, expected, shape))
            if plan.setup:
                self._send({"op": "exec", "src": plan.setup})
            probes = plan.probes
            if prefetched is not None:
                probe = lambda k, /, **local: self.answer(prefetched)  # noqa: E731 - eager plans have one probe
            else:
                probe = lambda k, /, **local: self.probe(probes[k], local)  # noqa: E731
            namespace: dict = {
                "__builtins__": _BUILTINS,
                "__name__": "__test__",
                "__probe__": probe,
                "__exec__": lambda k, /, **local: self.probe(probes[k], local),
            }
            for name in plan.modules:
                if name in modules:  # otherwise the name stays undefined, as in plain Python
                    namespace[name] = modules[name]
            if plan.check is not None:  # a data check (planner._literal_check): no code to run
                holds = data_check(plan.check, lambda: probe(0), modules)
            elif plan.kind == "expr":
                holds = bool(eval(plan.code, namespace))
            else:
                exec(plan.code, namespace)
                holds = True
        except _INTERRUPTS:
            raise
        except ChildFailure as exc:
            return "error", str(exc)
        except Unverifiable as exc:
            return "error", f"unverifiable: {exc}"[: self.cap]
        except AssertionError:
            return "fail", "AssertionError"
        except MemoryError:
            return "error", "check too expensive: out of memory"
        except RecursionError:
            return "error", "RecursionError: maximum recursion depth exceeded"
        except BaseException as exc:  # raised by the check itself, as plain Python would (SystemExit too)
            return "error", _describe(exc, self.cap)
        return ("pass", None) if holds else ("fail", "AssertionError")


# Builtin exceptions a program's call may raise in the judge, in its place (the others stay ChildFailure).
_PROGRAM_EXCEPTIONS = {
    name: cls
    for name, cls in vars(builtins).items()
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, (MemoryError, RecursionError))
}


_RAISED_TYPES = frozenset(_PROGRAM_EXCEPTIONS.values())


def _verdict(holds: bool) -> tuple[str, str | None]:
    return ("pass", None) if holds else ("fail", "wrong output")


def data_check(check: tuple, answer, modules: dict[str, object]) -> bool:
    """Make a check planned as data (``planner._literal_check``) on the program's answer (``answer()``
    fetches it), with the builtins and operators the compiled test would use, in the same order, so that
    the outcome, or the exception and its message, is the one plain Python gives."""
    op, expected, first, wrap = check
    if op == "isclose":
        isclose = getattr(modules.get("math"), "isclose", None)
        if isclose is None:  # `math` is looked up before the call's arguments: undefined, as in Python
            raise NameError("name 'math' is not defined")
        value, options = expected
        a = answer()
        return bool(isclose(a, value, **dict(options)) if first else isclose(value, a, **dict(options)))
    a = answer()
    if wrap is not None:
        a = _BUILTINS[wrap](a)
    if op == "abs_lt" or op == "abs_le":
        value, tolerance = expected
        distance = abs(a - value) if first else abs(value - a)
        return bool(distance < tolerance if op == "abs_lt" else distance <= tolerance)
    return bool(_CHECKS[op](a, expected) if first else _CHECKS[op](expected, a))


def _describe(exc: BaseException, cap: int) -> str:
    program_error = getattr(exc, "program_error", None) if type(exc) in _RAISED_TYPES else None
    if isinstance(program_error, str):  # a program's exception raised here (Evaluator.answer)
        return program_error[:cap]
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # a test's own exception class may have a hostile __str__
        text = f"{type(exc).__name__} (unprintable)"
    return text[:cap] if isinstance(text, str) else "exception (unprintable)"


# ------------------------------------------------------------------------------------------ one program
class ProgramJudge:
    """The judge's whole life: load the program in the child, judge tests from ``start``, report each."""

    def __init__(
        self, host, child_sock, request: dict, plans: list[planner.TestPlan], hand_over=None
    ) -> None:
        self.host = host
        # Given by the judge zygote when it judges a literal row itself (JudgeZygote._judge_here): forks a
        # judge that goes on with this program (True in that judge, False in the zygote), for when the
        # program's bindings turn a literal check into test code (see _run). Test code never runs in the
        # zygote.
        self.hand_over = hand_over
        # Verdicts written together (one write, one wake-up of the engine) unless COALESCE_S has passed since
        # the last write: only where no check can stall (the judge zygote's literal rows). A forked judge
        # writes each at once: killed in a stalled check, it must not take earlier verdicts with it.
        self.coalesce = hand_over is not None
        self._pending: list[bytes] = []
        self._written = time.monotonic()
        self.child = protocol.FrameReader(child_sock)
        self.request = request
        self.plans = plans
        self.timeout = float(request["timeout"])
        self.cap = time.monotonic() + float(request["cap_s"])
        self.stop_first = bool(request.get("stop_first"))
        self.ev = Evaluator(self.child, int(request["error_cap"]), bool(request.get("strict")))
        self.max_depth = int(request["max_depth"])

    def emit(self, frame: dict) -> None:
        self._pending.append(protocol.encode(frame))
        if not self.coalesce or time.monotonic() - self._written > COALESCE_S:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self.host.sendall(data)
        self._written = time.monotonic()

    def run(self) -> None:
        """Judge the program and write every verdict (see the module docstring for the stream)."""
        try:
            self._run()
        finally:
            self.flush()

    def _run(self) -> None:
        start = int(self.request["start"])
        plans = self.plans
        first = self._eager_run(plans, start)
        names = sorted(set().union(*(p.names for p in plans[start:])))
        # Names whose binding by the program changes a plan: builtins the tests use (the program may redefine
        # them) and the tests' program names (the program may bind one to a module the judge knows).
        io = next((p for p in plans if p.kind in io_tests.MODES), None)  # a tests object's row (io_tests.py)
        watch = sorted(set(names) & planner.JUDGE_BUILTINS) if io is None else []
        aliases = sorted(set(names) - planner.JUDGE_BUILTINS - planner.IMPLICIT_MODULES) if io is None else []
        self.ev.deadline = min(time.monotonic() + self.timeout, self.cap)
        message = {
            "op": "load",
            "code": self.request["code"],
            "salvage": bool(self.request.get("salvage")),
            "names": names,
            "then": [_wire(plans[k].probes[0]) for k in first],
            "unless_bound": watch,
            "unless_module": aliases,
        }
        if io is not None:
            message.update(script=io.kind == "stdin", preamble=io.setup)
        if isinstance(self.request.get("module"), str):  # a pytest file imports the program by this name
            message["module"] = self.request["module"]
        try:
            reply = self.ev.ask(message)
        except ChildTimeout:
            self.emit(
                {
                    "k": "load",
                    "ok": False,
                    "status": "timeout",
                    "error": f"running the program took over {self.timeout:g} s",
                }
            )
            return
        except ChildGone as exc:
            self.emit({"k": "died", "i": -1, "malformed": exc.malformed})
            return
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            kind = reply.get("kind") if isinstance(reply, dict) else None
            error = str(reply.get("error", "error")) if isinstance(reply, dict) else "error"
            status = {"syntax": "syntax_error", "memory": "memory"}.get(kind, "runtime_error")
            self.emit({"k": "load", "ok": False, "status": status, "error": error[: self.ev.cap]})
            return
        bound = {n for n in reply.get("bound", ()) if isinstance(n, str)}
        found = reply.get("modules") if isinstance(reply.get("modules"), dict) else {}
        code = (
            reply.get("code") if self.request.get("salvage") and isinstance(reply.get("code"), str) else None
        )
        self.emit({"k": "load", "ok": True, "code": code})
        if io is not None and io.kind == "call":
            self.ev.entry = io_tests.entry_probe(io.check[3], bound)
        modules = self._modules(bound, found)
        queued = first  # tests whose probe answers are on their way (one batch request)
        shadowed = frozenset(bound & planner.JUDGE_BUILTINS)
        aliased = frozenset(n for n in found if n in aliases and n in modules)
        if shadowed or aliased:  # the child did not run the batch (see child.Harness.serve)
            plans = [
                planner.plan_test(p.source, self.max_depth, shadowed & p.names, aliased & p.names)
                if p.kind != "invalid"
                else p
                for p in plans
            ]
            queued = []
            if self.hand_over is not None and any(not p.literal and p.kind != "invalid" for p in plans[start:]):
                # The program's `import numpy as np` makes a test's `np.sum(f(x))` the judge's own numpy, so
                # the check is test code now, and test code never runs in the judge zygote: a judge forked
                # here goes on with the program.
                self.flush()
                if not self.hand_over():
                    return
                self.hand_over, self.coalesce = None, False
        self._judge(plans, start, queued, modules)

    def _modules(self, bound: set[str], found: dict) -> dict[str, object]:
        """The judge's own objects for the names the program binds to what the judge knows: the tests'
        implicit module names (``math``), and whatever the child found to be an allowed module or a public
        attribute of one (``np`` for numpy, ``Decimal``, ``approx``: see child._module_path)."""
        out: dict[str, object] = {}
        for name in bound & planner.IMPLICIT_MODULES:
            out[name] = load_module(name)
        for name, path in found.items():
            if name not in out and isinstance(path, str):
                out[name] = _resolve(path)
        return {k: v for k, v in out.items() if v is not None}

    def _judge(self, plans: list[planner.TestPlan], i: int, queued: list[int], modules: dict) -> None:
        ev = self.ev
        while i < len(plans):
            now = time.monotonic()
            if now >= self.cap:
                break
            ev.deadline = min(now + self.timeout, self.cap)
            ev.fallback = False
            ev.memory = False
            try:
                if not queued:
                    queued = self._request_batch(plans, i)
                prefetched = None
                if queued:
                    queued.pop(0)
                    prefetched = ev.ask(None)
                    value = prefetched.get("v") if isinstance(prefetched, dict) else None
                    if isinstance(value, list) and value and value[0] == "o":
                        queued = []  # the child stopped the batch here (see child.Harness.batch)
                status, error = ev.run(plans[i], modules, prefetched)
            except ChildTimeout:
                self.emit({"k": "t", "i": i, "s": "timeout", "e": None, "fb": 0, "mem": 0})
                return
            except ChildGone as exc:
                self.emit({"k": "died", "i": i, "malformed": exc.malformed})
                return
            except CheckTooExpensive:
                status, error = "error", f"check too expensive: no verdict within {self.timeout:g} s"
            self.emit(
                {"k": "t", "i": i, "s": status, "e": error, "fb": int(ev.fallback), "mem": int(ev.memory)}
            )
            i += 1
            if status != "pass" and self.stop_first:
                break
        self.emit({"k": "end"})

    def _eager_run(self, plans: list[planner.TestPlan], i: int) -> list[int]:
        """The run of eager tests starting at ``i``, when it is worth a batch (2 or more tests)."""
        j = i
        while j < len(plans) and plans[j].eager and not (self.stop_first and j > i):
            j += 1
        return list(range(i, j)) if j - i >= 2 else []

    def _request_batch(self, plans: list[planner.TestPlan], i: int) -> list[int]:
        """Ask for the probes of the run of eager tests starting at ``i`` in one request."""
        run = self._eager_run(plans, i)
        if run:
            try:
                protocol.send(
                    self.child.sock, {"op": "batch", "probes": [_wire(plans[k].probes[0]) for k in run]}
                )
            except OSError:
                raise ChildGone() from None
        return run


def _wire(probe: planner.Probe) -> list[str]:
    """A probe as a batch carries it to the child: [source, compiled code] (see ``child.Harness.batch``)."""
    return [probe.source, probe.code]


def _resolve(path: str) -> object | None:
    """The judge's own object at ``module[.attribute]``, for an allowed module only."""
    root, _, attr = path.partition(".")
    if root not in planner.JUDGE_MODULES or "." in attr:
        return None
    module = load_module(root)
    return getattr(module, attr, None) if attr and module is not None else module


def load_module(name: str) -> object | None:
    try:
        __import__(name)
    except Exception:  # not installed here: the name stays undefined in the test, as without the module
        return None
    return sys.modules.get(name)
