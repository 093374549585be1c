import collections
import enum
import json

import pytest

from acecoder_rl.reward.sandbox import values


class AlwaysEqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class Color(enum.IntEnum):
    RED = 3


class Custom:
    pass


def roundtrip(v):
    return values.decode(json.loads(json.dumps(values.Encoder().encode(v))))


@pytest.mark.parametrize("v", [None, True, 3, -(10 ** 5000), 2.5, float("inf"), 1 + 2j, "x\udc80", b"\x00ab",
                               bytearray(b"z"), [1, (2, 3)], {1: "a", (1, 2): [3]}, {1, 2}, frozenset({3}),
                               range(1, 9, 2), int], ids=lambda v: type(v).__name__)
def test_plain_values_roundtrip_exactly(v):
    out = roundtrip(v)
    assert out == v and type(out) is type(v)


def test_nan_stays_nan():
    out = roundtrip(float("nan"))
    assert out != out


def test_subclasses_are_flattened_through_base_slots():
    assert type(roundtrip(AlwaysEqualInt(5))) is int and roundtrip(AlwaysEqualInt(5)) != 6
    point = collections.namedtuple("P", "x y")(1, 2)
    assert roundtrip(point) == (1, 2) and type(roundtrip(point)) is tuple
    assert roundtrip(Color.RED) == 3 and type(roundtrip(Color.RED)) is int
    assert type(roundtrip(collections.OrderedDict(a=1))) is dict


def test_custom_objects_are_opaque_and_kept_in_slots():
    enc = values.Encoder()
    obj = Custom()
    out = values.decode(enc.encode(obj))
    assert isinstance(out, values.Opaque) and out.default_eq and enc.slots[out.slot] is obj
    # A container holding one is opaque as a whole; list == list would consult the items' __eq__.
    out = values.decode(enc.encode([obj]))
    assert isinstance(out, values.Opaque) and not out.default_eq and enc.slots[out.slot][0] is obj


def test_size_caps():
    with pytest.raises(values.EncodeError):
        values.Encoder().encode(list(range(values.MAX_NODES + 10)))


@pytest.mark.parametrize("bad", [None, [], ["zz"], ["i", 3], ["l", "x"], ["S", [["l", []]]], ["d", [[["l", []], ["N"]]]],
                                 ["T", "open"], ["o", 1, 2, 3, 4]])
def test_malformed_encodings_are_rejected(bad):
    with pytest.raises(values.DecodeError):
        values.decode(bad)
