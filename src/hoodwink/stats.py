"""Confidence intervals for the rates the studies report.

A success or transfer rate measured on a few samples is an anecdote, not an
estimate: 3 of 7 photos is compatible with anything from about 16% to 75%.
The studies print every rate over fewer than :data:`SMALL_N` samples with its
count and a Wilson 95% interval (:func:`rate_text`), and draw a conclusion
only where the intervals allow it (:func:`differ`).

The Wilson score interval (Wilson, *Probable inference, the law of
succession, and statistical inference*, JASA 1927) keeps its coverage near
the nominal level for small n and for rates near 0 or 1, where the normal
("Wald") interval collapses to a point; see Brown, Cai and DasGupta,
*Interval Estimation for a Binomial Proportion*, Statistical Science 2001.
"""

from __future__ import annotations

import math
import numbers

from hoodwink.errors import ConfigError

__all__ = ["SMALL_N", "differ", "rate_text", "wilson"]

#: Rates over fewer samples than this are printed with n and a 95% interval.
SMALL_N = 100


def _count(value: object, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an int (a count of samples). "
            f"Got {value!r}."
        )
    return int(value)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k : int in [0, n]
        Successes.
    n : int >= 1
        Trials.
    z : float > 0, default 1.96
        Normal quantile: 1.96 gives a 95% interval.

    Returns
    -------
    (lo, hi) : tuple of float
        Bounds in [0, 1], ``lo <= k / n <= hi``.

    Raises
    ------
    ConfigError
        ``k`` or ``n`` is not an int, ``n < 1``, ``k`` outside ``[0, n]``, or
        ``z`` is not a finite number > 0.

    Examples
    --------
    >>> lo, hi = wilson(3, 7)
    >>> f"{lo:.3f} {hi:.3f}"
    '0.158 0.750'
    >>> wilson(0, 10)[0], round(wilson(0, 10)[1], 3)
    (0.0, 0.278)
    >>> wilson(7, 7)[1]
    1.0
    """
    k = _count(k, "k", "wilson")
    n = _count(n, "n", "wilson")
    if n < 1:
        raise ConfigError(f"The 'n' parameter of wilson must be >= 1 (an empty pool has no "
                          f"rate). Got {n}.")
    if not 0 <= k <= n:
        raise ConfigError(f"The 'k' parameter of wilson must be in [0, n] = [0, {n}]. Got {k}.")
    if (isinstance(z, bool) or not isinstance(z, numbers.Real) or not math.isfinite(float(z))
            or float(z) <= 0):
        raise ConfigError(f"The 'z' parameter of wilson must be a finite float > 0 (1.96 for "
                          f"95%). Got {z!r}.")
    z = float(z)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At k = 0 or k = n the bound is exactly 0 or 1; rounding must not move it off.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def rate_text(k: int, n: int, *, digits: int = 0) -> str:
    """A rate as the studies print it: with n, and a 95% interval when n is small.

    Parameters
    ----------
    k, n : int
        Successes and trials; ``n == 0`` gives ``"– (0/0)"``.
    digits : int >= 0, default 0
        Decimals of the percentages.

    Returns
    -------
    str
        ``"43% (3/7, 95% CI 16–75%)"`` when ``n <`` :data:`SMALL_N`, else
        ``"76.1% (372/489)"`` (one more decimal for the large pools).

    Examples
    --------
    >>> rate_text(3, 7)
    '43% (3/7, 95% CI 16–75%)'
    >>> rate_text(370, 489)
    '75.7% (370/489)'
    >>> rate_text(0, 0)
    '– (0/0)'
    """
    k = _count(k, "k", "rate_text")
    n = _count(n, "n", "rate_text")
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or digits < 0:
        raise ConfigError(f"The 'digits' parameter of rate_text must be an int >= 0. "
                          f"Got {digits!r}.")
    if n == 0 and k == 0:
        return "– (0/0)"
    lo, hi = wilson(k, n)
    if n >= SMALL_N:
        return f"{k / n:.{digits + 1}%} ({k}/{n})"
    return (f"{k / n:.{digits}%} ({k}/{n}, 95% CI {lo * 100:.{digits}f}–"
            f"{hi * 100:.{digits}f}%)")


def differ(k1: int, n1: int, k2: int, n2: int, z: float = 1.96) -> bool:
    """Whether two rates' Wilson intervals are disjoint (a conservative test).

    The studies only say that one rate beats another when this holds.

    Examples
    --------
    >>> differ(5, 7, 2, 7)     # 71% against 29% of seven photos: the intervals overlap
    False
    >>> differ(151, 450, 84, 455)
    True
    """
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    return a[1] < b[0] or b[1] < a[0]
