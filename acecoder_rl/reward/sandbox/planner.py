"""Turning a test source into a plan the judge can run: the program boundary marked in the test itself.

A test (``assert abs(area(r) - 3.14) < 1e-2``, or a whole source: assignments, several asserts, loops,
helper functions, HumanEval's ``def check(candidate): ...`` followed by ``check(f)``) is rewritten so that
every maximal access chain rooted at a name the *program* provides (``area(r)``, ``obj.method(1)[0]``,
``Cls(2).x``, a bare ``f``) becomes ``__probe__(k, name=name, ...)``: an expression evaluated in the
program's sandboxed child, whose answer comes back as plain data (``values.py``). Everything else, the
comparison, the arithmetic, the expected value, the test's own imports and helpers, runs in the judge with
real Python semantics, so the program never sees an expected value and its objects never take part in a
comparison unless both sides are its own (see ``judge.py``). A statement that assigns to a program object
(``f.cache = {}``) runs in the child as ``__exec__(k, ...)``; it carries no verdict.

Names: a name the test binds anywhere (assignment, ``def``, parameter, loop or comprehension variable,
import of an allowed module) is the test's; a builtin the judge provides is the judge's; a module of
:data:`JUDGE_MODULES` used without an import is the judge's real module when the program binds the name (as
plain Python would let the test see the program's ``import math``); every other name is the program's.
The test's module-level imports also run in the child first, so that they bind names in the program's
namespace as they would in plain Python; imports of other modules (``os``) run only there, and their names
are the program's.

Runs inside the sandbox (the judge zygote plans each row once; its judges inherit the plans): standard
library only. Plans past the limits below refuse the whole row (:class:`RowRefused`).
"""

from __future__ import annotations

import ast
import binascii
import builtins
import functools
import marshal
from dataclasses import dataclass

try:  # in the sandbox the scripts are top-level modules side by side
    from judge_modules import IMPLICIT_MODULES, JUDGE_MODULES
except ImportError:  # imported from the package (its tests)
    from acecoder_rl.reward.sandbox.judge_modules import IMPLICIT_MODULES, JUDGE_MODULES

# Builtins the judge evaluates itself; the rest (open, exec, eval, input, print, globals, exit, ...)
# touches the program's world and is the program's: a chain rooted in one is probed in the child.
_EXCEPTIONS = [n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)]
JUDGE_BUILTINS = frozenset(
    "abs all any ascii bin bool bytearray bytes callable chr complex dict divmod enumerate filter float "
    "format frozenset getattr hasattr hash hex id int isinstance issubclass iter len list map max min next "
    "object oct ord pow property range repr reversed round set slice sorted staticmethod classmethod str "
    "sum super tuple type zip None True False Ellipsis NotImplemented __build_class__ __import__ "
    "__name__".split()
    + _EXCEPTIONS
)


class RowRefused(Exception):
    """A test is past a documented limit: the whole row is refused (never scored in part)."""


@dataclass(frozen=True)
class Probe:
    source: str  # text evaluated (or, for ``statement``, executed) in the child, in the program's namespace
    local_names: tuple[str, ...]  # names bound by the test that it uses: sent along with it
    statement: bool = False
    code: str = ""  # the source compiled here, once per row (marshal, base64): the child need not compile it


def _compiled(source: str, statement: bool) -> str:
    """A probe's code for the child (see ``child._probe_code``); "" when it does not compile, which the child
    then reports as plain Python would."""
    try:
        code = compile(source, "<test>", "exec" if statement else "eval", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    return binascii.b2a_base64(marshal.dumps(code), newline=False).decode("ascii")


@dataclass(frozen=True)
class TestPlan:
    """How to judge one test. ``kind``: ``expr`` (a lone assert: ``code`` evaluates its condition),
    ``module`` (``code`` is the whole rewritten source, run with ``exec``) or ``invalid`` (``error``)."""

    __test__ = False  # not a pytest test class

    source: str
    kind: str
    code: object | None = None
    probes: tuple[Probe, ...] = ()
    modules: tuple[str, ...] = ()  # IMPLICIT_MODULES names the judge supplies when the program binds them
    imports: tuple[str, ...] = ()  # JUDGE_MODULES the test imports itself (loaded before the fork)
    setup: str | None = None  # the test's module-level imports, run in the child first
    error: str | None = None
    eager: bool = False  # a lone probe always evaluated first: its value may be fetched in advance
    names: frozenset[str] = frozenset()  # every name the test loads (the child says which the program binds)
    check: tuple | None = None  # a check made without code: (operator, expected, answer first, wrap)

    @property
    def literal(self) -> bool:
        """The program's one answer checked against literals (``_literal_check``): no test code runs, bounded
        work (the judge zygote may make the check itself, without forking a judge: see judge_zygote.py)."""
        return self.check is not None


def pack_plans(plans: list[TestPlan]) -> bytes:
    """A row's plans as bytes (``marshal``: code objects included), for a judge forked before they existed."""
    return marshal.dumps(
        tuple(
            (
                p.source,
                p.kind,
                p.code,
                tuple((q.source, q.local_names, q.statement, q.code) for q in p.probes),
                p.modules,
                p.imports,
                p.setup,
                p.error,
                p.eager,
                p.names,
                p.check,
            )
            for p in plans
        )
    )


def unpack_plans(data: bytes) -> list[TestPlan]:
    """The inverse of :func:`pack_plans` (the bytes come from the judge zygote, never from a test)."""
    plans = []
    for source, kind, code, probes, *rest in marshal.loads(data):
        plans.append(TestPlan(source, kind, code, tuple(Probe(*q) for q in probes), *rest))
    return plans


def plan_row(tests: list[str], max_depth: int) -> list[TestPlan]:
    """Plans for a row's tests as they are before the program is known; raises :class:`RowRefused`."""
    return [plan_test(t, max_depth) for t in tests]


def plan_pytest(spec: dict, max_depth: int) -> list[TestPlan]:
    """Plans for a pytest-style file (``labels.PytestTests``): test ``k`` is the whole file followed by a
    call of its k-th test function, so the file's own helpers, imports and module-level values are there.
    The host found the names by a scan of the text; the parsed file must define exactly those (else the
    row is refused). A test function that takes fixtures, is decorated (``pytest.mark.parametrize``) or is
    ``async`` fails alone, with the reason."""
    source, names = spec.get("source"), spec.get("names")
    if not isinstance(source, str) or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RowRefused("malformed pytest tests")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        error = f"test file does not parse: {type(exc).__name__}: {exc}"[:300]
        return [TestPlan(f"{name}()", "invalid", error=error) for name in names]
    except (RecursionError, MemoryError) as exc:
        raise RowRefused(f"the test file is too deeply nested to parse ({type(exc).__name__})") from None
    functions: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            functions.setdefault(node.name, node)
    if list(functions) != names:
        raise RowRefused("the test file's top-level test functions are not the ones its text shows")
    plans = []
    for name, node in functions.items():
        a = node.args
        params = [x.arg for x in a.posonlyargs + a.args][: len(a.posonlyargs + a.args) - len(a.defaults)]
        params += [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
        reason = (
            "async test functions are not run (no event loop)" if isinstance(node, ast.AsyncFunctionDef)
            else f"uses the fixture(s) {', '.join(params)}, which are not supported" if params
            else "decorated test functions (pytest.mark.parametrize, fixtures) are not supported"
            if node.decorator_list else None
        )
        if reason is not None:
            plans.append(TestPlan(f"{name}()", "invalid", error=f"{name}: {reason}"))
        else:
            plans.append(plan_test(f"{source}\n{name}()", max_depth))
    return plans


@functools.lru_cache(maxsize=65536)
def plan_test(
    source: str,
    max_depth: int,
    shadowed: frozenset[str] = frozenset(),
    program_modules: frozenset[str] = frozenset(),
) -> TestPlan:
    """Plan for one test.

    ``shadowed``: builtins the program redefines. Such a name is the program's only in a test that calls
    nothing else of the program: there it is the function under test (MBPP's ``def sum(a, b)`` tested by
    ``assert sum(10, 15) == 6``). In a test that also calls the program (``abs(f(x) - y) < tol``) it wraps
    the program's answer or computes the expected value, so the judge keeps the real one.
    ``program_modules``: names the program binds to a real module of :data:`JUDGE_MODULES` (its
    ``import numpy as np``): the judge uses its own copy of that module for them."""
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError) as exc:
        return TestPlan(source, "invalid", error=f"test does not parse: {type(exc).__name__}: {exc}"[:300])
    except (RecursionError, MemoryError) as exc:
        raise RowRefused(f"a test is too deeply nested to parse ({type(exc).__name__})") from None
    nodes, depth = _walk_depth(tree)
    if depth > max_depth:
        raise RowRefused(f"a test is nested {depth} levels deep (limit {max_depth})")
    names, bound, import_nodes = _scan(nodes)
    judge_imports, child_imports = _imports(import_nodes)
    imported = _import_names(import_nodes)
    bound = (bound | imported) - child_imports  # names the test itself binds
    free = names - bound
    program = frozenset(
        n for n in free if n not in JUDGE_BUILTINS and n not in IMPLICIT_MODULES and n not in program_modules
    )
    if not program:
        program = free & shadowed
    setup = (
        "\n".join(ast.unparse(s) for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))) or None
    )
    modules = tuple(sorted((free - program) & (IMPLICIT_MODULES | program_modules)))
    imports = tuple(sorted({m for m in judge_imports}))
    # Imported names reach a probe through the child's own copy of the import (``setup``), not as values.
    splitter = _Splitter(source, program, bound - imported)
    body = [s for s in map(_judge_part, tree.body) if s is not None]
    lone = [s for s in body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    if setup is None and len(body) == 1 and isinstance(body[0], ast.Assert):
        check = _literal_check(body[0].test, splitter)
        if check is not None:  # AceCode's `assert f(x) == y`: nothing to compile
            return TestPlan(
                source,
                "expr",
                None,
                tuple(splitter.probes),
                modules,
                imports,
                None,
                None,
                True,
                names,
                check,
            )
        splitter.probes.clear()  # the general way below splits it again
    try:
        if len(lone) == 1 and isinstance(lone[0], ast.Assert) and len(body) == 1:
            expr = splitter.visit(lone[0].test)  # the message is only evaluated on failure: no verdict
            code = compile(ast.Expression(body=expr), "<test>", "eval")
            eager = setup is None and _probe_runs_first(expr, splitter.probes)
            return TestPlan(
                source,
                "expr",
                code,
                tuple(splitter.probes),
                modules,
                imports,
                setup,
                None,
                eager,
                names,
            )
        module = ast.Module(body=[splitter.visit(s) for s in body], type_ignores=[])
        code = compile(module, "<test>", "exec")
    except (SyntaxError, ValueError) as exc:  # parses, cannot compile: `yield` outside a function
        return TestPlan(
            source, "invalid", error=f"test does not compile: {type(exc).__name__}: {exc}"[:300], names=names
        )
    except (RecursionError, MemoryError) as exc:
        raise RowRefused(f"a test is too deeply nested to compile ({type(exc).__name__})") from None
    return TestPlan(
        source, "module", code, tuple(splitter.probes), modules, imports, setup, None, False, names
    )


# --------------------------------------------------------------------------------------------- analysis
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


def _walk_depth(tree: ast.AST) -> tuple[list[ast.AST], int]:
    """``_walk``'s nodes and the tree's nesting depth, in one pass without recursion (a hostile test may be
    thousands of levels deep)."""
    nodes = [tree]
    depths = [1]
    for node, d in zip(nodes, depths):  # both lists grow while they are iterated: breadth first
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                children = [v for v in value if isinstance(v, ast.AST)]
                nodes.extend(children)
                depths.extend([d + 1] * len(children))
            elif isinstance(value, ast.AST):
                nodes.append(value)
                depths.append(d + 1)
    return nodes, depths[-1]


def _imports(import_nodes: list[ast.AST]) -> tuple[frozenset[str], frozenset[str]]:
    """(JUDGE_MODULES roots the test imports anywhere, names bound by the test's imports of other modules)."""
    judge: set[str] = set()
    child: set[str] = set()
    for node in import_nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                (judge.add(root) if root in JUDGE_MODULES else child.add(alias.asname or root))
        elif isinstance(node, ast.ImportFrom):
            root = (node.module or "").split(".")[0]
            if node.level == 0 and root in JUDGE_MODULES:
                judge.add(root)
            else:
                child.update(a.asname or a.name for a in node.names)
    return frozenset(judge), frozenset(child)


def _judge_part(stmt: ast.stmt) -> ast.stmt | None:
    """What the judge runs of a module-level statement: an import keeps only its JUDGE_MODULES names
    (the others are the child's alone, see the module docstring); None when nothing is left."""
    if isinstance(stmt, ast.Import):
        kept = [a for a in stmt.names if a.name.split(".")[0] in JUDGE_MODULES]
        return (
            None
            if not kept
            else stmt
            if len(kept) == len(stmt.names)
            else ast.copy_location(ast.Import(names=kept), stmt)
        )
    if isinstance(stmt, ast.ImportFrom):
        return stmt if stmt.level == 0 and (stmt.module or "").split(".")[0] in JUDGE_MODULES else None
    return stmt


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in _walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _scan(nodes: list[ast.AST]) -> tuple[frozenset[str], frozenset[str], list[ast.AST]]:
    """One pass over a test's nodes: (the names it loads, the names it binds other than by an import: stores,
    ``def``/``class``, parameters, ``except ... as``, ``global``, match captures; its import statements)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    imports: list[ast.AST] = []
    for node in nodes:
        kind = type(node)
        if kind is ast.Name:
            (loaded if type(node.ctx) is ast.Load else bound).add(node.id)
        elif kind in _DEFINITIONS:
            bound.add(node.name)
        elif kind is ast.arguments:
            bound.update(a.arg for a in node.posonlyargs + node.args + node.kwonlyargs)
            bound.update(a.arg for a in (node.vararg, node.kwarg) if a is not None)
        elif kind in _IMPORTS:
            imports.append(node)
        elif kind is ast.ExceptHandler or kind in _CAPTURES:
            if node.name:
                bound.add(node.name)
        elif kind is ast.Global or kind is ast.Nonlocal:
            bound.update(node.names)
        elif kind is ast.MatchMapping and node.rest:
            bound.add(node.rest)
    return frozenset(loaded), frozenset(bound), imports


_DEFINITIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})
_IMPORTS = frozenset({ast.Import, ast.ImportFrom})
_CAPTURES = frozenset({ast.MatchAs, ast.MatchStar})


def _import_names(import_nodes: list[ast.AST]) -> frozenset[str]:
    return frozenset((a.asname or a.name).split(".")[0] for node in import_nodes for a in node.names)


def _located(new: ast.AST, like: ast.AST) -> ast.AST:
    """Give a node built here, and the nodes built with it, ``like``'s position (compile needs one)."""
    for node in _walk(new):
        if "lineno" in node._attributes and not hasattr(node, "lineno"):
            ast.copy_location(node, like)
    return new


_STORES = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)


class _Splitter(ast.NodeTransformer):
    def __init__(self, source: str, program_names: frozenset[str], test_names: frozenset[str]) -> None:
        self.source = source
        self.program_names = program_names
        self.test_names = test_names
        self.probes: list[Probe] = []
        self._in_fstring = 0
        self._one_ascii_line = source.isascii() and "\n" not in source and "\r" not in source

    def rooted(self, node: ast.AST) -> bool:
        """Is ``node`` a whole probe (a chain rooted at a program name, read, not stored)?"""
        return isinstance(getattr(node, "ctx", ast.Load()), ast.Load) and self._rooted_in_program(node)

    def _rooted_in_program(self, node: ast.AST) -> bool:
        while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return isinstance(node, ast.Name) and node.id in self.program_names

    def visit(self, node: ast.AST) -> ast.AST:
        if (
            isinstance(node, ast.expr)
            and isinstance(getattr(node, "ctx", ast.Load()), ast.Load)
            and self._rooted_in_program(node)
        ):
            return self._probe(node, statement=False)
        if isinstance(node, _STORES) and any(self._rooted_in_program(t) for t in _store_targets(node)):
            return _located(
                ast.Expr(self._probe(node, statement=True)), node
            )  # `f.cache = {}`: the child's business
        return super().visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        self._in_fstring += 1  # Python 3.11 gives the nodes inside an f-string unreliable positions
        try:
            return self.generic_visit(node)
        finally:
            self._in_fstring -= 1

    def _probe_source(self, node: ast.AST) -> str:
        """The probe's own text in the test (``ast.unparse`` rebuilds the same expression ~6x slower)."""
        if self._in_fstring:
            segment = None
        elif self._one_ascii_line:  # offsets are UTF-8 bytes; for one ASCII line they index the text itself
            segment = self.source[node.col_offset : node.end_col_offset]
        else:
            segment = ast.get_source_segment(self.source, node)
        if segment is None or (isinstance(node, ast.stmt) and getattr(node, "col_offset", 0)):
            return ast.unparse(node)
        # A chain broken over lines inside the test's brackets needs brackets of its own to stand alone.
        return f"({segment})" if "\n" in segment and isinstance(node, ast.expr) else segment

    def _probe(self, node: ast.AST, statement: bool) -> ast.expr:
        # Names the test binds that the probe uses travel with it; names a comprehension *inside* the probe
        # binds are the child's own business.
        used: list[str] = []
        if self.test_names:  # most tests bind no names at all: skip the walks
            inner = _walk(node)
            outer = self.test_names - _bound_inside(inner)
            used = sorted({n.id for n in inner if isinstance(n, ast.Name)} & outer)
        source = self._probe_source(node)
        self.probes.append(Probe(source, tuple(used), statement, _compiled(source, statement)))
        call = ast.Call(
            func=ast.Name("__exec__" if statement else "__probe__", ast.Load()),
            args=[ast.Constant(len(self.probes) - 1)],
            keywords=[ast.keyword(arg=name, value=ast.Name(name, ast.Load())) for name in used],
        )
        return _located(call, node)


def _store_targets(node: ast.stmt) -> list[ast.AST]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, ast.Delete):
        return list(node.targets)
    return [node.target]  # AugAssign, AnnAssign


def _bound_inside(nodes: list[ast.AST]) -> frozenset[str]:
    """Names an expression (given as all its nodes) binds itself: comprehension targets, lambda
    arguments, walrus targets."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.comprehension):
            names |= _target_names(node.target)
        elif isinstance(node, ast.Lambda):
            a = node.args
            names |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        elif isinstance(node, ast.NamedExpr):
            names.add(node.target.id)
    return frozenset(names)


_SHORT_CIRCUIT = (
    ast.BoolOp,
    ast.IfExp,
    ast.Lambda,
    ast.NamedExpr,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
_CANNOT_RAISE = (ast.Constant, ast.Name, ast.Load, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.expr_context)


_LITERAL_NODES = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Load)
_CHECK_OPERATORS = {
    ast.Eq: "Eq",
    ast.NotEq: "NotEq",
    ast.Is: "Is",
    ast.IsNot: "IsNot",
    ast.In: "In",
    ast.NotIn: "NotIn",
}
# Builtins a data check may apply to the answer or to the literal (MBPP's `set(f(x)) == set([1, 2])`,
# HumanEval's `tuple(f(x)) == tuple([1, 2])`): bounded work on plain data, nothing of the program's runs.
DATA_WRAPS = frozenset({"set", "frozenset", "tuple", "list", "sorted", "len"})
_CLOSE_OPTIONS = frozenset({"rel_tol", "abs_tol"})
_NOT_LITERAL = object()


def _literal_check(expr: ast.expr, splitter: "_Splitter") -> tuple | None:
    """The check of a lone assert made of the program's one answer and literals only, as data
    ``(operator, expected, answer first, wrap)``; its one probe goes to ``splitter.probes``. None for any
    other shape. The shapes (``A`` the answer, ``L`` a literal of constants and displays, ``W`` one of
    :data:`DATA_WRAPS`, never the program's):
      ``A``, ``not A``                                     ("truth"/"not", None, True, None)
      ``W(A) OP L``, ``L OP W(A)`` (W optional on either side; OP one of == != is is not in not in)
                                                           (OP's name, L (W applied), A on the left, W)
      ``math.isclose(A, L, rel_tol=L, abs_tol=L)`` (either order)   ("isclose", (L, options), A first, None)
      ``abs(A - L) < L``, ``abs(L - A) <= L``             ("abs_lt"/"abs_le", (L, tolerance), A - L, None)
    The judge applies the same builtins and operators to the decoded answer (``judge.data_check``), so the
    verdict and its error are the ones the compiled test would give."""
    shape = _check_shape(expr, splitter)
    if shape is None:
        return None
    answer, check = shape
    if not splitter.rooted(answer):
        return None
    splitter.visit(answer)
    if len(splitter.probes) != 1 or splitter.probes[0].local_names:
        return None
    return check


def _check_shape(expr: ast.expr, splitter: "_Splitter") -> tuple[ast.expr, tuple] | None:
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return expr.operand, ("not", None, True, None)
    if isinstance(expr, ast.Call) and _is_judge_attribute(expr.func, "math", "isclose", splitter):
        return _isclose(expr, splitter)
    if not isinstance(expr, ast.Compare):
        return expr, ("truth", None, True, None)
    if len(expr.ops) != 1:
        return None
    kind, left, right = type(expr.ops[0]), expr.left, expr.comparators[0]
    if kind is ast.Lt or kind is ast.LtE:
        return _abs_within(left, right, "abs_lt" if kind is ast.Lt else "abs_le", splitter)
    if kind not in _CHECK_OPERATORS:
        return None
    first = splitter.rooted(_unwrap(left, splitter)[0])
    answer, wrap = _unwrap(left if first else right, splitter)
    value = _literal_value(right if first else left, splitter)
    return None if value is _NOT_LITERAL else (answer, (_CHECK_OPERATORS[kind], value, first, wrap))


def _is_judge_name(node: ast.AST, names: frozenset[str] | set[str], splitter: "_Splitter") -> bool:
    return isinstance(node, ast.Name) and node.id in names and node.id not in splitter.program_names


def _is_judge_attribute(node: ast.AST, module: str, attribute: str, splitter: "_Splitter") -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attribute
        and _is_judge_name(node.value, {module}, splitter)
    )


def _unwrap(node: ast.expr, splitter: "_Splitter") -> tuple[ast.expr, str | None]:
    """``W(x)`` -> (x, W) for a wrap of :data:`DATA_WRAPS`; anything else -> (node, None)."""
    if (
        isinstance(node, ast.Call)
        and _is_judge_name(node.func, DATA_WRAPS, splitter)
        and len(node.args) == 1
        and not node.keywords
        and not isinstance(node.args[0], ast.Starred)
    ):
        return node.args[0], node.func.id
    return node, None


def _literal_value(node: ast.expr, splitter: "_Splitter") -> object:
    """The value of a literal, or of ``W(literal)``; _NOT_LITERAL for anything else (or a literal that
    does not evaluate, such as ``{[1]: 2}``: the general way gives its error)."""
    inner, wrap = _unwrap(node, splitter)
    if not _is_literal(inner):
        return _NOT_LITERAL
    try:
        value = ast.literal_eval(inner)
        return getattr(builtins, wrap)(value) if wrap is not None else value
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _number(node: ast.expr, splitter: "_Splitter") -> object:
    value = _literal_value(node, splitter)
    return value if type(value) in (int, float) else _NOT_LITERAL


def _isclose(call: ast.Call, splitter: "_Splitter") -> tuple[ast.expr, tuple] | None:
    if len(call.args) != 2 or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    options = []
    for keyword in call.keywords:
        value = _number(keyword.value, splitter)
        if keyword.arg not in _CLOSE_OPTIONS or value is _NOT_LITERAL:
            return None
        options.append((keyword.arg, value))
    if len({name for name, _ in options}) != len(options):
        return None
    first = splitter.rooted(call.args[0])
    value = _number(call.args[1] if first else call.args[0], splitter)
    if value is _NOT_LITERAL:
        return None
    return call.args[0] if first else call.args[1], ("isclose", (value, tuple(options)), first, None)


def _abs_within(left: ast.expr, right: ast.expr, op: str, splitter: "_Splitter") -> tuple | None:
    tolerance = _number(right, splitter)
    if (
        tolerance is _NOT_LITERAL
        or not isinstance(left, ast.Call)
        or not _is_judge_name(left.func, {"abs"}, splitter)
        or len(left.args) != 1
        or left.keywords
        or not isinstance(left.args[0], ast.BinOp)
        or not isinstance(left.args[0].op, ast.Sub)
    ):
        return None
    a, b = left.args[0].left, left.args[0].right
    first = splitter.rooted(a)
    value = _number(b if first else a, splitter)
    if value is _NOT_LITERAL:
        return None
    return a if first else b, (op, (value, tolerance), first, None)


def _is_literal(node: ast.AST) -> bool:
    """Constants and displays, signed numbers, and complex numbers written ``a + bj`` (as ast.literal_eval)."""
    for n in _walk(node):
        if (
            isinstance(n, ast.UnaryOp)
            and isinstance(n.op, (ast.USub, ast.UAdd))
            and isinstance(n.operand, ast.Constant)
        ):
            continue
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            continue  # literal_eval accepts only number +/- complex and refuses the rest
        if not isinstance(n, _LITERAL_NODES) and not isinstance(n, (ast.USub, ast.UAdd, ast.Add, ast.Sub)):
            return False
    return True


def _probe_runs_first(expr: ast.expr, probes: list[Probe]) -> bool:
    """True when evaluating the test always calls its one probe before anything that could raise.

    Then the child may evaluate a whole run of such probes in one go (one round trip instead of one per
    test) and the program sees exactly the calls, in exactly the order, plain Python would make."""
    if len(probes) != 1 or probes[0].local_names or probes[0].statement:
        return False
    nodes = _walk(expr)
    call = next(
        n
        for n in nodes
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "__probe__"
    )
    start = (call.lineno, call.col_offset)
    for node in nodes:
        if isinstance(node, _SHORT_CIRCUIT) or (isinstance(node, ast.Compare) and len(node.ops) > 1):
            return False
        end = (getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
        if end[0] is not None and end <= start and not isinstance(node, _CANNOT_RAISE):
            return False  # evaluated before the probe and might raise, so the probe might never run
    return True
