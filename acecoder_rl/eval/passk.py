"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With ``n`` samples of which ``c`` are correct, the chance that ``k`` samples drawn without replacement contain
at least one correct one is ``1 - C(n-c, k) / C(n, k)``. The binomials overflow floats long before ``n`` gets
large (``C(200, 100)`` is about 9e58), so the ratio is computed as a product of ``c`` factors instead:

    C(n-c, k) / C(n, k) = (n-c)! (n-k)! / (n! (n-c-k)!) = prod_{i = n-c+1}^{n} (1 - k / i)

Every factor is in [0, 1), so the product never overflows and loses no meaningful precision.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The k values reported when none are asked for (those above n are left out).
DEFAULT_KS = (1, 5, 10, 20, 50, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Estimated probability that at least one of ``k`` of the ``n`` samples is correct (``c`` correct)."""
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"need n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:  # every draw of k samples includes a correct one
        return 1.0
    all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        all_wrong *= 1.0 - k / i
    return 1.0 - all_wrong


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> ``(1, 5, 10)``: positive integers, sorted, without repeats."""
    try:
        values = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise ValueError(f"expected comma-separated integers such as 1,5,10, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"k values must be positive integers, got {text!r}")
    return tuple(sorted(values))


def reported_ks(n: int, requested: Iterable[int] | None) -> tuple[int, ...]:
    """The k values to report for ``n`` samples per problem.

    pass@1 is always reported. Asked-for values must all be <= n (a larger k has no unbiased estimate).
    Without a request: every one of :data:`DEFAULT_KS` up to n.
    """
    if requested is None:
        return tuple(k for k in DEFAULT_KS if k <= n)
    ks = tuple(sorted({1, *requested}))
    too_large = [k for k in ks if k > n]
    if too_large:
        raise ValueError(
            f"pass@k needs k <= n (samples per problem, here {n}); got k = " + ", ".join(map(str, too_large))
        )
    return ks
