"""Plain-data encoding of values crossing the sandbox boundary.

The untrusted child evaluates the parts of a test that call the program and sends back the *values*; the
trusted judge decodes them and makes the verdict with Python's own semantics. The encoding is a tagged JSON
tree that can only ever decode to builtin data, to exact standard-library classes, to classes this module
creates itself (subclasses of a builtin base with no method of their own, namedtuple classes) or to an
:class:`Opaque` marker. So a program cannot smuggle an object whose ``__eq__``/``__bool__`` lies into the
comparison, and decoding never runs code the program controls (no pickle, no call, no attribute access).

The encoder (child side) reads a value only through its builtin base type's own slots (``list.__iter__``,
``int.__int__``, the stdlib classes' C descriptors...) and reads classes through ``type``'s own descriptors
and raw class dicts, never through a method, property or metaclass hook the program may define.

Tags (every node is a JSON list whose first item is the tag; ``node`` is a nested node)::

    ["N"]                          None
    ["b", 0|1]                     bool
    ["i", hex]                     int (hex text: no decimal-digit limit, linear to parse)
    ["f", float.hex]               float (nan/inf included)
    ["c", re_hex, im_hex]          complex
    ["s", str]                     str
    ["y", hex] / ["Y", hex]        bytes / bytearray
    ["l", [node]] / ["t", [node]]  list / tuple
    ["d", [[key, value]]]          dict, insertion order
    ["S", [node]] / ["F", [node]]  set / frozenset
    ["r", hex, hex, hex]           range (start, stop, step)
    ["T", name]                    a builtin type by name ("int") or a tagged stdlib class by qualified
                                   name ("collections.OrderedDict", "decimal.Decimal"...)
    ["od", [[key, value]]]         collections.OrderedDict, in its own order (move_to_end included)
    ["ctr", [[key, value]]]        collections.Counter
    ["dd", factory, [[k, v]]]      collections.defaultdict; factory is ["N"] or a "T" node: a factory that
                                   is not a builtin type or a tagged stdlib class (a lambda, a program
                                   class) is sent as None, so the judge's copy raises KeyError there
    ["dq", maxlen|null, [node]]    collections.deque
    ["dec", str]                   decimal.Decimal, exact (its str: sign, NaN payload, sNaN, Infinity)
    ["frac", num_hex, den_hex]     fractions.Fraction (each part at most MAX_FRACTION_BITS bits)
    ["date", y, m, d]              datetime.date
    ["dt", y, m, d, H, M, S, us, fold, tz|null]   datetime.datetime
    ["time", H, M, S, us, fold, tz|null]           datetime.time
    ["td", days, seconds, us]      datetime.timedelta
    ["tz", td_node, name|null]     datetime.timezone (fixed offset; name only when one was given). A
                                   datetime/time whose tzinfo is any other class is opaque.
    ["dk", [node]] / ["di", [[k, v]]]   dict.keys() / dict.items() views (of a private dict on the judge)
    ["nt", module, qualname, name, "f1 f2", [node]]
                                   a namedtuple instance (collections.namedtuple, typing.NamedTuple, or a
                                   subclass of one): decoded to a namedtuple class made here with the same
                                   names and fields, one class per (names, fields)
    ["sub", module, qualname, name, content]
                                   an instance of any other subclass of a builtin type or of a tagged
                                   stdlib class (``class L(list)``, IntEnum/StrEnum members, an int with a
                                   lying ``__eq__``): content is the node of its base type's value. Decoded
                                   to an instance of a subclass of that base made here (``__name__``,
                                   ``__qualname__``, ``__module__`` as the program's, ``__slots__ = ()``,
                                   no method of its own), one class per (base, names): it behaves exactly
                                   like the base in every operation, but ``type(x) is list`` is false and
                                   two values of one program class have the same judge-side class. Extra
                                   instance state and the program's own methods are not carried.
    ["o", type_name, ident, default_eq, slot, callable, hashable, native]
                                   not plain data (:class:`Opaque`); only as the whole value
    ["@", k]                       refs[k] itself: identity with the other side's objects (below); a
                                   DecodeError without refs or with k out of range
    ["^", j]                       the j-th tracked container built in this same tree, in pre-order
                                   (aliasing and self-reference within one value: ``[x, x]``, ``l.append(l)``)

A container holding anything that is not plain data is opaque as a whole, and so is a value with an
object as a dict key or set element that the judge could not hash as plain data (a hashable list subclass).

Caps, per value: at most MAX_NODES nodes, also when written out as a tree (a container referenced n times
counts n times, so ``[[b, b]] * n`` DAGs cannot make a judge-side ``str()`` exponential), MAX_TEXT
characters of text, MAX_DEPTH levels, MAX_CLASSES distinct program classes. Encoding past them raises
:class:`EncodeError`; a malformed tree, an unhashable or duplicate key (two program keys that are equal as
plain data), more than MAX_COLLISIONS keys with one hash in a dict or set (a hash flood), or a value past a
cap raises :class:`DecodeError`, never another exception.

Identity and mutation across the boundary. *Tracked* objects are the mutable containers: list, dict, set,
bytearray, OrderedDict, Counter, defaultdict, deque, and subclass instances of those bases. Pre-order rule:
a tracked object is numbered when its node starts, before anything inside it (items in order; a dict's
pairs in order, key before value; a subclass instance is numbered at its "sub" node); a tracked object met
again, at any depth or inside itself, is written as a reference node instead of its content.

1. Judge -> child. ``Encoder.encode(value, collect=lst)`` appends each tracked object of ``value`` to
   ``lst`` in pre-order; one already in ``lst`` (met earlier in this value, or in an earlier call with the
   same list: ``f(a, a)``) is written ``["@", k]``. The child decodes each tree with
   ``decode(tree, created=c, refs=c)`` (the same list twice): every tracked container built is appended to
   ``c`` in the same pre-order, so ``c[k]`` is the child's copy of ``lst[k]`` and ``["@", k]`` is that
   copy itself. A failed encode or decode leaves ``lst``/``c`` as they were.
2. Child, right after decoding and before the program runs: ``originals = snapshot(c, encoder)``, each
   object's own content with the tracked objects inside it (itself included) written ``["@", j]``.
3. Child -> judge, after the call. ``tree = encoder.encode(result, known={id(o): k for k, o in
   enumerate(c)})`` writes any object of ``c`` met at any depth as ``["@", k]`` (so ``f(l) is l`` holds on
   the judge); ``changes = mutations(c, originals, encoder)`` is ``{k: content}`` for each object whose
   content encodes differently now, references as in the snapshot (a content no longer plain data is an
   ``"o"`` node). Both go over JSON (``changes`` then has str keys).
4. Judge: ``value = decode_answer(tree, changes, lst)`` decodes both with ``refs=lst``, gives each changed
   ``lst[k]`` its new content in place (:func:`update_in_place`: same object, so the test's own names see
   the mutation) and returns the value. ``decode(tree, refs=lst)`` and ``update_in_place`` are the parts,
   for a caller with no changes to apply; a change's new containers are never numbered (no ``created``).

This module is imported both by the package (judge side) and, as a top-level module, by the sandbox
scripts: it must only use the standard library.
"""
from __future__ import annotations

import builtins
import collections
import datetime
import decimal
import fractions
import keyword
import threading

_TYPE_FLAGS = type.__dict__["__flags__"].__get__  # read through type's own descriptor, never a metaclass's
_IMMUTABLETYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: a C-defined type (3.10+); a class statement never sets it

# Caps keep a hostile or accidental giant value from exhausting the judge.
MAX_NODES = 200_000
MAX_TEXT = 4 * 1024 * 1024  # characters: with UTF-8 (<= 4 bytes each) an answer fits protocol.MAX_FRAME
MAX_DEPTH = 200
MAX_CLASSES = 256  # distinct program classes in one value: each costs the judge a class
MAX_NAME = 200  # characters of a class name or field name
MAX_FIELDS = 256  # of a namedtuple; one with more is sent as a plain tuple subclass
MAX_FRACTION_BITS = 1 << 16  # per part: Fraction() normalises with a gcd, quadratic in the size
MAX_COLLISIONS = 64  # keys sharing one hash in a dict or set (a hash flood is quadratic to build)
_CLASS_CACHE = 4096  # judge-side classes kept for reuse across values

_BUILTIN_TYPES = {
    name: obj for name, obj in vars(builtins).items() if isinstance(obj, type) and not name.startswith("_")
}
_OD, _COUNTER = collections.OrderedDict, collections.Counter
_DD, _DEQUE = collections.defaultdict, collections.deque
_DEC, _FRAC = decimal.Decimal, fractions.Fraction
_DATE, _DATETIME, _TIME = datetime.date, datetime.datetime, datetime.time
_TIMEDELTA, _TIMEZONE = datetime.timedelta, datetime.timezone
_DICT_KEYS, _DICT_ITEMS = type({}.keys()), type({}.items())
_NONE = type(None)
_STDLIB_TYPES: dict[str, type] = {
    "collections.OrderedDict": _OD, "collections.Counter": _COUNTER, "collections.defaultdict": _DD,
    "collections.deque": _DEQUE, "decimal.Decimal": _DEC, "fractions.Fraction": _FRAC,
    "datetime.date": _DATE, "datetime.datetime": _DATETIME, "datetime.time": _TIME,
    "datetime.timedelta": _TIMEDELTA, "datetime.timezone": _TIMEZONE,
}
_TYPES: dict[str, type] = {**_BUILTIN_TYPES, **_STDLIB_TYPES}
# By id, so that looking a program's object up never hashes it; aliases (IOError) yield to the own name.
_TYPE_IDS: dict[int, str] = {id(cls): name for name, cls in _TYPES.items()}
_TYPE_IDS.update({id(cls): name for name, cls in _BUILTIN_TYPES.items() if name == cls.__name__})

# Bases a subclass is encoded by, most specific first (OrderedCounter(Counter, OrderedDict) is a Counter,
# as its MRO compares it).
_BASES: tuple[type, ...] = (
    _COUNTER, _OD, _DD, _DEQUE, _DEC, _FRAC, _DATETIME, _DATE, _TIME, _TIMEDELTA,
    int, float, complex, str, bytes, bytearray, list, tuple, dict, frozenset, set,
)
_FINAL = (_NONE, bool, range, _TIMEZONE, _DICT_KEYS, _DICT_ITEMS)  # types that cannot be subclassed
_EXACT: dict[int, type] = {id(t): t for t in (*_BASES, *_FINAL)}
_MUTABLE = frozenset({list, dict, set, bytearray, _OD, _COUNTER, _DD, _DEQUE})
_UNHASHABLE = _MUTABLE | {_DICT_KEYS, _DICT_ITEMS}

# The builtin slots and descriptors values are read through, taken before any program runs.
_MRO = type.__dict__["__mro__"].__get__
_CLASS_DICT = type.__dict__["__dict__"].__get__
_TYPE_NAME = type.__dict__["__name__"].__get__
_TYPE_QUALNAME = type.__dict__["__qualname__"].__get__
_TYPE_MODULE = type.__dict__["__module__"].__get__
_TYPE_FLAGS = type.__dict__["__flags__"].__get__
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_OD_ITER = _OD.__iter__
_DD_FACTORY = _DD.__dict__["default_factory"].__get__
_DEQUE_MAXLEN = _DEQUE.__dict__["maxlen"].__get__
_DEC_STR = _DEC.__str__
_FRAC_NUM = _FRAC.__dict__["_numerator"].__get__
_FRAC_DEN = _FRAC.__dict__["_denominator"].__get__
_DATE_PARTS = tuple(_DATE.__dict__[f].__get__ for f in ("year", "month", "day"))
_CLOCK = ("hour", "minute", "second", "microsecond", "fold")
_DATETIME_PARTS = tuple(_DATETIME.__dict__[f].__get__ for f in _CLOCK)
_TIME_PARTS = tuple(_TIME.__dict__[f].__get__ for f in _CLOCK)
_DATETIME_TZ = _DATETIME.__dict__["tzinfo"].__get__
_TIME_TZ = _TIME.__dict__["tzinfo"].__get__
_TD_PARTS = tuple(_TIMEDELTA.__dict__[f].__get__ for f in ("days", "seconds", "microseconds"))
_OBJECT_EQ, _OBJECT_NE = object.__dict__["__eq__"], object.__dict__["__ne__"]
_MISSING = object()


class Opaque:
    """A value the child could not express as plain data (a custom object, a function, a generator...).

    The judge never sees the object itself: only its type's qualified name, an identity token (``ident``,
    for ``is``), whether its type keeps ``object``'s identity-based ``==`` (``default_eq``), whether it is
    ``callable``, whether its type is hashable (``__hash__`` not None along its MRO, as
    ``collections.abc.Hashable`` judges it) and whether it is ``native`` (a C-defined, immutable type such
    as ``re.Match``: its ``__bool__``/``__eq__`` are not the program's), all read from type slots, and the
    child-side ``slot`` where
    the live object waits in case a whitelisted operation must be applied to it inside the sandbox.
    """

    __slots__ = ("type_name", "ident", "default_eq", "slot", "callable", "hashable", "native")

    def __init__(self, type_name: str, ident: int, default_eq: bool, slot: int, callable: bool,
                 hashable: bool, native: bool = False) -> None:
        self.type_name = type_name
        self.ident = ident
        self.default_eq = default_eq
        self.slot = slot
        self.callable = callable
        self.hashable = hashable
        self.native = native  # its type is defined in C (immutable): no class statement of the program's

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}>"


class EncodeError(Exception):
    """The value is too large or too deep to send."""


class DecodeError(Exception):
    """The child sent something that is not a well-formed encoded value."""


class NotInPlace(Exception):
    """The child's new content for a judge object cannot be given to that object in place: its type
    changed (a subclass instance's ``__class__`` was reassigned) or it is no longer plain data."""


# ------------------------------------------------------------------------------------------ type reading
def _own(cls: type, name: str) -> object:
    """``cls``'s own class-dict entry ``name`` (or _MISSING), found by iterating the raw dict: a lookup
    would compare the program's non-str keys with ``name`` through their ``__eq__``."""
    for key, value in _CLASS_DICT(cls).items():
        if type(key) is str and key == name:
            return value
    return _MISSING


def _inherited(tp: type, name: str) -> object:
    """``name`` as the type's MRO provides it (what the type slot was filled from)."""
    for cls in _MRO(tp):
        value = _own(cls, name)
        if value is not _MISSING:
            return value
    return _MISSING


def _is_sub(tp: type, base: type) -> bool:
    """``issubclass`` by identity on the MRO: no ``__subclasscheck__``, no metaclass ``__eq__``."""
    return any(cls is base for cls in _MRO(tp))


def _text(value: object) -> str:
    """A name as an exact, bounded str (a str subclass is copied through ``str.__str__``)."""
    if type(value) is not str:
        if not _is_sub(type(value), str):
            return "?"
        value = str.__str__(value)
    return value[:MAX_NAME]


def _names(tp: type) -> tuple[str, str, str]:
    """(module, qualname, name) of a type, through ``type``'s descriptors and its raw class dict."""
    # A static (C) type's module comes from its C name; a class's is its class-dict entry.
    module = _own(tp, "__module__") if _TYPE_FLAGS(tp) & _HEAPTYPE else _TYPE_MODULE(tp)
    return _text(module), _text(_TYPE_QUALNAME(tp)), _text(_TYPE_NAME(tp))


def _field_ok(name: str) -> bool:
    return (len(name) <= MAX_NAME and name.isidentifier() and not keyword.iskeyword(name)
            and not name.startswith("_"))


def _namedtuple_fields(mro: tuple) -> tuple[str, ...] | None:
    """The fields of a namedtuple class (the nearest ``_fields`` above ``tuple`` in the MRO, next to a
    ``_make``), or None when the class is not one or its fields are not what namedtuple accepts."""
    for cls in mro:
        if cls is tuple:
            return None
        fields = _own(cls, "_fields")
        if fields is _MISSING:
            continue
        if type(fields) is not tuple or len(fields) > MAX_FIELDS or _own(cls, "_make") is _MISSING:
            return None
        if not all(type(f) is str and _field_ok(f) for f in fields) or len(set(fields)) != len(fields):
            return None
        return fields
    return None


class _Kind:
    """How values of one type are encoded: by ``base`` (None: not plain data), as an exact instance
    (``names`` None) or a subclass instance with the class's ``names``, or as a namedtuple (``fields``)."""

    __slots__ = ("base", "names", "fields")

    def __init__(self, base: type | None, names: tuple[str, str, str] | None,
                 fields: tuple[str, ...] | None) -> None:
        self.base = base
        self.names = names
        self.fields = fields


def _classify(tp: type) -> _Kind:
    exact = _EXACT.get(id(tp))
    if exact is not None:
        return _Kind(exact, None, None)
    mro = _MRO(tp)
    for base in _BASES:
        if any(cls is base for cls in mro):
            return _Kind(base, _names(tp), _namedtuple_fields(mro) if base is tuple else None)
    return _Kind(None, None, None)


# ---------------------------------------------------------------------------------------------- child side
class Encoder:
    """Encodes values (child side, and the judge's values sent into the child); ``slots`` keeps opaque
    objects alive so that later operations can refer to them."""

    def __init__(self) -> None:
        self.slots: list[object] = []
        self._kinds: dict[int, tuple[type, _Kind]] = {}  # by id(type), the type kept alive with it
        self._nodes = 0
        self._text = 0
        self._classes: set[tuple] = set()
        self._known: dict[int, int] = {}
        self._collect: list | None = None
        self._collect_ids: dict[int, int] = {}
        self._local: dict[int, int] = {}
        self._shared = False  # a reference node was written: the value may be a DAG

    def encode(self, value: object, collect: list | None = None, known: dict[int, int] | None = None) -> list:
        """Encode one value. ``collect``: a list to append every tracked object to, in pre-order (an object
        already in it is sent as ``["@", k]``); ``known``: ``{id(obj): k}`` of objects sent as
        ``["@", k]`` instead of their content (see the module docstring)."""
        self._begin(known, collect)
        start = len(collect) if collect is not None else 0
        try:
            tree = self._node(value, 0, False)
            if self._shared and _too_large([value]):
                raise EncodeError(f"value larger than {MAX_NODES} items written out (shared containers)")
            return tree
        except _NotPlain:
            if collect is not None:
                del collect[start:]
            return self._opaque(value)
        except BaseException:
            if collect is not None:
                del collect[start:]
            raise

    def contents(self, objects: list) -> list[list]:
        """Each object's own content (what :func:`snapshot` and :func:`mutations` compare): the objects of
        the list inside it, itself included, as ``["@", k]``; one budget of caps for them all."""
        self._begin({id(obj): k for k, obj in enumerate(objects)}, None)
        out = []
        for obj in objects:
            self._local = {}  # each content is decoded on its own
            try:
                out.append(self._node(obj, 0, False, root=True))
            except _NotPlain:
                out.append(self._opaque(obj))
        return out

    def _begin(self, known: dict[int, int] | None, collect: list | None) -> None:
        self._nodes = 0
        self._text = 0
        self._classes = set()
        self._known = known or {}
        self._collect = collect
        self._collect_ids = {id(obj): k for k, obj in enumerate(collect)} if collect is not None else {}
        self._local = {}
        self._shared = False

    def _opaque(self, value: object) -> list:
        self.slots.append(value)
        tp = type(value)
        module, qualname, _ = _names(tp)
        default_eq = _inherited(tp, "__eq__") is _OBJECT_EQ and _inherited(tp, "__ne__") is _OBJECT_NE
        hashable = _inherited(tp, "__hash__") is not None
        native = bool(_TYPE_FLAGS(tp) & _IMMUTABLETYPE)
        return ["o", f"{module}.{qualname}"[:MAX_NAME], id(value), default_eq, len(self.slots) - 1,
                callable(value), hashable, native]

    def _count(self, text: int = 0) -> None:
        self._nodes += 1
        self._text += text
        if self._nodes > MAX_NODES or self._text > MAX_TEXT:
            raise EncodeError(f"value larger than {MAX_NODES} items / {MAX_TEXT} bytes")

    def _node(self, v: object, depth: int, key: bool, root: bool = False) -> list:
        """``key``: ``v`` is (inside) a dict key or set element, where the judge must be able to hash it."""
        if depth > MAX_DEPTH:
            raise EncodeError(f"value nested deeper than {MAX_DEPTH}")
        tp = type(v)
        entry = self._kinds.get(id(tp))
        if entry is None or entry[0] is not tp:
            entry = self._kinds[id(tp)] = (tp, _classify(tp))
        kind = entry[1]
        base = kind.base
        if base is None:
            name = _TYPE_IDS.get(id(v))
            if name is None:
                raise _NotPlain
            self._count(len(name))
            return ["T", name]
        if base in _UNHASHABLE and key:
            raise _NotPlain  # a program type hashable by its own __hash__; the judge's copy is not
        if base in _MUTABLE:
            ref = None if root else self._ref(v)
            if ref is not None:
                self._count()
                return ref
            self._track(v)
        names = kind.names
        if names is None:
            return self._content(v, base, depth, key)
        fields = kind.fields
        if fields is not None and tuple.__len__(v) == len(fields):
            text = " ".join(fields)
            self._class(("nt", *names, text))
            self._count(sum(map(len, names)) + len(text))
            return ["nt", *names, text, self._items(tuple.__iter__(v), depth, key)]
        self._class(("sub", base, *names))
        self._count(sum(map(len, names)))
        return ["sub", *names, self._content(v, base, depth + 1, key)]

    def _ref(self, v: object) -> list | None:
        i = id(v)
        if i in self._known:
            ref = ["@", self._known[i]]
        elif i in self._collect_ids:
            ref = ["@", self._collect_ids[i]]
        elif i in self._local:
            ref = ["^", self._local[i]]
        else:
            return None
        self._shared = True
        return ref

    def _track(self, v: object) -> None:
        self._local[id(v)] = len(self._local)
        if self._collect is not None:
            self._collect_ids[id(v)] = len(self._collect)
            self._collect.append(v)

    def _class(self, key: tuple) -> None:
        self._classes.add(key)
        if len(self._classes) > MAX_CLASSES:
            raise EncodeError(f"value with more than {MAX_CLASSES} distinct classes")

    # Loops, not comprehensions: a comprehension is one more frame per level of a deep value.
    def _items(self, items: object, depth: int, key: bool) -> list:
        out = []
        for x in items:
            out.append(self._node(x, depth + 1, key))
        return out

    def _pairs(self, pairs: object, depth: int, key: bool) -> list:
        out = []
        for k, x in pairs:
            out.append([self._node(k, depth + 1, True), self._node(x, depth + 1, key)])
        return out

    def _content(self, v: object, base: type, depth: int, key: bool) -> list:
        """The node of ``v``'s value as an instance of ``base``, read through ``base``'s own slots."""
        return _CONTENT_ENCODERS[base](self, v, depth, key)

    # -- one per base type (see _CONTENT_ENCODERS); each counts its own node
    def _none(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["N"]

    def _bool(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["b", 1 if v is True else 0]

    def _int(self, v: object, depth: int, key: bool) -> list:
        n = int.__int__(v)
        if n.bit_length() > 8 * MAX_TEXT:
            raise EncodeError("integer too large")
        text = hex(n)
        self._count(len(text))
        return ["i", text]

    def _float(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["f", float.hex(float.__float__(v))]

    def _complex(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["c", float.hex(complex.real.__get__(v)), float.hex(complex.imag.__get__(v))]

    def _str(self, v: object, depth: int, key: bool) -> list:
        text = str.__str__(v)
        self._count(len(text))
        return ["s", text]

    def _bytes(self, v: object, depth: int, key: bool) -> list:
        text = bytes.hex(bytes.__getitem__(v, slice(None)))
        self._count(len(text))
        return ["y", text]

    def _bytearray(self, v: object, depth: int, key: bool) -> list:
        text = bytearray.hex(bytearray.__getitem__(v, slice(None)))
        self._count(len(text))
        return ["Y", text]

    def _list(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["l", self._items(list.__iter__(v), depth, key)]

    def _tuple(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["t", self._items(tuple.__iter__(v), depth, key)]

    def _dict(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["d", self._pairs(dict.items(v), depth, key)]

    def _counter(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["ctr", self._pairs(dict.items(v), depth, key)]

    def _ordered_dict(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["od", self._pairs(_od_pairs(v), depth, key)]

    def _defaultdict(self, v: object, depth: int, key: bool) -> list:
        self._count()
        name = _TYPE_IDS.get(id(_DD_FACTORY(v)))
        self._count(len(name) if name else 0)
        return ["dd", ["T", name] if name else ["N"], self._pairs(dict.items(v), depth, key)]

    def _deque(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["dq", _DEQUE_MAXLEN(v), self._items(_DEQUE.__iter__(v), depth, key)]

    def _set(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["S", self._items(set.__iter__(v), depth, True)]

    def _frozenset(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["F", self._items(frozenset.__iter__(v), depth, True)]

    def _range(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["r", hex(v.start), hex(v.stop), hex(v.step)]  # range is final: no program attribute

    def _dict_keys(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["dk", self._items(_DICT_KEYS.__iter__(v), depth, True)]

    def _dict_items(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["di", self._pairs(_DICT_ITEMS.__iter__(v), depth, key)]

    def _decimal(self, v: object, depth: int, key: bool) -> list:
        text = _DEC_STR(v)
        self._count(len(text))
        return ["dec", text]

    def _fraction(self, v: object, depth: int, key: bool) -> list:
        num, den = _FRAC_NUM(v), _FRAC_DEN(v)
        if type(num) is not int or type(den) is not int:
            raise _NotPlain  # a program wrote the slots
        if max(num.bit_length(), den.bit_length()) > MAX_FRACTION_BITS:
            raise EncodeError(f"fraction larger than {MAX_FRACTION_BITS} bits")
        parts = [hex(num), hex(den)]
        self._count(len(parts[0]) + len(parts[1]))
        return ["frac", *parts]

    def _date(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["date", *(part(v) for part in _DATE_PARTS)]

    def _datetime(self, v: object, depth: int, key: bool) -> list:
        self._count()
        date = [part(v) for part in _DATE_PARTS]
        return ["dt", *date, *(part(v) for part in _DATETIME_PARTS), self._tz(_DATETIME_TZ(v), depth)]

    def _time(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["time", *(part(v) for part in _TIME_PARTS), self._tz(_TIME_TZ(v), depth)]

    def _timedelta(self, v: object, depth: int, key: bool) -> list:
        self._count()
        return ["td", *(part(v) for part in _TD_PARTS)]

    def _timezone(self, v: object, depth: int, key: bool) -> list:
        args = _TIMEZONE.__getinitargs__(v)
        name = _text(args[1]) if len(args) > 1 else None
        self._count(len(name) if name else 0)
        return ["tz", self._node(args[0], depth + 1, False), name]

    def _tz(self, tz: object, depth: int) -> list | None:
        if tz is None:
            return None
        if type(tz) is not _TIMEZONE:
            raise _NotPlain  # zoneinfo and program tzinfo classes compute offsets in code
        return self._node(tz, depth + 1, False)



_CONTENT_ENCODERS = {
    _NONE: Encoder._none, bool: Encoder._bool, int: Encoder._int, float: Encoder._float,
    complex: Encoder._complex, str: Encoder._str, bytes: Encoder._bytes, bytearray: Encoder._bytearray,
    list: Encoder._list, tuple: Encoder._tuple, dict: Encoder._dict, _COUNTER: Encoder._counter,
    _OD: Encoder._ordered_dict, _DD: Encoder._defaultdict, _DEQUE: Encoder._deque, set: Encoder._set,
    frozenset: Encoder._frozenset, range: Encoder._range, _DICT_KEYS: Encoder._dict_keys,
    _DICT_ITEMS: Encoder._dict_items, _DEC: Encoder._decimal, _FRAC: Encoder._fraction, _DATE: Encoder._date,
    _DATETIME: Encoder._datetime, _TIME: Encoder._time, _TIMEDELTA: Encoder._timedelta,
    _TIMEZONE: Encoder._timezone,
}

def _od_pairs(v: object) -> list[tuple]:
    """An OrderedDict's items in its own order, without hashing its keys: the order comes from the C
    iterator, the values from the dict's storage by key identity."""
    by_key = {id(k): (k, x) for k, x in dict.items(v)}
    try:
        pairs = [by_key[id(k)] for k in _OD_ITER(v)]
    except (KeyError, RuntimeError):  # the order and the storage disagree (dict methods used on it)
        raise _NotPlain from None
    if len(pairs) != len(by_key):
        raise _NotPlain
    return pairs


class _NotPlain(Exception):
    pass


def snapshot(created: list, encoder: Encoder) -> list[list]:
    """Child side, right after decoding the judge's values into ``created``: the content encodings that
    :func:`mutations` later compares against."""
    return encoder.contents(created)


def mutations(created: list, originals: list[list], encoder: Encoder) -> dict[int, list]:
    """Child side, after the program ran: ``{k: new content}`` for each object of ``created`` whose
    content no longer encodes as its snapshot ``originals[k]``; other tracked objects (and itself) appear
    in it as ``["@", j]``."""
    if len(originals) != len(created):
        raise ValueError("originals is not the snapshot of created")
    now = encoder.contents(created)
    return {k: tree for k, (tree, before) in enumerate(zip(now, originals)) if tree != before}


# ---------------------------------------------------------------------------------------------- judge side
def update_in_place(target: object, new_value: object) -> None:
    """Give a judge object (from ``collect``) the content the child reported for its copy, keeping its
    identity, through the base type's own methods (as the program's in-place operations worked). Content
    only: a defaultdict keeps its default_factory (the child may only have had None), a deque its maxlen.
    Raises :class:`NotInPlace` when ``new_value`` is not of the same base type and class name (a
    ``__class__`` reassignment) or is opaque."""
    base = _check_in_place(target, new_value)
    if base is list:
        list.__setitem__(target, slice(None), list(new_value))
    elif base is bytearray:
        bytearray.__setitem__(target, slice(None), new_value)
    elif base is set:
        set.clear(target)
        set.update(target, new_value)
    elif base is _DEQUE:
        _DEQUE.clear(target)
        _DEQUE.extend(target, new_value)
    else:
        pairs = list(new_value.items())  # a decoded dict: its own order
        clear, setitem = (_OD.clear, _OD.__setitem__) if base is _OD else (dict.clear, dict.__setitem__)
        clear(target)
        for k, x in pairs:
            setitem(target, k, x)


def _check_in_place(target: object, new_value: object) -> type:
    """The base type both share, or NotInPlace."""
    kind, new = _classify(type(target)), _classify(type(new_value))
    if kind.base not in _MUTABLE or (new.base, new.names) != (kind.base, kind.names):
        raise NotInPlace(f"a {type(target).__name__} cannot become a {type(new_value).__name__} in place")
    return kind.base


def _children(obj: object, kinds: dict[int, tuple[type, _Kind]]) -> list | None:
    """The items of a container through its base type's slots (keys and values of a mapping), None for a
    scalar or an opaque value."""
    tp = type(obj)
    entry = kinds.get(id(tp))
    if entry is None or entry[0] is not tp:
        entry = kinds[id(tp)] = (tp, _classify(tp))
    base = entry[1].base
    if base is list or base is tuple or base is set or base is frozenset or base is _DEQUE:
        return list(base.__iter__(obj))
    if base is dict or base is _OD or base is _COUNTER or base is _DD:
        return [x for pair in dict.items(obj) for x in pair]
    if base is _DICT_KEYS:
        return list(_DICT_KEYS.__iter__(obj))
    if base is _DICT_ITEMS:
        return [x for pair in _DICT_ITEMS.__iter__(obj) for x in pair]
    return None


def _too_large(roots: list) -> bool:
    """Whether a root written out as a tree (a shared container once per occurrence, a way back to an
    ancestor as one item) has more than MAX_NODES items. Linear: each container's size is computed once
    (iteratively: the graph may be deeper than the stack)."""
    sizes: dict[int, int] = {}
    kinds: dict[int, tuple[type, _Kind]] = {}
    for root in roots:
        items = _children(root, kinds)
        if items is None or id(root) in sizes:
            continue
        frames = [[root, items, 0, 1]]  # object, its items, next item, size so far
        open_ids = {id(root)}
        while frames:
            frame = frames[-1]
            obj, items, i, size = frame
            if size > MAX_NODES:
                return True
            if i < len(items):
                frame[2] = i + 1
                item = items[i]
                known = sizes.get(id(item))
                if known is not None:
                    frame[3] = size + known
                elif id(item) in open_ids:
                    frame[3] = size + 1
                else:
                    inner = _children(item, kinds)
                    if inner is None:
                        frame[3] = size + 1
                    else:
                        frames.append([item, inner, 0, 1])
                        open_ids.add(id(item))
                continue
            frames.pop()
            open_ids.discard(id(obj))
            sizes[id(obj)] = size
            if frames:
                frames[-1][3] += size
    return False


_CLASSES: dict[tuple, type] = {}
_CLASSES_LOCK = threading.Lock()


def _shared_class(key: tuple) -> type:
    """The judge-side class for a program class, made once: values of one program class decode to
    instances of one class even across values (while fewer than _CLASS_CACHE are in use)."""
    with _CLASSES_LOCK:
        cls = _CLASSES.get(key)
        if cls is None:
            cls = _make_class(*key)
            while len(_CLASSES) >= _CLASS_CACHE:
                del _CLASSES[next(iter(_CLASSES))]
            _CLASSES[key] = cls
        return cls


def _make_class(kind: str, base: type, module: str, qualname: str, name: str, fields: str) -> type:
    if kind == "nt":
        valid = name.isidentifier() and not keyword.iskeyword(name)
        cls = collections.namedtuple(name if valid else "namedtuple", fields.split(" ") if fields else [],
                                     module=module)
        cls.__name__ = name
        cls.__qualname__ = qualname
        return cls
    return type(base)(name, (base,), {"__module__": module, "__qualname__": qualname, "__slots__": ()})


def decode(tree: object, created: list | None = None, refs: list | None = None) -> object:
    """Rebuild a value from its encoding; raises :class:`DecodeError` on anything malformed.

    ``created``: a list to append every mutable container built to, in pre-order; ``refs``: the list
    ``["@", k]`` nodes index (without it they are malformed). See the module docstring."""
    start = len(created) if created is not None else 0
    try:
        decoder = _Decoder(created, refs)
        value = _decoding(decoder, tree)
        if decoder.shared and _too_large([value]):
            raise DecodeError(f"value larger than {MAX_NODES} items written out (shared containers)")
        return value
    except DecodeError:
        if created is not None:
            del created[start:]
        raise


def decode_answer(tree: object, changes: object, collect: list) -> object:
    """Judge side: decode one answer's value and apply the child's ``mutations`` (``{"k": content}`` as
    JSON brings them; int keys also do) to the objects of ``collect``; returns the value.

    Every change is decoded and checked to fit its target before any is applied (:class:`NotInPlace`:
    nothing applied). The changes share one node budget, as the child encoded them, and the written-out
    size cap is checked on the objects as they end up, since changes decoded one by one could chain into an
    exponential DAG (``a = [b, b]``, ``b = [c, c]``...); that check failing raises :class:`DecodeError`
    after the changes were applied (the answer is refused either way)."""
    if type(changes) is not dict:
        raise DecodeError("malformed mutations")
    value = _decoding(_Decoder(None, collect), tree)
    decoder = _Decoder(None, collect)
    new: dict[int, object] = {}
    for key, change in changes.items():
        k = _change_index(key, len(collect))
        if k in new:
            raise DecodeError("one object changed twice")
        new[k] = _decoding(decoder, change)
    for k, content in new.items():
        _check_in_place(collect[k], content)
    for k, content in new.items():
        update_in_place(collect[k], content)
    if _too_large([value, *collect]):
        raise DecodeError(f"value larger than {MAX_NODES} items written out (shared containers)")
    return value


def _decoding(decoder: _Decoder, tree: object) -> object:
    try:
        return decoder.node(tree, 0)
    except (ValueError, TypeError, LookupError, ArithmeticError, RecursionError) as exc:
        raise DecodeError(f"malformed value: {type(exc).__name__}") from None


def _change_index(key: object, n: int) -> int:
    if type(key) is str and key.isascii() and key.isdecimal():
        key = int(key)
    if type(key) is not int or not 0 <= key < n:
        raise DecodeError("mutation of no known object")
    return key


# Decimal() only consults the context to signal a malformed string: make it always raise.
_DECIMAL_CONTEXT = decimal.Context(traps=[decimal.InvalidOperation])


class _Decoder:
    """One decode: the node budget, the containers built so far (for ``^``) and the classes used."""

    def __init__(self, created: list | None, refs: list | None) -> None:
        self.created = created
        self.refs = refs
        self.built: list = []
        self.nodes = 0
        self.classes: dict[tuple, type] = {}
        self.shared = False  # a reference node was read: the value may be a DAG

    def node(self, t: object, depth: int, cls: type | None = None) -> object:
        """Decode node ``t``; ``cls``: build a base-type node as an instance of this class made here."""
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise DecodeError("value too large")
        if type(t) is not list or not t or type(t[0]) is not str:
            raise DecodeError("malformed value")
        tag = t[0]
        content = _CONTENT.get(tag)
        if content is not None:
            base, build, arity = content
            _arity(t, arity)
            return build(self, t, depth, cls or base)
        other = _OTHER.get(tag)
        if other is None:
            raise DecodeError(f"unknown value tag {tag[:10]!r}")
        build, arity = other
        _arity(t, arity)
        return build(self, t, depth)

    def track(self, obj: object) -> object:
        self.built.append(obj)
        if self.created is not None:
            self.created.append(obj)
        return obj

    def items(self, raw: object, depth: int) -> list:
        out = []
        for x in _list(raw):  # a loop, not a comprehension: one frame less per level
            out.append(self.node(x, depth + 1))
        return out

    def pairs(self, raw: object, depth: int) -> list[tuple]:
        pairs = []
        for pair in _list(raw):
            if type(pair) is not list or len(pair) != 2:
                raise DecodeError("malformed dict item")
            pairs.append((self.node(pair[0], depth + 1), self.node(pair[1], depth + 1)))
        _check_keys([k for k, _ in pairs])
        return pairs

    def program_class(self, kind: str, base: type, t: list, fields: str = "") -> type:
        """The class made here for the program class named by ``t[1:4]`` (module, qualname, name)."""
        key = (kind, base, _name(t[1]), _name(t[2]), _name(t[3]), fields)
        made = self.classes.get(key)
        if made is None:
            if len(self.classes) >= MAX_CLASSES:
                raise DecodeError(f"value with more than {MAX_CLASSES} distinct classes")
            made = self.classes[key] = _shared_class(key)
        return made

    # -- base-type nodes: built as instances of cls (the base or a subclass made here)
    def int_(self, t: list, depth: int, cls: type) -> object:
        return cls(int(_str(t[1]), 16))

    def float_(self, t: list, depth: int, cls: type) -> object:
        return cls(float.fromhex(_str(t[1])))

    def complex_(self, t: list, depth: int, cls: type) -> object:
        return cls(complex(float.fromhex(_str(t[1])), float.fromhex(_str(t[2]))))

    def str_(self, t: list, depth: int, cls: type) -> object:
        return cls(_str(t[1]))

    def bytes_(self, t: list, depth: int, cls: type) -> object:
        value = cls(bytes.fromhex(_str(t[1])))
        return self.track(value) if issubclass(cls, bytearray) else value

    def list_(self, t: list, depth: int, cls: type) -> object:
        obj = self.track(cls())
        list.extend(obj, self.items(t[1], depth))
        return obj

    def tuple_(self, t: list, depth: int, cls: type) -> object:
        return cls(self.items(t[1], depth))

    def set_(self, t: list, depth: int, cls: type) -> object:
        obj = self.track(cls()) if issubclass(cls, set) else None
        items = self.items(t[1], depth)
        _check_keys(items)
        if obj is None:
            obj = cls(items)
        else:
            set.update(obj, items)
        if len(obj) != len(items):
            raise DecodeError("duplicate set element")
        return obj

    def dict_(self, t: list, depth: int, cls: type) -> object:
        if t[0] == "dd":
            factory = self.node(t[1], depth + 1)
            if factory is not None and id(factory) not in _TYPE_IDS:  # the id of a live table class
                raise DecodeError("defaultdict factory is not a known type")
            obj = self.track(cls(factory))
        else:
            obj = self.track(cls())
        setitem = _OD.__setitem__ if issubclass(cls, _OD) else dict.__setitem__
        pairs = self.pairs(t[-1], depth)
        for k, x in pairs:
            setitem(obj, k, x)
        if len(obj) != len(pairs):
            raise DecodeError("duplicate dict key")
        return obj

    def deque_(self, t: list, depth: int, cls: type) -> object:
        maxlen = t[1]
        if maxlen is not None and type(maxlen) is not int:
            raise DecodeError("malformed deque maxlen")
        obj = self.track(cls((), maxlen))
        items = self.items(t[2], depth)
        if maxlen is not None and len(items) > maxlen:
            raise DecodeError("deque longer than its maxlen")
        _DEQUE.extend(obj, items)
        return obj

    def decimal_(self, t: list, depth: int, cls: type) -> object:
        with decimal.localcontext(_DECIMAL_CONTEXT):
            return cls(_str(t[1]))

    def fraction_(self, t: list, depth: int, cls: type) -> object:
        num, den = int(_str(t[1]), 16), int(_str(t[2]), 16)
        if max(num.bit_length(), den.bit_length()) > MAX_FRACTION_BITS:
            raise DecodeError("fraction too large")
        return cls(num, den)

    def date_(self, t: list, depth: int, cls: type) -> object:
        return cls(*_ints(t, 1, 4))

    def datetime_(self, t: list, depth: int, cls: type) -> object:
        *fields, fold = _ints(t, 1, 9)
        return cls(*fields, self.tz(t[9], depth), fold=fold)

    def time_(self, t: list, depth: int, cls: type) -> object:
        *fields, fold = _ints(t, 1, 6)
        return cls(*fields, self.tz(t[6], depth), fold=fold)

    def timedelta_(self, t: list, depth: int, cls: type) -> object:
        return cls(*_ints(t, 1, 4))

    def tz(self, raw: object, depth: int) -> object:
        if raw is None:
            return None
        tz = self.node(raw, depth + 1)
        if type(tz) is not _TIMEZONE:
            raise DecodeError("tzinfo is not a timezone")
        return tz

    # -- other nodes
    def none_(self, t: list, depth: int) -> object:
        return None

    def bool_(self, t: list, depth: int) -> object:
        return bool(_int(t[1]))

    def range_(self, t: list, depth: int) -> object:
        return range(int(_str(t[1]), 16), int(_str(t[2]), 16), int(_str(t[3]), 16))

    def type_(self, t: list, depth: int) -> object:
        cls = _TYPES.get(_str(t[1]))
        if cls is None:
            raise DecodeError("unknown type")
        return cls

    def timezone_(self, t: list, depth: int) -> object:
        offset = self.node(t[1], depth + 1)
        if type(offset) is not _TIMEDELTA:
            raise DecodeError("timezone offset is not a timedelta")
        name = t[2]
        if name is None:
            return _TIMEZONE(offset)
        return _TIMEZONE(offset, _str(name))

    def keys_(self, t: list, depth: int) -> object:
        items = self.items(t[1], depth)
        _check_keys(items)
        keys = dict.fromkeys(items)
        if len(keys) != len(items):
            raise DecodeError("duplicate key")
        return keys.keys()

    def dict_items_(self, t: list, depth: int) -> object:
        pairs = self.pairs(t[1], depth)
        view = dict(pairs)
        if len(view) != len(pairs):
            raise DecodeError("duplicate key")
        return view.items()

    def namedtuple_(self, t: list, depth: int) -> object:
        fields = _str(t[4])
        if len(fields) > MAX_FIELDS * (MAX_NAME + 1):
            raise DecodeError("too many namedtuple fields")
        cls = self.program_class("nt", tuple, t, fields)
        return cls._make(self.items(t[5], depth))

    def subclass_(self, t: list, depth: int) -> object:
        content = t[4]
        tag = content[0] if type(content) is list and content else None
        if type(tag) is not str or tag not in _CONTENT:
            raise DecodeError("malformed subclass content")
        return self.node(content, depth + 1, self.program_class("sub", _CONTENT[tag][0], t))

    def opaque_(self, t: list, depth: int) -> object:
        if depth:
            raise DecodeError("opaque value inside a container")
        flags = t[3], t[5], t[6], t[7]
        if type(t[1]) is not str or type(t[2]) is not int or any(type(f) is not bool for f in flags):
            raise DecodeError("malformed opaque value")
        return Opaque(t[1][:MAX_NAME], t[2], t[3], _int(t[4]), t[5], t[6], t[7])

    def ref_(self, t: list, depth: int) -> object:
        self.shared = True
        return _index(self.refs, t[1])

    def back_ref_(self, t: list, depth: int) -> object:
        self.shared = True
        return _index(self.built, t[1])


# tag -> (base, builder, arity) for nodes that may be a subclass's content; tag -> (builder, arity) else.
_CONTENT: dict[str, tuple[type, object, int]] = {
    "i": (int, _Decoder.int_, 2), "f": (float, _Decoder.float_, 2), "c": (complex, _Decoder.complex_, 3),
    "s": (str, _Decoder.str_, 2), "y": (bytes, _Decoder.bytes_, 2), "Y": (bytearray, _Decoder.bytes_, 2),
    "l": (list, _Decoder.list_, 2), "t": (tuple, _Decoder.tuple_, 2), "d": (dict, _Decoder.dict_, 2),
    "S": (set, _Decoder.set_, 2), "F": (frozenset, _Decoder.set_, 2), "od": (_OD, _Decoder.dict_, 2),
    "ctr": (_COUNTER, _Decoder.dict_, 2), "dd": (_DD, _Decoder.dict_, 3), "dq": (_DEQUE, _Decoder.deque_, 3),
    "dec": (_DEC, _Decoder.decimal_, 2), "frac": (_FRAC, _Decoder.fraction_, 3),
    "date": (_DATE, _Decoder.date_, 4), "dt": (_DATETIME, _Decoder.datetime_, 10),
    "time": (_TIME, _Decoder.time_, 7), "td": (_TIMEDELTA, _Decoder.timedelta_, 4),
}
_OTHER: dict[str, tuple[object, int]] = {
    "N": (_Decoder.none_, 1), "b": (_Decoder.bool_, 2), "r": (_Decoder.range_, 4), "T": (_Decoder.type_, 2),
    "tz": (_Decoder.timezone_, 3), "dk": (_Decoder.keys_, 2), "di": (_Decoder.dict_items_, 2),
    "nt": (_Decoder.namedtuple_, 6), "sub": (_Decoder.subclass_, 5), "o": (_Decoder.opaque_, 8),
    "@": (_Decoder.ref_, 2), "^": (_Decoder.back_ref_, 2),
}


def _check_keys(keys: list) -> None:
    """Every key hashable, and no hash shared by more than MAX_COLLISIONS keys (all decoded values are of
    trusted classes, so hashing them runs no program code)."""
    seen: dict[int, int] = {}
    for key in keys:
        h = hash(key)
        seen[h] = n = seen.get(h, 0) + 1
        if n > MAX_COLLISIONS:
            raise DecodeError("too many keys with one hash")


def _arity(t: list, n: int) -> None:
    if len(t) != n:
        raise DecodeError(f"malformed {t[0][:10]!r} value")


def _index(items: list | None, k: object) -> object:
    if items is None or type(k) is not int or not 0 <= k < len(items):
        raise DecodeError("reference to no known object")
    return items[k]


def _name(v: object) -> str:
    if type(v) is not str or len(v) > MAX_NAME:
        raise DecodeError("malformed class name")
    return v


def _ints(t: list, start: int, stop: int) -> list[int]:
    return [_int(v) for v in t[start:stop]]


def _str(v: object) -> str:
    if type(v) is not str:
        raise DecodeError("malformed value field")
    return v


def _int(v: object) -> int:
    if type(v) is not int:
        raise DecodeError("malformed value field")
    return v


def _list(v: object) -> list:
    if type(v) is not list:
        raise DecodeError("malformed value field")
    return v
