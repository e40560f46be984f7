"""Every Numba-compiled function of the ml package, in one module.

Numba's on-disk cache (``cache=True``) is keyed on the source file that
defines a function and freezes module-level constants into the machine code;
it does not notice when a *different* file a kernel calls into or reads a
constant from changes. Keeping all kernels, their helpers and their
constants here means an upgrade that edits any of them invalidates all of
them together. The kernels import nothing from the rest of ``ml``.

Nodes are packed by ``ml.score.Scorer`` into an int32 table with columns
``COL_*`` (the threshold column read through a float32 view); leaves point to
themselves with threshold +inf, and the table's last row is an unreachable
probe holding a subnormal threshold (see ``denormals_flushed``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Columns of the packed node table; the right child follows the left one so
# that ``COL_LEFT + go_right`` picks the child without a branch.
COL_FEATURE, COL_THRESHOLD, COL_LEFT, COL_RIGHT = 0, 1, 2, 3

LN2 = 0.6931471805599453
"""float64 nearest to ln(2)."""

TAYLOR_TERMS = 24
"""Terms of the exp series on [0, ln 2): the truncation error is below 1e-27."""

INTERLEAVE = 8
"""Rows walked together in large batches (independent walks overlap their loads)."""

NAN_ROW = -1
"""Path sum the row kernel returns for a row holding NaN (real sums are >= 0)."""

NO_NAN = -1
"""What the batch kernel returns when no row holds NaN (else the first such row)."""

FLUSHED = -2
"""What the kernels return when the CPU flushes subnormals to zero (``denormals_flushed``)."""

SUBNORMAL_PROBE = 2.0**-140
"""A float64 whose float32 rounding is subnormal: lost under flush-to-zero or denormals-are-zero."""


@njit(cache=True, nogil=True)
def neg_exp2(x: float) -> float:
    """2 ** -x for 0 <= x < 1000, from +, -, * and / only (same bits everywhere).

    Scores call it with x = S / (T * 2**40) < 4 (``ml.fixed.MAX_LEAF_VALUE``).
    """
    whole = int(x)
    y = (x - whole) * LN2
    acc = 1.0
    for k in range(TAYLOR_TERMS, 0, -1):
        acc = 1.0 - y * acc / k
    for _ in range(whole):
        acc *= 0.5
    return acc


@njit(cache=True, nogil=True)
def denormals_flushed(nodes_f, positive: float) -> bool:
    """True if this thread's FPU flushes float32 subnormals (FTZ or DAZ mode).

    Both probes run on this CPU's current mode, never at compile time: the
    last row of the node table holds a subnormal threshold the compiler cannot
    see (denormals-are-zero reads it as 0), and ``positive / positive`` is a
    1.0 it cannot fold, whose product with ``SUBNORMAL_PROBE`` is stored as a
    float32 (flush-to-zero stores 0).
    """
    if not (nodes_f[nodes_f.shape[0] - 1, COL_THRESHOLD] > np.float32(0.0)):
        return True
    cell = np.empty(1, np.float32)
    cell[0] = np.float32(positive / positive * SUBNORMAL_PROBE)
    return cell.view(np.int32)[0] == 0


@njit(cache=True, nogil=True)
def walk(x, i, nodes, nodes_f, root, steps):
    node = root
    for _ in range(steps):
        go_right = not (np.float32(x[i, nodes[node, COL_FEATURE]]) <= nodes_f[node, COL_THRESHOLD])
        node = nodes[node, COL_LEFT + go_right]
    return node


@njit(cache=True, nogil=True)
def path_sums(x, nodes, nodes_f, value, roots, depths, sums):
    n = x.shape[0]
    sums[:] = 0
    if n < INTERLEAVE:
        for i in range(n):
            total = 0
            for t in range(roots.shape[0]):
                total += value[walk(x, i, nodes, nodes_f, roots[t], depths[t])]
            sums[i] = total
        return
    cur = np.empty(INTERLEAVE, np.int64)
    for start in range(0, n, INTERLEAVE):
        m = min(INTERLEAVE, n - start)
        for t in range(roots.shape[0]):
            for r in range(m):
                cur[r] = roots[t]
            for _ in range(depths[t]):
                for r in range(m):
                    node = cur[r]
                    go_right = not (
                        np.float32(x[start + r, nodes[node, COL_FEATURE]])
                        <= nodes_f[node, COL_THRESHOLD]
                    )
                    cur[r] = nodes[node, COL_LEFT + go_right]
            for r in range(m):
                sums[start + r] += value[cur[r]]


@njit(cache=True, nogil=True)
def score_batch(x, nodes, nodes_f, value, roots, depths, span, cut, sums, scores, outliers):
    if denormals_flushed(nodes_f, span):
        return FLUSHED
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if np.isnan(x[i, j]):
                return i
    path_sums(x, nodes, nodes_f, value, roots, depths, sums)
    for i in range(sums.shape[0]):
        scores[i] = -neg_exp2(np.float64(sums[i]) / span)
        outliers[i] = sums[i] < cut
    return NO_NAN


@njit(cache=True, nogil=True)
def score_row(row, nodes, nodes_f, value, roots, depths, span, cut):
    if denormals_flushed(nodes_f, span):
        return FLUSHED, 0.0, False
    for j in range(row.shape[0]):
        if np.isnan(row[j]):
            return NAN_ROW, 0.0, False
    total = 0
    for t in range(roots.shape[0]):
        node = roots[t]
        for _ in range(depths[t]):
            go_right = not (
                np.float32(row[nodes[node, COL_FEATURE]]) <= nodes_f[node, COL_THRESHOLD]
            )
            node = nodes[node, COL_LEFT + go_right]
        total += value[node]
    return total, -neg_exp2(np.float64(total) / span), total < cut


NO_FEATURE = -1
"""Feature index filling top-k slots beyond the features that split on the path."""

EXPLAINED = 0
"""What the explanation kernel returns on success."""


@njit(cache=True, nogil=True)
def explain(
    x, nodes, nodes_f, n_samples, roots, depths, n_features, k, top_features, top_weights, totals
):
    if denormals_flushed(nodes_f, np.float64(roots.shape[0])):
        return FLUSHED
    weights = np.zeros(n_features, np.int64)
    for i in range(x.shape[0]):
        weights[:] = 0
        total = 0
        for t in range(roots.shape[0]):
            node = roots[t]
            for _ in range(depths[t]):
                go_right = not (
                    np.float32(x[i, nodes[node, COL_FEATURE]]) <= nodes_f[node, COL_THRESHOLD]
                )
                child = nodes[node, COL_LEFT + go_right]
                weight = n_samples[node] - n_samples[child]  # 0 once on a leaf's self-loop
                weights[nodes[node, COL_FEATURE]] += weight
                total += weight
                node = child
        totals[i] = total
        for j in range(k):
            best = NO_FEATURE
            best_weight = np.int64(0)
            for f in range(n_features):
                if weights[f] > best_weight:
                    best = f
                    best_weight = weights[f]
            top_features[i, j] = best
            top_weights[i, j] = best_weight
            if best != NO_FEATURE:
                weights[best] = -1
    return 0
