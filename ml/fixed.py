"""Exact, machine-independent arithmetic for the fixed-point scoring scheme.

Everything here uses Python integers and the ``decimal`` module, whose
``ln`` is correctly rounded and implemented in software, so the same inputs
give the same integers on every machine (unlike ``numpy.log``, which may
differ by one ULP between CPUs). These integers are what the artifact stores
and what the on-chain verdict compares.

Scheme (see docs/ml.md):

* ``c(n)`` is scikit-learn's average path length of an unsuccessful search in
  a binary search tree of ``n`` samples: ``c(1) = 0``, ``c(2) = 1``,
  ``c(n) = 2 (ln(n - 1) + gamma) - 2 (n - 1) / n``.
* A leaf at depth ``d`` (root = 0) holding ``n`` training samples, in a tree
  grown on ``psi`` samples, contributes the normalised path length
  ``(d + c(n)) / c(psi)``, stored as ``round_half_even(value * 2**40)``
  (``FIXED_POINT_BITS``); every such value is below 4 * 2**40.
* A row's recorded result is the exact sum ``S`` of its leaves' contributions
  over all ``T`` trees. Its score is ``-2 ** (-S / (T * 2**40))``, which is
  scikit-learn's ``score_samples`` up to the rounding of the leaf values.
* The row is an outlier iff ``S < K`` with ``K = threshold_fixed(offset, T)``:
  the smallest integer with ``score(S) < offset  <=>  S < K``.
"""

from __future__ import annotations

import functools
import math
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext

from ml.limits import FIXED_POINT_BITS, INT64_MAX, MAX_SUBSAMPLE

DECIMAL_PRECISION = 50
"""Significant digits for every decimal computation (the constant below has 50)."""

EULER_GAMMA = Decimal("0.57721566490153286060651209008240243104215933593992")
"""The Euler-Mascheroni constant to 50 significant digits."""

LEAF_VALUE_CACHE = 1 << 16
"""Leaf values remembered across loads (an artifact repeats few (depth, n) pairs)."""

ONE = 1 << FIXED_POINT_BITS
"""The fixed-point representation of 1.0."""

ALL_OUTLIERS = INT64_MAX
"""Threshold meaning every row is an outlier (offset >= 0: every score is below it)."""

MAX_LEAF_VALUE = 4 * ONE
"""Bound on any leaf value: (d + c(n)) / c(psi) < 4 for d <= ceil(log2 psi) and n <= psi.

With MAX_TREES = 2**12 trees a path sum stays below 2**54, far inside int64."""

NO_OUTLIERS = 0
"""Threshold meaning no row is an outlier (offset <= -1: no score is below it)."""


@functools.lru_cache(maxsize=MAX_SUBSAMPLE + 1)
def average_path_length(n: int) -> Decimal:
    """scikit-learn's ``_average_path_length`` for one count, to 50 digits."""
    if n <= 1:
        return Decimal(0)
    if n == 2:
        return Decimal(1)
    with localcontext() as ctx:
        ctx.prec = DECIMAL_PRECISION
        m = Decimal(n - 1)
        return 2 * (m.ln() + EULER_GAMMA) - 2 * m / Decimal(n)


@functools.lru_cache(maxsize=LEAF_VALUE_CACHE)
def leaf_value(depth: int, n_samples: int, subsample: int) -> int:
    """Fixed-point normalised path length of a leaf (see the module docstring)."""
    assert depth >= 0 and n_samples >= 1 and subsample >= 2
    with localcontext() as ctx:
        ctx.prec = DECIMAL_PRECISION
        scaled = (Decimal(depth) + average_path_length(n_samples)) * ONE
        value = scaled / average_path_length(subsample)
        result = int(value.to_integral_value(rounding=ROUND_HALF_EVEN))
    assert 0 <= result < MAX_LEAF_VALUE
    return result


def threshold_fixed(offset: float, n_trees: int) -> int:
    """The integer K such that ``-2**(-S / (T * ONE)) < offset`` iff ``S < K``.

    For ``-1 < offset < 0`` this is ``ceil(T * ONE * log2(-1 / offset))``,
    computed exactly when ``-offset`` is a power of two (``'auto'`` gives
    ``-0.5`` and so ``K = T * ONE``) and to 50 digits otherwise, rounded up.
    """
    assert math.isfinite(offset) and n_trees >= 1
    if offset >= 0.0:
        return ALL_OUTLIERS
    if offset <= -1.0:
        return NO_OUTLIERS
    span = n_trees * ONE
    mantissa, exponent = math.frexp(-offset)
    if mantissa == 0.5:
        return span * (1 - exponent)
    with localcontext() as ctx:
        ctx.prec = DECIMAL_PRECISION
        log2_inverse = -Decimal(-offset).ln() / Decimal(2).ln()
        value = (log2_inverse * span).to_integral_value(rounding=ROUND_CEILING)
    result = int(value)
    assert 0 < result < INT64_MAX
    return result
