from fractions import Fraction
from math import comb

import pytest

from acecoder_rl.eval.passk import parse_ks, pass_at_k, reported_ks

# (n, c, k) -> 1 - C(n-c, k) / C(n, k), worked out by hand.
HAND_TABLE = [
    (1, 0, 1, 0.0),
    (1, 1, 1, 1.0),
    (2, 1, 1, 0.5),  # c / n
    (2, 1, 2, 1.0),  # n - c < k: every pair holds the correct one
    (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (5, 1, 3, 0.6),  # 1 - C(4,3)/C(5,3) = 1 - 4/10
    (10, 3, 5, 11 / 12),  # 1 - C(7,5)/C(10,5) = 1 - 21/252
    (4, 0, 4, 0.0),
    (10, 10, 1, 1.0),
    (20, 1, 10, 0.5),  # 1 - C(19,10)/C(20,10) = 1 - 10/20
]


@pytest.mark.parametrize(("n", "c", "k", "expected"), HAND_TABLE)
def test_hand_computed_table(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_1_is_the_fraction_correct():
    assert all(pass_at_k(7, c, 1) == pytest.approx(c / 7) for c in range(8))


@pytest.mark.parametrize(("n", "c", "k"), [(200, 13, 100), (500, 1, 250), (1000, 37, 10), (300, 150, 149)])
def test_stable_where_binomials_overflow_floats(n, c, k):
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))  # C(500, 250) ~ 1e149, C(1000, ...) beyond float range
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_parse_and_report_ks():
    assert parse_ks("10, 1,5,5") == (1, 5, 10)
    for bad in ("", "0", "1,x", "-1"):
        with pytest.raises(ValueError):
            parse_ks(bad)
    assert reported_ks(1, None) == (1,)
    assert reported_ks(16, None) == (1, 5, 10)
    assert reported_ks(10, (5,)) == (1, 5)  # pass@1 always
    with pytest.raises(ValueError, match="k <= n"):
        reported_ks(4, (1, 5))
