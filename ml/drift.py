"""Score drift: fixed score bins, exact binning of path sums, and the population stability index.

A model's *training distribution* is the histogram of its training rows'
scores over fixed bins (``SCORE_EDGES``: 0.30 to 0.80 in steps of 0.025, so
``DRIFT_BINS`` = 22 bins with the two open-ended tails). The same bins hold the
scores the chain commits, so the two histograms can be compared with the
population stability index

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

where ``e_i`` and ``a_i`` are the training and the observed fractions. The
usual reading: below 0.1 the population is stable, 0.1 to 0.25 it has moved
(notice), above 0.25 it has moved a lot (alarm).

Everything here is exact on every machine, because nodes must agree on it:

* a score is ``2 ** (-S / (T * ONE))`` for the path sum ``S`` of ``T`` trees, so
  ``score >= e`` iff ``S <= T * m(e)`` with ``m(e) = -log2(e) * ONE``; the
  integers ``m(e)`` are derived once with ``decimal`` (correctly rounded) and a
  path sum's bin is found by integer comparisons only;
* PSI is computed with ``decimal`` at a fixed precision and rounded to an
  integer number of parts per million (``PSI_SCALE``); no float, no libm.

Empty bins would make PSI infinite, so both histograms are smoothed by adding
half a count to every bin (``(c + 1/2) / (n + B/2)``), the common remedy.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache
from itertools import pairwise

import numpy as np

from ml.fixed import ONE

SCORE_EDGES: tuple[Decimal, ...] = tuple(Decimal("0.300") + Decimal("0.025") * k for k in range(21))
"""Bin edges in score space; bin 0 is below 0.30, bin 21 is 0.80 and above."""
DRIFT_BINS = len(SCORE_EDGES) + 1
PSI_SCALE = 1_000_000
"""PSI is kept as an integer number of millionths."""
MAX_BIN_COUNT = 2**53
"""Bound on one bin's count, in an artifact and on chain (far above any real total)."""
_CTX = Context(prec=40, rounding=ROUND_HALF_EVEN)
assert DRIFT_BINS == 22


def _path_length_edge(edge: Decimal) -> int:
    """``-log2(edge) * ONE``, rounded down: the normalised path length where the score is edge."""
    value = _CTX.multiply(_CTX.divide(-edge.ln(_CTX), Decimal(2).ln(_CTX)), Decimal(ONE))
    return int(value.to_integral_value(rounding="ROUND_FLOOR"))


PATH_EDGES: tuple[int, ...] = tuple(_path_length_edge(e) for e in SCORE_EDGES)
"""Per-tree path lengths (fixed point) at the score edges; decreasing as the score rises."""
assert all(a > b for a, b in pairwise(PATH_EDGES))


@lru_cache(maxsize=64)
def _ascending_limits(n_trees: int) -> tuple[int, ...]:
    """``T * m(e)`` for every edge, ascending (highest score edge first)."""
    return tuple(n_trees * m for m in reversed(PATH_EDGES))


def bin_of(path_sum: int, n_trees: int) -> int:
    """The bin of a score given by its path sum: how many score edges it reaches.

    ``score >= e`` iff ``path_sum <= T * m(e)``; the limits are ascending, so the
    number of edges reached is the number of limits at or above ``path_sum``.
    """
    assert n_trees > 0
    limits = _ascending_limits(n_trees)
    return len(limits) - bisect_left(limits, path_sum)


def histogram(path_sums: np.ndarray | Sequence[int], n_trees: int) -> list[int]:
    """Counts per bin of many path sums (the training distribution of a new model)."""
    counts = [0] * DRIFT_BINS
    for s in np.asarray(path_sums, dtype=np.int64).tolist():
        counts[bin_of(int(s), n_trees)] += 1
    return counts


def psi_ppm(expected: Sequence[int], actual: Sequence[int]) -> int:
    """PSI of ``actual`` against ``expected`` (both counts per bin), in millionths, exactly."""
    assert len(expected) == len(actual) == DRIFT_BINS
    assert sum(expected) > 0 and sum(actual) > 0
    half = Decimal("0.5")
    e_total = _CTX.add(Decimal(sum(expected)), half * DRIFT_BINS)
    a_total = _CTX.add(Decimal(sum(actual)), half * DRIFT_BINS)
    total = Decimal(0)
    for e_count, a_count in zip(expected, actual, strict=True):
        e = _CTX.divide(_CTX.add(Decimal(e_count), half), e_total)
        a = _CTX.divide(_CTX.add(Decimal(a_count), half), a_total)
        term = _CTX.multiply(_CTX.subtract(a, e), _CTX.divide(a, e).ln(_CTX))
        total = _CTX.add(total, term)
    scaled = _CTX.multiply(total, Decimal(PSI_SCALE))
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def check_counts(value: object) -> list[int] | str:
    """A histogram from outside (an artifact): the counts, or what is wrong with them."""
    if type(value) is not list or len(value) != DRIFT_BINS:
        return f"expected an array of {DRIFT_BINS} counts"
    for i, count in enumerate(value):
        if type(count) is not int or not 0 <= count <= MAX_BIN_COUNT:
            return f"bin {i}: expected an integer in 0..{MAX_BIN_COUNT}"
    if sum(value) == 0:
        return "holds no training row"
    return list(value)
