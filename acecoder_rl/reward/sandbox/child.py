"""The untrusted side: one forked child per program, serving its judge's requests.

Runs inside the sandbox as a top-level module next to ``protocol.py`` and ``values.py`` (stdlib only).
The child never sees a test's expected value and never decides a verdict: it ``exec``s the program into a
fresh namespace (``{}``, so ``__name__`` is not ``"__main__"``, as AceCoder and human-eval run it), then
evaluates the *probe* expressions its judge sends (the parts of each test that call the program) and
answers with their values in plain-data form. Its only peer is the judge (``judge.py``), another sandboxed
process under another uid: anything the program does to this harness (stack walking, replacing functions,
writing to the socket) can at worst corrupt its own answers, which the judge checks against values the
child never had, and nothing the child sends is ever read as a verdict.

Requests (judge -> child), one JSON frame each:
  {"op": "load", "code": str, "salvage": bool, "names": [str], "then": [[src, code]], "unless_bound": [str],
   "unless_module": [str]}     run the program; reply with which of "names" it binds ("bound") and which of
                               those hold an allowed module or an attribute of one ("modules", see
                               _module_path); then, unless it bound one of "unless_bound" or bound one of
                               "unless_module" to such a module, evaluate the "then" probes as a batch
  {"op": "probe", "src": str, "code": str, "locals": {name: ref}, "fresh": bool}
                               evaluate an expression in the program's namespace ("code": "src" compiled
                               by the judge, see _probe_code); "fresh" starts a new test
  {"op": "batch", "probes": [[src, code]]}  the probes of consecutive one-probe tests, answered one frame each
  {"op": "load", "code": str, "script": true, "preamble": str}   compile the program only (stdin tests)
  {"op": "script", "stdin": str, "max_output": n}  run it as a script on that stdin; answer its stdout
  {"op": "exec", "src": str, "code": str, "locals": {name: ref}, "fresh": bool}
                               run a statement of the test on the program's objects (``f.cache = {}``, the
                               test's imports); it answers None
  {"op": "apply", "kind": ..., "target": ref, "args": [ref], "name": str}
                               an operation on an object only the child holds (see ``Harness._apply``)
A ref is ["slot", n] (an object kept from an earlier answer of this test) or ["val", encoded value]; the
values the judge passes keep their identity, and an answer reports how the call changed them ("mut", see
values.py). Every reply carries "ok" plus either "v" (an encoded value) or "error"/"kind".
"""
from __future__ import annotations

import binascii
import builtins
import marshal
import operator
import sys

import protocol
import values
from judge_modules import JUDGE_MODULES

_ModuleType = type(sys)
_BuiltinFunction = type(len)
_Function = type(lambda: None)
_COMPARE_OPS = {
    "Eq": operator.eq, "NotEq": operator.ne, "Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt,
    "GtE": operator.ge, "Is": operator.is_, "IsNot": operator.is_not,
    "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b,
}


def _describe(exc: BaseException, cap: int) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # a hostile __str__ may raise anything
        text = "exception (unprintable)"
    if not isinstance(text, str):
        text = "exception (unprintable)"
    return text[:cap]


def _probe_code(request: dict, mode: str) -> object:
    """The code of a probe (or of a test's statement): compiled by the judge's planner once per row
    ("code": marshal, base64; the judge is this process's only peer), else compiled here from "src"."""
    code = request.get("code")
    if code:
        return marshal.loads(binascii.a2b_base64(code))
    return compile(request["src"], "<test>", mode)


def _fresh_fd(target: int, data: bytes) -> None:
    """Make ``target`` a new memory file holding ``data``, read from its start."""
    import os

    fd = os.memfd_create("stdio")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    if fd != target:  # the program may have closed ``target`` (``open(0).read()`` does when collected)
        os.dup2(fd, target)
        os.close(fd)


def _join_threads() -> None:
    """A script ends when its last non-daemon thread does (the ``threading.Thread(target=main)`` idiom of
    contest solutions that need a larger stack)."""
    threading = sys.modules.get("threading")
    if threading is None:
        return
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()


def _error_reply(exc: BaseException, cap: int) -> dict:
    # type(), not isinstance(): an exception can claim any __class__
    kind = ("memory" if issubclass(type(exc), MemoryError) else
            "recursion" if issubclass(type(exc), RecursionError) else "exception")
    reply = {"ok": False, "kind": kind, "error": _describe(exc, cap)}
    if kind == "exception":  # the builtin class it is (or derives from): the judge raises one of those
        for cls in type(exc).__mro__:
            if getattr(builtins, getattr(cls, "__name__", ""), None) is cls:
                reply["type"] = cls.__name__
                try:
                    message = str(exc)
                except BaseException:  # a hostile __str__
                    message = ""
                reply["message"] = message[:cap] if isinstance(message, str) else ""
                break
    return reply


def _module_path(value: object) -> str | None:
    """``"numpy"`` for the numpy module, ``"decimal.Decimal"`` for that class: where the judge finds its own
    copy of ``value``, if ``value`` is a module of JUDGE_MODULES or a public attribute of one."""
    if type(value) is _ModuleType:
        registered = dict.get(object.__getattribute__(value, "__dict__"), "__name__")
        if type(registered) is str and registered in JUDGE_MODULES and sys.modules.get(registered) is value:
            return registered
        return None
    if not isinstance(value, (type, _BuiltinFunction, _Function)):
        return None
    attrs = type.__dict__ if isinstance(value, type) else None
    module = attrs["__module__"].__get__(value) if attrs else getattr(value, "__module__", None)
    qualname = attrs["__qualname__"].__get__(value) if attrs else getattr(value, "__qualname__", None)
    if type(module) is not str or type(qualname) is not str or "." in qualname:
        return None
    root = module.split(".")[0].lstrip("_")  # _pytest.python_api.approx is pytest.approx
    home = sys.modules.get(root)
    if root in JUDGE_MODULES and type(home) is _ModuleType:
        if dict.get(object.__getattribute__(home, "__dict__"), qualname) is value:
            return f"{root}.{qualname}"
    return None


def salvage_code(code: str) -> str:
    """The longest run of consecutive lines that compiles (what evalplus' ``code_extract`` keeps)."""
    lines = code.splitlines()
    best = (0, 0)
    for start in range(len(lines)):
        if len(lines) - start <= best[1] - best[0]:
            break
        for end in range(len(lines), start, -1):
            if end - start <= best[1] - best[0]:
                break
            try:
                compile("\n".join(lines[start:end]), "<program>", "exec")
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                continue
            best = (start, end)
            break
    return "\n".join(lines[best[0]:best[1]])


class Harness:
    def __init__(self, sock, error_cap: int) -> None:
        self.sock = sock
        self.cap = error_cap
        self.namespace: dict = {}
        self.encoder = values.Encoder()
        self.created: list = []  # the child's copies of the values the judge passed in this test
        self.script: object = None  # the program compiled as a script (stdin/stdout tests), and its preamble
        self.preamble: object = None

    def serve(self) -> None:
        while True:
            try:
                request = protocol.recv(self.sock)
            except Exception:
                return
            if request.get("op") == "batch":
                if not self.batch(request["probes"]):
                    return
                continue
            try:
                reply = self.handle(request)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt, hostile exceptions...
                reply = _error_reply(exc, self.cap)
            try:
                protocol.send(self.sock, reply)
            except BaseException:
                return
            # A load may carry the first batch of probes; it runs only if the program bound none of the
            # names that would change them, judged on the same "bound" list the parent just received.
            then = request.get("then") if request.get("op") == "load" else None
            blocked = set(reply.get("bound", ())) & set(request.get("unless_bound", ()))
            blocked |= set(reply.get("modules", ())) & set(request.get("unless_module", ()))
            if then and reply.get("ok") and not blocked:
                if not self.batch(then):
                    return

    def batch(self, probes: list) -> bool:
        """Evaluate the probes of consecutive tests, one answer frame each, as the parent would ask them one
        by one. Stops after an opaque answer: the parent then needs this test's object before the next
        test may run. Returns False when the parent has gone."""
        for source, code in probes:
            try:
                reply = self.handle({"op": "probe", "src": source, "code": code, "fresh": True})
            except BaseException as exc:
                reply = _error_reply(exc, self.cap)
            try:
                protocol.send(self.sock, reply)
            except BaseException:
                return False
            if reply.get("ok") and reply["v"][0] == "o":
                break
        return True

    def handle(self, request: dict) -> dict:
        op = request["op"]
        if request.get("fresh"):
            self.encoder.slots.clear()
            self.created = []
        if op == "load":
            if request.get("script"):
                return self.load_script(request["code"], request.get("salvage", False), request.get("preamble"))
            if isinstance(request.get("module"), str):
                self._as_module(request["module"])
            return self.load(request["code"], request.get("salvage", False), request.get("names", []),
                             request.get("preamble"))
        if op == "script":
            return self.run_script(request["stdin"], int(request["max_output"]))
        if op == "probe":
            code = _probe_code(request, "eval")
            local = {k: self._ref(r) for k, r in request.get("locals", {}).items()}
            before = self._snapshot()
            return self._value(eval(code, self.namespace, local) if local else eval(code, self.namespace), before)
        if op == "exec":
            code = _probe_code(request, "exec")
            local = {k: self._ref(r) for k, r in request.get("locals", {}).items()}
            before = self._snapshot()
            exec(code, self.namespace, local) if local else exec(code, self.namespace)
            return self._value(None, before)
        if op == "apply":
            return self.apply(request)
        return {"ok": False, "kind": "protocol", "error": f"unknown op {op!r}"}

    def _snapshot(self) -> list | None:
        """The content of every value the judge passed in this test, before the program runs again."""
        return values.snapshot(self.created, self.encoder) if self.created else None

    def load(self, code: str, salvage: bool, names: list, preamble: str | None = None) -> dict:
        if salvage:
            code = salvage_code(code)
        try:
            compiled = compile(code, "<program>", "exec")
        except (SyntaxError, ValueError) as exc:
            return {"ok": False, "kind": "syntax", "error": _describe(exc, self.cap)}
        if preamble:  # the names a dataset's solutions assume (io_tests.PREAMBLES), in the same namespace
            exec(compile(preamble, "<preamble>", "exec"), self.namespace)
        exec(compiled, self.namespace)
        bound = [n for n in names if isinstance(n, str) and n in self.namespace]
        return {"ok": True, "v": ["N"], "bound": bound, "modules": self._modules(bound),
                "code": code if salvage else None}

    def _as_module(self, name: str) -> None:
        """Load the program as module ``name`` too (a test file's ``from solution import f``)."""
        module = _ModuleType(name)
        self.namespace = module.__dict__
        sys.modules[name] = module

    def load_script(self, code: str, salvage: bool, preamble: str | None) -> dict:
        """Compile the program to run as a script once per stdin test (``run_script``); nothing runs yet."""
        if salvage:
            code = salvage_code(code)
        try:
            self.script = compile(code, "<program>", "exec")
        except (SyntaxError, ValueError) as exc:
            return {"ok": False, "kind": "syntax", "error": _describe(exc, self.cap)}
        self.preamble = compile(preamble, "<preamble>", "exec") if preamble else None
        return {"ok": True, "v": ["N"], "bound": [], "modules": {}, "code": code if salvage else None}

    def run_script(self, stdin: str, max_output: int) -> dict:
        """Run the program as ``__main__`` with ``stdin`` on fd 0 and fd 1 captured; answer its stdout.

        Both are memory files (fd 0 holds the input from its start, so every way of reading stdin reads it;
        fd 1 keeps everything written, by ``print`` or ``os.write(1, ...)``), fresh for each test, as is the
        namespace. ``exit()``/``sys.exit(0)`` end the run normally; any other exit status is an error, as on
        a contest judge. The file size limit caps what a program can write."""
        import builtins
        import os

        _fresh_fd(0, stdin.encode("utf-8", "surrogatepass"))
        _fresh_fd(1, b"")
        sys.stdin = sys.__stdin__ = open(0, "r", encoding="utf-8", errors="surrogateescape", closefd=False)
        sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        try:
            if self.preamble is not None:
                exec(self.preamble, namespace)
            exec(self.script, namespace)
            _join_threads()
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
        finally:
            sys.stdout.flush()
        size = os.fstat(1).st_size
        if size > max_output:
            return {"ok": False, "kind": "exception", "error": f"output of {size} bytes is over the "
                                                              f"{max_output}-byte limit"}
        return {"ok": True, "v": ["s", os.pread(1, size, 0).decode("utf-8", "replace")]}

    def _modules(self, bound: list) -> dict:
        """Which bound names hold a module the judge knows, or a public attribute of one, and which (its
        dotted path): the judge then uses its own copy (a program's ``import numpy as np`` or
        ``from decimal import Decimal``, named by a test). Only the type slots and the modules' own
        dictionaries are read: a program's object cannot run code here (not that it would gain anything:
        the judge only ever takes its own copy of what a path names)."""
        found = {}
        for name in bound:
            try:
                path = _module_path(self.namespace.get(name))
            except Exception:  # a hostile object: then it is just the program's own value
                path = None
            if path is not None:
                found[name] = path
        return found

    def _ref(self, ref: list) -> object:
        if ref[0] == "slot":
            return self.encoder.slots[ref[1]]
        return values.decode(ref[1], created=self.created, refs=self.created)

    def apply(self, request: dict) -> dict:
        """An operation the judge could not do on plain data: on objects only this process holds."""
        target = self._ref(request["target"])
        args = [self._ref(r) for r in request.get("args", [])]
        kwargs = {k: self._ref(r) for k, r in request.get("kwargs", {}).items()}
        before = self._snapshot()
        return self._value(self._apply(request["kind"], request.get("name"), target, args, kwargs), before)

    @staticmethod
    def _apply(kind: str, name: object, target: object, args: list, kwargs: dict) -> object:
        if kind == "getattr":
            return getattr(target, name)
        if kind == "call":
            return target(*args, **kwargs)
        if kind == "getitem":
            return target[args[0]]
        if kind == "iter":
            return list(target)
        if kind == "len":
            return len(target)
        if kind == "truth":
            return bool(target)
        if kind == "str":
            return str(target)
        if kind == "repr":
            return repr(target)
        if kind == "compare":
            return bool(_COMPARE_OPS[name](target, args[0]))
        raise ValueError(f"unknown apply kind {kind!r}")

    def _value(self, value: object, before: list | None = None) -> dict:
        """The answer: ``value`` as plain data; with values of the judge's in play (``before``: their content
        before the call), those met in ``value`` as references to the judge's own objects, and how the call
        changed them (see values.py, "Identity and mutation")."""
        try:
            if before is None:
                return {"ok": True, "v": self.encoder.encode(value)}
            known = {id(obj): k for k, obj in enumerate(self.created)}
            tree = self.encoder.encode(value, known=known)
            reply = {"ok": True, "v": tree}
            changes = values.mutations(self.created, before, self.encoder)
            if changes:
                reply["mut"] = changes
            return reply
        except values.EncodeError as exc:
            return {"ok": False, "kind": "too_large", "error": str(exc)[: self.cap]}


def run(sock, error_cap: int) -> None:
    """Serve until the parent closes the socket, then leave without running atexit or finalisers."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    try:
        Harness(sock, error_cap).serve()
    finally:
        import os

        os._exit(0)
