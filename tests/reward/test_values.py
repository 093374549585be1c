import collections
import datetime
import decimal
import enum
import fractions
import json
import random
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from acecoder_rl.reward.sandbox import values


class AlwaysEqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class AlwaysEqualList(list):
    def __eq__(self, other):
        return True


class AlwaysEqualStr(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


class LyingDict(dict):
    def __eq__(self, other):
        return True

    def __iter__(self):
        return iter(["lie"])

    def items(self):
        return [("lie", 0)]


class Color(enum.IntEnum):
    RED = 3


class Shade(enum.StrEnum):
    DARK = "dark"


class Custom:
    pass


class WithCall:
    def __call__(self):
        return 1


class ValueEq:
    def __eq__(self, other):
        return True


class L(list):
    pass


Point = collections.namedtuple("Point", "x y")


class Pair(typing.NamedTuple):
    a: int
    b: str = "z"


class Point3(Point):
    def norm(self):
        return 0


class FixedTz(datetime.tzinfo):
    def utcoffset(self, dt):
        return datetime.timedelta(hours=1)


def wire(tree):
    return json.loads(json.dumps(tree))


def roundtrip(v):
    return values.decode(wire(values.Encoder().encode(v)))


# ------------------------------------------------------------------------------------------- plain values
@pytest.mark.parametrize("v", [None, True, 3, -(10 ** 5000), 2.5, float("inf"), 1 + 2j, "x\udc80", b"\x00ab",
                               bytearray(b"z"), [1, (2, 3)], {1: "a", (1, 2): [3]}, {1, 2}, frozenset({3}),
                               range(1, 9, 2), int], ids=lambda v: type(v).__name__)
def test_plain_values_roundtrip_exactly(v):
    out = roundtrip(v)
    assert out == v and type(out) is type(v)


def test_nan_stays_nan():
    out = roundtrip(float("nan"))
    assert out != out


# -------------------------------------------------------------------------------------- stdlib value tags
TZ = datetime.timezone(datetime.timedelta(hours=-3, minutes=-30), "Somewhere")
STDLIB = [
    collections.OrderedDict([("b", 2), ("a", 1)]), collections.Counter("abracadabra"),
    collections.defaultdict(list, {"a": [1]}), collections.deque([1, 2, 3], maxlen=4),
    collections.deque("ab"),
    decimal.Decimal("1.10"), fractions.Fraction(-6, 4), datetime.date(2024, 2, 29),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=TZ, fold=1), datetime.datetime(1, 1, 1),
    datetime.time(23, 59, 59, 999999, datetime.timezone.utc), datetime.time(fold=1),
    datetime.timedelta(days=-3, seconds=5, microseconds=7), TZ, datetime.timezone.utc,
    datetime.timezone(datetime.timedelta(minutes=90)), {"k": 1}.keys(), {"k": [1]}.items(),
    collections.OrderedDict, collections.Counter, decimal.Decimal, fractions.Fraction, datetime.timezone,
]


@pytest.mark.parametrize("v", STDLIB, ids=lambda v: type(v).__name__)
def test_stdlib_values_roundtrip_to_the_stdlib_class(v):
    out = roundtrip(v)
    assert type(out) is type(v) and out == v and repr(out) == repr(v)


def test_ordered_dict_keeps_its_own_order():
    od = collections.OrderedDict([("a", 1), ("b", 2), ("c", 3)])
    od.move_to_end("a")
    out = roundtrip(od)
    assert list(out.items()) == [("b", 2), ("c", 3), ("a", 1)]
    reversed_order = roundtrip(collections.OrderedDict([("b", 2), ("a", 1)]))
    assert reversed_order != collections.OrderedDict([("a", 1), ("b", 2)])
    assert reversed_order == {"a": 1, "b": 2}


def test_defaultdict_factories():
    assert roundtrip(collections.defaultdict(int)).default_factory is int
    assert roundtrip(collections.defaultdict(collections.Counter)).default_factory is collections.Counter
    assert roundtrip(collections.defaultdict()).default_factory is None
    out = roundtrip(collections.defaultdict(lambda: 7, {"a": 1}))  # code cannot cross: no factory
    assert out.default_factory is None and out == {"a": 1}
    with pytest.raises(KeyError):
        out["missing"]


def test_deque_maxlen():
    out = roundtrip(collections.deque([1, 2], maxlen=2))
    out.append(3)
    assert out.maxlen == 2 and list(out) == [2, 3]


@pytest.mark.parametrize("text", ["1.10", "-0", "-0E+3", "1E+999999", "NaN", "-NaN123", "sNaN", "-Infinity",
                                  "123456789012345678901234567890.000000000000000000001"])
def test_decimal_is_exact(text):
    out = roundtrip(decimal.Decimal(text))
    assert str(out) == text and out.as_tuple() == decimal.Decimal(text).as_tuple()


def test_decimal_does_not_depend_on_the_judges_context():
    with decimal.localcontext() as ctx:
        ctx.prec = 2
        ctx.traps[decimal.InvalidOperation] = False
        assert roundtrip(decimal.Decimal("1.23456")).as_tuple() == decimal.Decimal("1.23456").as_tuple()
        with pytest.raises(values.DecodeError):
            values.decode(["dec", "junk"])


def test_fraction_and_datetime_exactness():
    out = roundtrip(fractions.Fraction(10 ** 40 + 1, 3))
    assert out == fractions.Fraction(10 ** 40 + 1, 3) and out.denominator == 3
    dt = datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=TZ)
    out = roundtrip(dt)
    assert out.fold == 1 and out.tzinfo == TZ and out.tzinfo.tzname(None) == "Somewhere"
    assert roundtrip(datetime.timezone(datetime.timedelta(0))) is datetime.timezone.utc


def test_other_tzinfo_is_opaque():
    out = roundtrip(datetime.datetime(2024, 1, 1, tzinfo=FixedTz()))
    assert isinstance(out, values.Opaque) and out.type_name == "datetime.datetime"
    assert isinstance(roundtrip([datetime.time(tzinfo=FixedTz())]), values.Opaque)


# ------------------------------------------------------------------------------------- subclass instances
@pytest.mark.parametrize("v, base, plain", [
    (L([1, 2]), list, [1, 2]), (AlwaysEqualInt(5), int, 5), (Color.RED, int, 3), (Shade.DARK, str, "dark"),
    (AlwaysEqualList([1]), list, [1]), (AlwaysEqualStr("a"), str, "a"), (LyingDict(a=1), dict, {"a": 1}),
], ids=lambda v: type(v).__name__)
def test_subclass_keeps_its_name_and_behaves_as_its_base(v, base, plain):
    out = roundtrip(v)
    cls = type(out)
    assert cls is not base and isinstance(out, base) and type(out) != base
    assert (cls.__name__, cls.__qualname__, cls.__module__) == (type(v).__name__, type(v).__qualname__,
                                                               type(v).__module__)
    assert base(out) == plain and type(base(out)) is base and out == plain
    own = {k for k, x in vars(cls).items() if callable(x) or hasattr(x, "__get__")}
    assert own <= {"__module__", "__qualname__", "__slots__", "__doc__"}  # no method of its own


def test_lying_eq_of_subclasses_is_ignored():
    assert roundtrip(AlwaysEqualInt(5)) != 6 and roundtrip(AlwaysEqualInt(5)) == 5
    assert roundtrip(AlwaysEqualList([1])) != [2] and roundtrip(AlwaysEqualStr("a")) != "b"
    assert roundtrip(LyingDict(a=1)) == {"a": 1} and roundtrip(LyingDict(a=1)) != {"lie": 0}
    assert roundtrip(Color.RED) == 3 and roundtrip(Shade.DARK) == "dark"
    assert roundtrip({Color.RED: 1}) == {3: 1}


def test_exact_type_checks_see_the_subclass():
    out = roundtrip(L([1]))
    assert type(out) is not list and type(out).__name__ == "L" and isinstance(out, list)
    assert type(roundtrip(L([1]))) is type(roundtrip(L([2])))  # one judge-side class per program class
    assert type(roundtrip([L(), L()])[0]) is type(roundtrip(L()))


def test_stdlib_subclasses():
    class Cache(collections.OrderedDict):
        def get_lru(self):
            return next(iter(self))

    class OrderedCounter(collections.Counter, collections.OrderedDict):
        pass

    class Money(decimal.Decimal):
        pass

    cache = Cache([("b", 1), ("a", 2)])
    out = roundtrip(cache)
    assert isinstance(out, collections.OrderedDict) and type(out).__name__ == "Cache"
    assert list(out) == ["b", "a"]
    assert not hasattr(out, "get_lru")
    out = roundtrip(OrderedCounter("aab"))
    assert isinstance(out, collections.Counter) and out == collections.Counter("aab")
    out = roundtrip(Money("1.50"))
    assert type(out).__name__ == "Money" and str(out) == "1.50"


def test_namedtuples():
    out = roundtrip(Point(1, 2))
    assert out.x == 1 and out.y == 2 and out == (1, 2) and type(out) is not tuple and isinstance(out, tuple)
    assert type(out).__name__ == "Point" and out._fields == ("x", "y") and out._asdict() == {"x": 1, "y": 2}
    assert repr(out) == "Point(x=1, y=2)" and type(roundtrip(Point(3, 4))) is type(out)
    assert type(out) is not type(roundtrip(collections.namedtuple("Point", "x z")(1, 2)))
    pair = roundtrip(Pair(1))
    assert pair.b == "z" and pair == (1, "z") and type(pair).__name__ == "Pair"
    sub = roundtrip(Point3(5, 6))
    assert type(sub).__name__ == "Point3" and sub.y == 6 and not hasattr(sub, "norm")
    assert roundtrip(roundtrip(Point(1, 2))) == Point(1, 2)  # the judge's copy encodes again as one


def test_namedtuple_with_unusual_class_name():
    tp = collections.namedtuple("P", "a")
    tp.__name__ = "my point"
    tp.__qualname__ = "f.<locals>.my point"
    out = roundtrip(tp(1))
    assert type(out).__name__ == "my point" and type(out).__qualname__ == "f.<locals>.my point" and out.a == 1


def test_tuple_with_fake_fields_is_a_plain_subclass():
    class Fake(tuple):
        _fields = ("_hidden",)
        _make = None

    out = roundtrip(Fake((1,)))
    assert type(out).__name__ == "Fake" and not hasattr(out, "_fields") and out == (1,)


def test_encoding_runs_no_program_code():
    calls = []

    class Meta(type):
        def __getattribute__(cls, name):
            calls.append(name)
            return type.__getattribute__(cls, name)

        def __eq__(cls, other):
            calls.append("eq")
            return True

        def __hash__(cls):
            calls.append("hash")
            return 0

    class Evil(list, metaclass=Meta):
        @property
        def __class__(self):
            calls.append("__class__")
            return dict

        def __iter__(self):
            calls.append("iter")
            return iter([99])

        def __len__(self):
            calls.append("len")
            return 0

    class Pretender(metaclass=Meta):
        @property
        def __class__(self):
            calls.append("__class__")
            return int

    value = {"e": Evil([1, 2]), "k": [Evil()]}
    pretender = Pretender()
    calls.clear()
    out = roundtrip(value)
    assert calls == [] and out["e"] == [1, 2] and type(out["e"]).__name__ == "Evil"
    assert isinstance(roundtrip(pretender), values.Opaque) and calls == []


# ------------------------------------------------------------------------------------------------ opaque
def test_custom_objects_are_opaque_and_kept_in_slots():
    enc = values.Encoder()
    obj = Custom()
    out = values.decode(enc.encode(obj))
    assert isinstance(out, values.Opaque) and out.default_eq and enc.slots[out.slot] is obj
    # A container holding one is opaque as a whole; list == list would consult the items' __eq__.
    out = values.decode(enc.encode([obj]))
    assert isinstance(out, values.Opaque) and not out.default_eq and enc.slots[out.slot][0] is obj


@pytest.mark.parametrize("v, is_callable, hashable", [
    (Custom(), False, True), (ValueEq(), False, False), (WithCall(), True, True), (len, True, True),
    (lambda: 0, True, True), ([Custom()], False, False), ((Custom(),), False, True), (iter([]), False, True),
], ids=["custom", "eq_no_hash", "with_call", "builtin", "lambda", "list", "tuple", "iterator"])
def test_opaque_callable_and_hashable(v, is_callable, hashable):
    out = roundtrip(v)
    assert isinstance(out, values.Opaque) and out.callable is is_callable and out.hashable is hashable
    assert out.type_name == f"{type(v).__module__}.{type(v).__qualname__}" and out.ident == id(v)


def test_program_hashable_list_as_key_is_opaque():
    class HashableList(list):
        __hash__ = object.__hash__

    assert isinstance(roundtrip({HashableList(): 1}), values.Opaque)
    assert isinstance(roundtrip({(1, HashableList()): 1}), values.Opaque)


def test_keys_equal_only_on_the_judge_are_refused():
    class Apart(int):
        def __eq__(self, other):
            return False

        def __hash__(self):
            return 7

    with pytest.raises(values.DecodeError):
        roundtrip({1: "a", Apart(1): "b"})  # one key as plain ints: a silent merge would change the value
    with pytest.raises(values.DecodeError):
        roundtrip({Apart(2), 2})


# ---------------------------------------------------------------------------------- identity and mutation
def call(f, *args):
    """What the harness does around one call, with the JSON wire in between."""
    judge, collect = values.Encoder(), []
    trees = wire([judge.encode(a, collect=collect) for a in args])
    child, created = values.Encoder(), []
    received = [values.decode(t, created=created, refs=created) for t in trees]
    originals = wire(values.snapshot(created, child))
    result = f(*received)
    known = {id(obj): k for k, obj in enumerate(created)}
    answer = wire(child.encode(result, known=known))
    changes = wire(values.mutations(created, originals, child))
    return values.decode_answer(answer, changes, collect), sorted(int(k) for k in changes)


def test_decode_and_update_in_place_one_by_one():
    arg = {"a": [1]}
    collect, created = [], []
    tree = wire(values.Encoder().encode(arg, collect=collect))
    received = values.decode(tree, created=created, refs=created)
    child = values.Encoder()
    originals = values.snapshot(created, child)
    received["a"].append(received)
    known = {id(obj): k for k, obj in enumerate(created)}
    assert values.decode(wire(child.encode(received["a"], known=known)), refs=collect) is arg["a"]
    for k, tree in values.mutations(created, originals, child).items():
        values.update_in_place(collect[k], values.decode(wire(tree), refs=collect))
    assert arg["a"] == [1, arg] and arg["a"][1] is arg


def test_identity_of_a_returned_argument():
    arg = [1, 2]
    out, changed = call(lambda v: v, arg)
    assert out is arg and changed == []
    out, _ = call(lambda v: v[:], arg)
    assert out is not arg and out == arg
    out, _ = call(lambda v: (v, [v]), arg)
    assert out[0] is arg and out[1][0] is arg


def test_in_place_mutation_reaches_the_judges_object():
    arg = [3, 1, 2]
    out, changed = call(lambda v: v.sort(), arg)
    assert out is None and arg == [1, 2, 3] and changed == [0]
    arg = [1, 2]
    call(lambda v: v.append(9), arg)
    assert arg == [1, 2, 9]


def test_aliasing_between_arguments_and_inside_values():
    shared = [1]
    out, _ = call(lambda a, b: a is b, shared, shared)
    assert out is True
    nested = {"a": shared, "b": (shared,)}
    out, _ = call(lambda d: d["a"] is d["b"][0], nested)
    assert out is True
    out = roundtrip([shared, shared])
    assert out[0] is out[1]


def test_self_reference():
    arg = [1, 2]
    call(lambda v: v.append(v), arg)
    assert arg[2] is arg and arg[:2] == [1, 2]
    loop = [0]
    loop.append(loop)
    out = roundtrip(loop)
    assert out[1] is out
    d = {}
    d["me"] = d
    out = roundtrip(d)
    assert out["me"] is out and out is not d


def test_mutation_of_nested_containers():
    inner = [1]
    outer = {"a": inner, "b": (inner,), "c": {2}}

    def f(d):
        d["a"].append(2)
        d["c"].add(3)
        d["new"] = [9]
        return d["b"]

    out, changed = call(f, outer)
    assert outer == {"a": [1, 2], "b": ([1, 2],), "c": {2, 3}, "new": [9]} and outer["a"] is inner
    assert out[0] is inner and changed == [0, 1, 2]
    untouched = [[1], [2]]
    _, changed = call(lambda v: v[1].append(3), untouched)
    assert changed == [2] and untouched == [[1], [2, 3]]


@pytest.mark.parametrize("arg, f, expected", [
    ({"b": 1}, lambda d: d.update(a=2), {"b": 1, "a": 2}),
    ({1, 2}, lambda s: s.discard(1), {2}),
    (bytearray(b"ab"), lambda b: b.extend(b"c"), bytearray(b"abc")),
    (collections.OrderedDict(a=1, b=2), lambda d: d.move_to_end("a"), collections.OrderedDict(b=2, a=1)),
    (collections.Counter("ab"), lambda c: c.update("a"), collections.Counter("aab")),
    (collections.defaultdict(list), lambda d: d["x"].append(1), {"x": [1]}),
    (collections.deque([1, 2], maxlen=2), lambda d: d.append(3), collections.deque([2, 3], maxlen=2)),
    (L([2, 1]), lambda v: v.sort(), [1, 2]),
], ids=lambda v: type(v).__name__ if not callable(v) else "")
def test_update_in_place_for_every_mutable_type(arg, f, expected):
    before = type(arg)
    call(f, arg)
    assert type(arg) is before and arg == expected
    if isinstance(arg, collections.OrderedDict):
        assert list(arg) == list(expected)


def test_type_change_or_opaque_content_is_not_in_place():
    class Other(list):
        __slots__ = ()

    def retype(v):
        v.__class__ = Other

    with pytest.raises(values.NotInPlace):
        call(retype, L([1]))
    with pytest.raises(values.NotInPlace):
        call(lambda v: v.append(Custom()), [1])
    with pytest.raises(values.NotInPlace):
        values.update_in_place([1], {1: 2})
    with pytest.raises(values.NotInPlace):
        values.update_in_place((1,), (2,))


def test_collect_and_created_follow_one_pre_order():
    a, b, c = [1], [2], [3]
    d = {"k": b}
    value = [a, d, (c,), a]
    collect, created = [], []
    tree = wire(values.Encoder().encode(value, collect=collect))
    assert [id(x) for x in collect] == [id(value), id(a), id(d), id(b), id(c)]
    out = values.decode(tree, created=created, refs=created)
    assert created[0] is out and created[1] is out[0] is out[3] and created[2] is out[1]
    assert created[3] is out[1]["k"] and created[4] is out[2][0]
    again = values.Encoder().encode(b, collect=collect)
    assert again == ["@", 3] and len(collect) == 5


def test_failed_encode_or_decode_leaves_the_lists_alone():
    collect, created = [[0]], [[0]]
    assert values.Encoder().encode([[1], Custom()], collect=collect)[0] == "o" and len(collect) == 1
    with pytest.raises(values.DecodeError):
        values.decode(["l", [["l", []], ["zz"]]], created=created)
    assert len(created) == 1


@pytest.mark.parametrize("tree, refs", [(["@", 0], None), (["@", 1], [[]]), (["@", -1], [[]]),
                                        (["@", "0"], [[]]), (["^", 0], None), (["l", [["^", 1]]], None)])
def test_bad_references(tree, refs):
    with pytest.raises(values.DecodeError):
        values.decode(tree, refs=refs)


def test_shared_containers_count_once_per_occurrence():
    dag: list = []
    for _ in range(40):
        dag = [dag, dag]  # 2**40 items written out
    with pytest.raises(values.EncodeError):
        values.Encoder().encode(dag)
    small: list = []
    for _ in range(10):
        small = [small, small]
    assert values.decode(wire(values.Encoder().encode(small)))[1][1][0] == small[1][1][0]
    tree: list = ["l", []]
    for level in range(39, -1, -1):
        tree = ["l", [tree, ["^", level + 1]]]
    with pytest.raises(values.DecodeError):
        values.decode(tree)
    with pytest.raises(values.DecodeError):
        values.decode(["l", [["@", 0]] * 1000], refs=[list(range(1000))])
    assert len(values.decode(["l", [["@", 0]] * 10], refs=[list(range(1000))])) == 10


def test_changes_cannot_build_a_dag_across_trees():
    collect = [[] for _ in range(40)]
    changes = {str(k): ["l", [["@", k + 1], ["@", k + 1]]] for k in range(39)}
    with pytest.raises(values.DecodeError):
        values.decode_answer(["N"], changes, collect)


def test_deep_honest_mutations_fit():
    chain = inner = [0] * 100
    for _ in range(150):
        inner.append([0] * 100)
        inner = inner[-1]

    def grow(v):
        while isinstance(v, list):
            v.insert(0, 1)
            v = v[-1]

    _, changed = call(grow, chain)
    assert len(changed) == 151 and chain[0] == 1 and chain[-1][0] == 1


def test_bad_changes():
    collect = [[1], [2]]
    with pytest.raises(values.NotInPlace):
        values.decode_answer(["N"], {"0": ["l", []], "1": ["d", []]}, collect)
    assert collect == [[1], [2]]  # nothing applied
    for bad in ([], {"2": ["l", []]}, {"-1": ["l", []]}, {"x": ["l", []]}, {"\u0663": ["l", []]},
                {"0": ["l", []], 0: ["l", []]}, {"0": ["zz"]}):
        with pytest.raises(values.DecodeError):
            values.decode_answer(["N"], bad, collect)
    assert collect == [[1], [2]]


def test_contents_share_one_budget():
    created = [[0] * (values.MAX_NODES // 3) for _ in range(4)]
    with pytest.raises(values.EncodeError):
        values.snapshot(created, values.Encoder())
    with pytest.raises(ValueError):
        values.mutations([[1]], [], values.Encoder())


# --------------------------------------------------------------------------------------------------- caps
def test_size_caps():
    with pytest.raises(values.EncodeError):
        values.Encoder().encode(list(range(values.MAX_NODES + 10)))
    assert len(roundtrip([0] * (values.MAX_NODES - 1))) == values.MAX_NODES - 1
    with pytest.raises(values.DecodeError):
        values.decode(["l", [["N"]] * values.MAX_NODES])


def test_depth_caps():
    deep = inner = []
    for _ in range(values.MAX_DEPTH):
        inner.append([])
        inner = inner[0]
    assert roundtrip(deep) == deep
    inner.append([])
    with pytest.raises(values.EncodeError):
        values.Encoder().encode(deep)
    tree = ["N"]
    for _ in range(values.MAX_DEPTH + 1):
        tree = ["sub", "m", "q", "n", ["t", [tree]]]
    with pytest.raises(values.DecodeError):
        values.decode(tree)


def test_class_caps():
    many = [type(f"C{i}", (int,), {})(i) for i in range(values.MAX_CLASSES + 1)]
    with pytest.raises(values.EncodeError):
        values.Encoder().encode(many)
    assert len(roundtrip(many[:values.MAX_CLASSES])) == values.MAX_CLASSES
    tree = ["l", [["sub", "m", f"C{i}", f"C{i}", ["i", "0x1"]] for i in range(values.MAX_CLASSES + 1)]]
    with pytest.raises(values.DecodeError):
        values.decode(tree)
    with pytest.raises(values.DecodeError):
        values.decode(["sub", "m", "x" * (values.MAX_NAME + 1), "x", ["i", "0x1"]])


def test_fraction_cap():
    big = fractions.Fraction(2 ** (values.MAX_FRACTION_BITS + 1) + 1, 2)
    with pytest.raises(values.EncodeError):
        values.Encoder().encode(big)
    with pytest.raises(values.DecodeError):
        values.decode(["frac", hex(big.numerator), "0x2"])


def test_hash_flood_and_duplicates_are_refused():
    modulus = sys.hash_info.modulus
    colliding = [["i", hex(i * modulus)] for i in range(1, values.MAX_COLLISIONS + 2)]
    with pytest.raises(values.DecodeError):
        values.decode(["S", colliding])
    with pytest.raises(values.DecodeError):
        values.decode(["d", [[k, ["N"]] for k in colliding]])
    assert len(values.decode(["S", colliding[:values.MAX_COLLISIONS]])) == values.MAX_COLLISIONS
    for bad in (["d", [[["i", "0x1"], ["N"]], [["f", "0x1.0p+0"], ["N"]]]], ["S", [["i", "0x1"], ["b", 1]]],
                ["dk", [["s", "a"], ["s", "a"]]], ["od", [[["s", "a"], ["N"]], [["s", "a"], ["N"]]]]):
        with pytest.raises(values.DecodeError):
            values.decode(bad)


# --------------------------------------------------------------------------------------- malformed trees
MALFORMED = [
    None, [], ["zz"], ["i", 3], ["l", "x"], ["S", [["l", []]]], ["d", [[["l", []], ["N"]]]], ["T", "open"],
    ["o", 1, 2, 3, 4], ["N", 1], ["b"], ["i", "0x1", "0x2"], ["i", "zz"], ["f", "x"], ["c", "0x1p0"],
    ["y", "0"],
    ["Y", 1], ["t", [1]], ["F", [["l", []]]], ["r", "0x1", "0x2", "0x0"], ["d", [["N"]]], ["d", [[["N"]]]],
    ["od", [[["S", []], ["N"]]]], ["ctr", "x"], ["dd", ["i", "0x1"], []], ["dd", ["T", "Ellipsis"], []],
    ["dd", ["N"]], ["dq", -1, []], ["dq", 1, [["N"], ["N"]]], ["dq", True, []], ["dq", 10 ** 30, []],
    ["dq", None, "x"], ["dec", "1.2.3"], ["dec", 1], ["frac", "0x1", "0x0"], ["frac", "0x1"],
    ["date", 2024, 2, 30], ["date", 2024, 2], ["date", "2024", 1, 1],
    ["dt", 2024, 1, 1, 0, 0, 0, 0, 0, ["N"]],
    ["dt", 2024, 1, 1, 0, 0, 0, 0, 2, None], ["dt", 10 ** 30, 1, 1, 0, 0, 0, 0, 0, None],
    ["time", 24, 0, 0, 0, 0, None], ["time", 0, 0, 0, 0, 0, "utc"], ["td", 10 ** 10, 0, 0], ["td", 1.5, 0, 0],
    ["tz", ["i", "0x1"], None], ["tz", ["td", 1, 0, 0], None], ["tz", ["td", 0, 60, 0], 5],
    ["tz", ["sub", "m", "q", "n", ["td", 0, 60, 0]], None], ["dk", [["l", []]]], ["di", [["N"]]],
    ["nt", "m", "P", "P", "x x", [["N"], ["N"]]], ["nt", "m", "P", "P", "_x", [["N"]]],
    ["nt", "m", "P", "P", "class", [["N"]]], ["nt", "m", "P", "P", "x", []], ["nt", "m", "P", "P", "x", "N"],
    ["nt", "m", "P", 1, "x", [["N"]]], ["sub", "m", "q", "n", ["N"]], ["sub", "m", "q", "n", ["b", 1]],
    ["sub", "m", "q", "n", ["sub", "m", "q", "n", ["i", "0x1"]]], ["sub", "m", "q", "n\x00", ["i", "0x1"]],
    ["sub", "m", "q", "n", "i"], ["sub", "m", "q", ["i", "0x1"]], ["o", "t", 1, True, 0, True, True, 1],
    ["l", [["o", "t", 1, True, 0, True, True, True]]], ["@"], ["^", 0], ["dec", "sNaN", 1],
    ["S", [["dec", "sNaN"]]], ["s", "x", "y"], ["T", 1], ["dk", "x"],
]


@pytest.mark.parametrize("bad", MALFORMED, ids=repr)
def test_malformed_encodings_are_rejected(bad):
    with pytest.raises(values.DecodeError):
        values.decode(bad)


def _corpus() -> list:
    shared = [1]
    loop: list = [2]
    loop.append(loop)
    samples = [
        [None, True, 3, 2.5, 1j, "s", b"b", bytearray(b"B"), (1,), {1: 2}, {3}, frozenset({4}), range(3)],
        [int, None],
        shared, [shared, {"k": shared}], loop, *STDLIB, L([1, {"a": 2}]), AlwaysEqualInt(1), Color.RED,
        Shade.DARK, Point(1, [2]), Pair(1), Point3(1, 2), collections.defaultdict(set, {1: {2}}),
        {"dt": datetime.datetime(2024, 1, 1, tzinfo=TZ), "t": datetime.time(tzinfo=datetime.timezone.utc)},
    ]
    return [wire(values.Encoder().encode(v)) for v in samples]


_TAGS = "N b i f c s y Y l t d S F r T od ctr dd dq dec frac date dt time td tz dk di nt sub o @ ^".split()
_JUNK = [None, True, False, 0, -1, 1, 2, 10 ** 30, 1.5, "", "x", "0x1", "N", "i", "sub", "@", "^", [], {},
         ["N"], ["zz"], ["i"], ["l"], ["@", 0], ["^", 0], [[]], ["T", "int"], ["td", 0, 0, 0]]


def _mutate(tree: object, rng: random.Random, nodes: list) -> object:
    """A copy of ``tree`` with one random change somewhere inside it (junk or a node from ``nodes``)."""
    if not isinstance(tree, list) or not tree or rng.random() < 0.15:
        return rng.choice(_JUNK) if rng.random() < 0.5 else rng.choice(nodes)
    out = list(tree)
    i = rng.randrange(len(out))
    action = rng.random()
    if action < 0.6:
        out[i] = _mutate(out[i], rng, nodes)
    elif action < 0.7:
        del out[i]
    elif action < 0.8:
        out.insert(i, rng.choice(_JUNK))
    elif action < 0.9:
        out.append(out[i])
    elif isinstance(out[0], str):
        out[0] = rng.choice(_TAGS)
    return out


def _subtrees(tree: object) -> list:
    found = [tree]
    if isinstance(tree, list):
        for x in tree:
            found.extend(_subtrees(x))
    return found


def test_fuzzed_trees_decode_or_raise_decode_error():
    corpus = _corpus()
    nodes = [x for tree in corpus for x in _subtrees(tree) if isinstance(x, list)]
    rng = random.Random(20240611)
    decoded = 0
    for _ in range(6000):
        tree = rng.choice(corpus)
        for _ in range(rng.randint(1, 3)):
            tree = _mutate(tree, rng, nodes)
        created = rng.choice([None, []])
        refs = rng.choice([None, [[1], {"a": 1}], created])
        try:
            values.decode(tree, created=created, refs=refs)
            decoded += 1
        except values.DecodeError:
            pass
    assert decoded > 500  # the mutations are not all trivially rejected


def test_fuzzed_answers_decode_or_raise_decode_error_or_not_in_place():
    corpus = _corpus()
    nodes = [x for tree in corpus for x in _subtrees(tree) if isinstance(x, list)]
    rng = random.Random(7)
    for _ in range(2000):
        collect = [[1], {"a": 1}, {2}, collections.deque([3])]
        changes = {str(rng.randrange(5)): _mutate(rng.choice(nodes), rng, nodes)
                   for _ in range(rng.randint(0, 3))}
        try:
            values.decode_answer(_mutate(rng.choice(corpus), rng, nodes), changes, collect)
        except (values.DecodeError, values.NotInPlace):
            pass


# ----------------------------------------------------------------------------------------------- packaging
def test_importable_as_a_top_level_stdlib_only_module():
    sandbox = Path(values.__file__).parent
    script = (f"import sys; sys.path.insert(0, {str(sandbox)!r}); before = set(sys.modules); import values; "
              "new = set(sys.modules) - before; "
              "extra = {m for m in new if m.split('.')[0] not in sys.stdlib_module_names}; "
              "assert extra == {'values'}, extra; print(values.decode(values.Encoder().encode([1])))")
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[1]", out.stderr
