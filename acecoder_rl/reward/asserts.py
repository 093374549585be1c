"""Turning a test string into a check the trusted parent can evaluate.

A test such as ``assert abs(area(r) - 3.14) < 1e-2`` is split at the boundary between the program and the
test: every maximal access chain rooted at a name the *program* defines (``area(r)``, ``obj.method(1)[0]``,
``Cls(2).x``) becomes a *probe*, evaluated in the sandbox child; everything else (the comparison, the
arithmetic, the expected value ``3.14``, comprehensions, builtin calls) stays in the parent, which runs the
rewritten expression ``abs(__probe__(0) - 3.14) < 1e-2`` with real Python semantics on plain-data values.
The child therefore never sees an expected value, and an object with a lying ``__eq__``/``__sub__`` never
takes part in the comparison (see ``verdict.py``).

Size-amplifying operators (``**``, ``*``, ``<<``) on values from the program are routed through a guard so
that a program cannot make the *parent* allocate or compute without bound.

Tests that are not a single ``assert`` (rare; AceCode tests are one-line asserts) run whole inside the child:
a logged fallback, counted in ``ProgramOutcome.fallback_tests``.
"""
from __future__ import annotations

import ast
import builtins
import functools
from dataclasses import dataclass

# Modules a test may use by name; the parent supplies the real module when the program has bound the name
# (otherwise the name is undefined, as in plain Python).
TEST_MODULES = frozenset(
    "math cmath string collections itertools functools operator decimal fractions statistics heapq "
    "bisect json re datetime copy".split()
)

# Builtins the parent evaluates itself. The rest (open, exec, input, __import__, ...) is left to the child.
PARENT_BUILTINS = frozenset(
    "abs all any ascii bin bool bytearray bytes callable chr complex dict divmod enumerate filter float "
    "format frozenset hash hex int isinstance issubclass iter len list map max min next oct ord pow range "
    "repr reversed round set slice sorted str sum tuple type zip None True False Ellipsis NotImplemented "
    "ArithmeticError AssertionError AttributeError Exception IndexError KeyError LookupError TypeError "
    "ValueError ZeroDivisionError".split()
)

_GUARDED_OPS = {ast.Pow: "Pow", ast.Mult: "Mult", ast.LShift: "LShift"}


@dataclass(frozen=True)
class Probe:
    source: str  # expression text evaluated in the child, in the program's namespace
    local_names: tuple[str, ...]  # names bound by the test itself (comprehension variables) it needs


@dataclass(frozen=True)
class TestPlan:
    """How to check one test. ``kind``: ``assert`` (split), ``statement`` (whole in child), ``invalid``."""

    __test__ = False  # not a pytest test class

    source: str
    kind: str
    code: object | None = None  # compiled rewritten expression (kind == "assert")
    probes: tuple[Probe, ...] = ()
    modules: tuple[str, ...] = ()  # TEST_MODULES names the parent must supply
    error: str | None = None
    setup: str | None = None  # leading import statements (``import math; assert ...``), run in the child first
    imported: frozenset[str] = frozenset()  # names those imports bind
    eager: bool = False  # the single probe is always evaluated, and first: its value may be fetched in advance
    names: frozenset[str] = frozenset()  # every name the test loads (see test_names)


def test_names(source: str) -> frozenset[str]:
    """Every name a test loads (used to ask the child which of them the program binds).

    Taken from the test's plan, so that each test is parsed once (the plan is cached)."""
    return compile_test(source).names


def entry_names(tests: list[str]) -> list[str]:
    """Names the tests call that are not builtins or modules: what the program must define."""
    found: dict[str, None] = {}
    for source in tests:
        for name in sorted(test_names(source)):
            if name not in PARENT_BUILTINS and name not in TEST_MODULES and not hasattr(builtins, name):
                found.setdefault(name)
    return list(found)


def _walk(tree: ast.AST) -> list[ast.AST]:
    """Every node under ``tree`` (``ast.walk``'s nodes, as a list, in a fraction of its time)."""
    nodes = [tree]
    for node in nodes:  # the list grows while it is iterated: breadth first
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                nodes.extend([v for v in value if isinstance(v, ast.AST)])
            elif isinstance(value, ast.AST):
                nodes.append(value)
    return nodes


def _located(new: ast.AST, like: ast.AST) -> ast.AST:
    """Give a node built here, and the nodes built with it, ``like``'s position (compile needs one)."""
    for node in _walk(new):
        if "lineno" in node._attributes and not hasattr(node, "lineno"):
            ast.copy_location(node, like)
    return new


class _Splitter(ast.NodeTransformer):
    def __init__(self, source: str, program_names: frozenset[str], local_names: frozenset[str]) -> None:
        self.source = source
        self.program_names = program_names
        self.local_names = local_names
        self.probes: list[Probe] = []
        self._in_fstring = 0

    def _rooted_in_program(self, node: ast.AST) -> bool:
        while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return isinstance(node, ast.Name) and node.id in self.program_names

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.expr) and self._rooted_in_program(node):
            return self._probe(node)
        return super().visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        self._in_fstring += 1  # Python 3.11 gives the nodes inside an f-string unreliable positions
        try:
            return self.generic_visit(node)
        finally:
            self._in_fstring -= 1

    def _probe_source(self, node: ast.expr) -> str:
        """The probe's own text in the test (``ast.unparse`` rebuilds the same expression ~6x slower)."""
        segment = None if self._in_fstring else ast.get_source_segment(self.source, node)
        if segment is None:
            return ast.unparse(node)
        # A chain broken over lines inside the test's brackets needs brackets of its own to stand alone.
        return f"({segment})" if "\n" in segment else segment

    def _probe(self, node: ast.expr) -> ast.expr:
        # Names bound by the test *around* the probe (an enclosing comprehension's variable) travel with it;
        # names a comprehension *inside* the probe binds are the child's own business.
        used: list[str] = []
        if self.local_names:  # most tests bind no names at all: skip the walks
            inner = _walk(node)
            outer = self.local_names - _bound_locally(inner)
            used = sorted({n.id for n in inner if isinstance(n, ast.Name)} & outer)
        self.probes.append(Probe(self._probe_source(node), tuple(used)))
        call = ast.Call(
            func=ast.Name("__probe__", ast.Load()),
            args=[ast.Constant(len(self.probes) - 1)],
            keywords=[ast.keyword(arg=name, value=ast.Name(name, ast.Load())) for name in used],
        )
        return _located(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = _GUARDED_OPS.get(type(node.op))
        if op is None:
            return node
        call = ast.Call(func=ast.Name("__binop__", ast.Load()), args=[ast.Constant(op), node.left, node.right],
                        keywords=[])
        return _located(call, node)


def _bound_locally(nodes: list[ast.AST]) -> frozenset[str]:
    """Names a test expression (given as all its nodes) binds itself: comprehension targets, lambda
    arguments, walrus targets."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.comprehension):
            names |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Lambda):
            a = node.args
            names |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        elif isinstance(node, ast.NamedExpr):
            names.add(node.target.id)
    return frozenset(names)


@functools.lru_cache(maxsize=65536)
def compile_test(source: str, shadowed: frozenset[str] = frozenset()) -> TestPlan:
    """Plan for one test. ``shadowed``: builtin names the program redefines.

    A redefined builtin is the program's only in a test that calls nothing else of the program: there it is
    the function under test (MBPP's ``def sum(a, b)`` tested by ``assert sum(10, 15) == 6``). In a test that
    also calls the program (``abs(f(x) - y) < tol``) the builtin wraps the program's answer or computes the
    expected value, so the parent keeps the real one: otherwise ``def abs(x): return 0`` would pass."""
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return TestPlan(source, "invalid", error=f"test does not parse: {type(exc).__name__}: {exc}"[:300])
    *imports, last = tree.body or [None]
    if not isinstance(last, ast.Assert) or not all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in imports):
        return TestPlan(source, "statement", names=_load_names(_walk(tree)))
    # Imports carry no expected value: they run in the child (binding names in the program's namespace, as
    # plain Python would) and the assert is split as usual.
    imported = frozenset((a.asname or a.name).split(".")[0] for s in imports for a in s.names)
    setup = "\n".join(ast.unparse(s) for s in imports) or None
    expr = last.test  # the message is only evaluated on failure and cannot change the verdict
    nodes = _walk(expr)
    names = _load_names(nodes) | (_load_names(_walk(last.msg)) if last.msg is not None else frozenset())
    local = _bound_locally(nodes)
    loaded = {n.id for n in nodes if isinstance(n, ast.Name)}
    program = frozenset(n for n in loaded - local if n not in PARENT_BUILTINS and n not in TEST_MODULES)
    if not program:
        program = frozenset((loaded - local) & shadowed)
    splitter = _Splitter(source, program, local)
    rewritten = splitter.visit(expr)
    try:
        code = compile(ast.Expression(body=rewritten), "<test>", "eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # parses, cannot compile: `yield`
        return TestPlan(source, "invalid", error=f"test does not compile: {type(exc).__name__}: {exc}"[:300],
                        names=names)
    modules = tuple(sorted((loaded - local - program) & TEST_MODULES))
    return TestPlan(source, "assert", code=code, probes=tuple(splitter.probes), modules=modules, setup=setup,
                    imported=imported, eager=setup is None and _probe_runs_first(rewritten, splitter.probes),
                    names=names)


def _load_names(nodes: list[ast.AST]) -> frozenset[str]:
    return frozenset(n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))


_SHORT_CIRCUIT = (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.ListComp, ast.SetComp, ast.DictComp,
                  ast.GeneratorExp)
_CANNOT_RAISE = (ast.Constant, ast.Name, ast.Load, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.expr_context)


def _probe_runs_first(expr: ast.expr, probes: list[Probe]) -> bool:
    """True when evaluating the test always calls its one probe before anything that could raise.

    Then the child may evaluate a whole run of such probes in one go (one round trip instead of one per
    test) and the program sees exactly the calls, in exactly the order, plain Python would make."""
    if len(probes) != 1 or probes[0].local_names:
        return False
    nodes = _walk(expr)
    call = next(n for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                and n.func.id == "__probe__")
    start = (call.lineno, call.col_offset)
    for node in nodes:
        if isinstance(node, _SHORT_CIRCUIT) or (isinstance(node, ast.Compare) and len(node.ops) > 1):
            return False
        end = (getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
        if end[0] is not None and end <= start and not isinstance(node, _CANNOT_RAISE):
            return False  # evaluated before the probe and might raise, so the probe might never run
    return True
