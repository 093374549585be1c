"""Plain-data encoding of values crossing the sandbox boundary.

The untrusted child evaluates the parts of a test that call the program and sends back the *values*; the
trusted parent decodes them and makes the verdict. The encoding is a tagged JSON tree that can only ever
decode to builtin data (``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``list``,
``tuple``, ``dict``, ``set``, ``frozenset``, ``range``, builtin types) or to an :class:`Opaque` marker, so a
program cannot smuggle an object whose ``__eq__``/``__bool__`` lies into the comparison, and decoding never
runs code (no pickle).

Subclasses of builtin types (``namedtuple``, ``IntEnum``, ``OrderedDict``, an ``int`` subclass with an
always-true ``__eq__``) are encoded by their base type's own slots (``tuple.__iter__``, ``int.__int__``...),
never through methods the program may have overridden.

This module is imported both by the package (parent side) and, as a top-level module, by the sandbox
scripts: it must only use the standard library.
"""
from __future__ import annotations

import builtins

# Caps keep a hostile or accidental giant value from exhausting the parent.
MAX_NODES = 200_000
MAX_TEXT = 4 * 1024 * 1024  # characters: with UTF-8 (<= 4 bytes each) an answer fits protocol.MAX_FRAME
MAX_DEPTH = 200

_BUILTIN_TYPES = {
    name: obj for name, obj in vars(builtins).items() if isinstance(obj, type) and not name.startswith("_")
}


class Opaque:
    """A value the child could not express as plain data (a custom object, a function, a generator...).

    The parent never sees the object itself: only its type name, an identity token (``ident``, for ``is``),
    whether its type keeps ``object``'s identity-based ``==`` (``default_eq``), and the child-side ``slot``
    where the live object waits in case a whitelisted operation must be applied to it inside the sandbox.
    """

    __slots__ = ("type_name", "ident", "default_eq", "slot")

    def __init__(self, type_name: str, ident: int, default_eq: bool, slot: int) -> None:
        self.type_name = type_name
        self.ident = ident
        self.default_eq = default_eq
        self.slot = slot

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}>"


class EncodeError(Exception):
    """The value is too large or too deep to send."""


class DecodeError(Exception):
    """The child sent something that is not a well-formed encoded value."""


# ---------------------------------------------------------------------------------------------- child side
def _is_default_eq(tp: type) -> bool:
    try:
        return tp.__eq__ is object.__eq__ and tp.__ne__ is object.__ne__
    except Exception:  # a hostile metaclass may raise from attribute access
        return False


class Encoder:
    """Child-side encoder; ``slots`` keeps opaque objects alive so that later ops can refer to them."""

    def __init__(self) -> None:
        self.slots: list[object] = []
        self._nodes = 0
        self._text = 0

    def encode(self, value: object) -> list:
        self._nodes = 0
        self._text = 0
        try:
            return self._enc(value, 0)
        except _NotPlain:
            return self._opaque(value)

    def _opaque(self, value: object) -> list:
        self.slots.append(value)
        tp = type(value)
        try:
            name = f"{tp.__module__}.{tp.__qualname__}"
        except Exception:
            name = "<unknown type>"
        if not isinstance(name, str):
            name = "<unknown type>"
        return ["o", name[:200], id(value), _is_default_eq(tp), len(self.slots) - 1]

    def _count(self, text: int = 0) -> None:
        self._nodes += 1
        self._text += text
        if self._nodes > MAX_NODES or self._text > MAX_TEXT:
            raise EncodeError(f"value larger than {MAX_NODES} items / {MAX_TEXT} bytes")

    def _enc(self, v: object, depth: int) -> list:
        if depth > MAX_DEPTH:
            raise EncodeError(f"value nested deeper than {MAX_DEPTH}")
        tp = type(v)
        if v is None:
            self._count()
            return ["N"]
        if tp is bool:
            self._count()
            return ["b", 1 if v else 0]
        if isinstance(v, int):
            n = int.__int__(v)
            if n.bit_length() > 8 * MAX_TEXT:
                raise EncodeError("integer too large")
            text = hex(n)
            self._count(len(text))
            return ["i", text]
        if isinstance(v, float):
            self._count()
            return ["f", float.hex(float.__float__(v))]
        if isinstance(v, complex):
            self._count()
            return ["c", float.hex(complex.real.__get__(v)), float.hex(complex.imag.__get__(v))]
        if isinstance(v, str):
            s = str.__str__(v)
            self._count(len(s))
            return ["s", s]
        if isinstance(v, (bytes, bytearray)):
            b = bytes(bytes.__getitem__(v, slice(None)) if isinstance(v, bytes) else bytearray.__getitem__(v, slice(None)))
            self._count(2 * len(b))
            return ["y" if isinstance(v, bytes) else "Y", b.hex()]
        if isinstance(v, list):
            self._count()
            return ["l", [self._enc(x, depth + 1) for x in list.__iter__(v)]]
        if isinstance(v, tuple):
            self._count()
            return ["t", [self._enc(x, depth + 1) for x in tuple.__iter__(v)]]
        if isinstance(v, dict):
            self._count()
            return ["d", [[self._enc(k, depth + 1), self._enc(x, depth + 1)] for k, x in dict.items(v)]]
        if isinstance(v, frozenset):
            self._count()
            return ["F", [self._enc(x, depth + 1) for x in frozenset.__iter__(v)]]
        if isinstance(v, set):
            self._count()
            return ["S", [self._enc(x, depth + 1) for x in set.__iter__(v)]]
        if tp is range:
            self._count()
            return ["r", hex(v.start), hex(v.stop), hex(v.step)]
        if tp is type and _BUILTIN_TYPES.get(v.__name__) is v:
            self._count()
            return ["T", v.__name__]
        raise _NotPlain


class _NotPlain(Exception):
    pass


# --------------------------------------------------------------------------------------------- parent side
def decode(tree: object) -> object:
    """Rebuild a value from its encoding; raises :class:`DecodeError` on anything malformed."""
    counter = [0]
    try:
        return _dec(tree, 0, counter)
    except DecodeError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"malformed value: {type(exc).__name__}") from None


def _dec(t: object, depth: int, counter: list[int]) -> object:
    counter[0] += 1
    if counter[0] > MAX_NODES or depth > MAX_DEPTH + 1:
        raise DecodeError("value too large")
    if type(t) is not list or not t or type(t[0]) is not str:
        raise DecodeError("malformed value")
    tag = t[0]
    if tag == "N":
        return None
    if tag == "b":
        return bool(_int_field(t, 1))
    if tag == "i":
        return int(_str_field(t, 1), 16)
    if tag == "f":
        return float.fromhex(_str_field(t, 1))
    if tag == "c":
        return complex(float.fromhex(_str_field(t, 1)), float.fromhex(_str_field(t, 2)))
    if tag == "s":
        return _str_field(t, 1)
    if tag == "y":
        return bytes.fromhex(_str_field(t, 1))
    if tag == "Y":
        return bytearray.fromhex(_str_field(t, 1))
    if tag in ("l", "t", "S", "F"):
        items = [_dec(x, depth + 1, counter) for x in _list_field(t, 1)]
        if tag == "l":
            return items
        if tag == "t":
            return tuple(items)
        if any(isinstance(x, (Opaque, list, dict, set, bytearray)) for x in items):
            raise DecodeError("unhashable set element")
        return set(items) if tag == "S" else frozenset(items)
    if tag == "d":
        out = {}
        for pair in _list_field(t, 1):
            if type(pair) is not list or len(pair) != 2:
                raise DecodeError("malformed dict item")
            key = _dec(pair[0], depth + 1, counter)
            if isinstance(key, (Opaque, list, dict, set, bytearray)):
                raise DecodeError("unhashable dict key")
            out[key] = _dec(pair[1], depth + 1, counter)
        return out
    if tag == "r":
        return range(int(_str_field(t, 1), 16), int(_str_field(t, 2), 16), int(_str_field(t, 3), 16))
    if tag == "T":
        name = _str_field(t, 1)
        if name not in _BUILTIN_TYPES:
            raise DecodeError("unknown builtin type")
        return _BUILTIN_TYPES[name]
    if tag == "o":
        if len(t) != 5 or type(t[1]) is not str or type(t[2]) is not int or type(t[3]) is not bool:
            raise DecodeError("malformed opaque value")
        return Opaque(t[1][:200], t[2], t[3], _int_field(t, 4))
    raise DecodeError(f"unknown value tag {tag[:10]!r}")


def _str_field(t: list, i: int) -> str:
    v = t[i]
    if type(v) is not str:
        raise DecodeError("malformed value field")
    return v


def _int_field(t: list, i: int) -> int:
    v = t[i]
    if type(v) is not int:
        raise DecodeError("malformed value field")
    return v


def _list_field(t: list, i: int) -> list:
    v = t[i]
    if type(v) is not list:
        raise DecodeError("malformed value field")
    return v

