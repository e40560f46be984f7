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

INTERLEAVE = 16
"""Rows walked together in large batches: their independent walks overlap their loads.

In the block layout (``load_block``) a walker's whole state is its node index, so 16 of them
stay in registers on x86-64; 8, 12, 24 and 32 measured slower (docs/ml.md, "Kernel layout").
"""

BLOCK_CELLS = 2048
"""Row x feature cells in one block. A block's rows go through one tree at a time, so the
tree's nodes and the block's features (and, explaining, their weights) stay in the L1 cache."""

MAX_BLOCK_ROWS = 256
"""Most rows in one block (8 features: 256 rows, 8 KiB of float32 features)."""

FEW_ROWS = 4
"""Batches of fewer rows are walked one row at a time: a block walks INTERLEAVE rows however
few it holds, which costs less than that many single walks from about 4 rows on."""

# Unsigned index arithmetic: Numba adds a negative-index wrap to every signed index.
_ROW_WORDS = np.uint64(4)
_U_FEATURE = np.uint64(COL_FEATURE)
_U_THRESHOLD = np.uint64(COL_THRESHOLD)
_U_LEFT = np.uint64(COL_LEFT)
_LANES = np.uint64(INTERLEAVE)

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
def block_rows(n, n_features):
    """Rows per block: a multiple of INTERLEAVE, at most BLOCK_CELLS cells (one group at least)."""
    rows = min(MAX_BLOCK_ROWS, BLOCK_CELLS // n_features) // INTERLEAVE * INTERLEAVE
    needed = (n + INTERLEAVE - 1) // INTERLEAVE * INTERLEAVE
    return max(INTERLEAVE, min(rows, needed))


@njit(cache=True, nogil=True)
def load_block(x, start, m, xb):
    """Rows ``start .. start+m`` of ``x`` as float32 in groups of INTERLEAVE rows.

    Row ``g * INTERLEAVE + lane``'s feature ``f`` goes to ``(g * F + f) * INTERLEAVE + lane``:
    the walkers of one group read one feature at a fixed offset from each other, so each needs
    no row pointer of its own. Lanes past ``m`` in the last group hold 0 (walked, never used).
    """
    nf = x.shape[1]
    for r in range((m + INTERLEAVE - 1) // INTERLEAVE * INTERLEAVE):
        cell = (r - r % INTERLEAVE) * nf + r % INTERLEAVE
        for f in range(nf):
            value = np.float32(x[start + r, f]) if r < m else np.float32(0.0)
            xb[cell + f * INTERLEAVE] = value


@njit(cache=True, nogil=True, inline="always")
def walk_group(xb, base, table, table_f, root, steps, cur):
    """Walk the INTERLEAVE rows of the group at ``xb[base:]`` down one tree; ``cur`` gets the
    nodes reached. ``table`` is the node table flattened as uint32 (``table_f`` as float32)."""
    for r in range(INTERLEAVE):
        cur[r] = root
    for _ in range(steps):
        for r in range(INTERLEAVE):
            at = np.uint64(cur[r]) * _ROW_WORDS
            x32 = xb[base + np.uint64(table[at + _U_FEATURE]) * _LANES + np.uint64(r)]
            go_right = not (x32 <= table_f[at + _U_THRESHOLD])
            cur[r] = table[at + _U_LEFT + np.uint64(go_right)]


@njit(cache=True, nogil=True)
def path_sums(x, nodes, nodes_f, value, roots, depths, sums):
    n = x.shape[0]
    nf = x.shape[1]
    if n < FEW_ROWS:
        for i in range(n):
            total = 0
            for t in range(roots.shape[0]):
                total += value[walk(x, i, nodes, nodes_f, roots[t], depths[t])]
            sums[i] = total
        return
    table = nodes.reshape(-1).view(np.uint32)
    table_f = nodes_f.reshape(-1)
    rows = block_rows(n, nf)
    xb = np.empty(rows * nf, np.float32)
    cur = np.empty(INTERLEAVE, np.uint32)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        load_block(x, start, m, xb)
        sums[start : start + m] = 0
        for t in range(roots.shape[0]):
            for g in range(0, m, INTERLEAVE):
                walk_group(xb, np.uint64(g * nf), table, table_f, roots[t], depths[t], cur)
                for r in range(min(INTERLEAVE, m - g)):
                    sums[start + g + r] += value[cur[r]]


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
def top_k(weights, k, features, top_weights):
    """The k largest weights (ties: lower feature first) into ``features``/``top_weights``;
    NO_FEATURE past the features with a positive weight. Overwrites ``weights``."""
    for j in range(k):
        best = NO_FEATURE
        best_weight = np.int64(0)
        for f in range(weights.shape[0]):
            if weights[f] > best_weight:
                best = f
                best_weight = weights[f]
        features[j] = best
        top_weights[j] = best_weight
        if best != NO_FEATURE:
            weights[best] = -1


@njit(cache=True, nogil=True)
def explain_rows(x, nodes, nodes_f, n_samples, roots, depths, k, top_features, top_weights, totals):
    """One row at a time: the path for fewer rows than FEW_ROWS."""
    weights = np.zeros(x.shape[1], np.int64)
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
        top_k(weights, k, top_features[i], top_weights[i])


@njit(cache=True, nogil=True, inline="always")
def weigh_group(xb, wb, base, table, table_f, n_samples, root, steps, cur):
    """``walk_group`` that also credits each split's separated samples to its feature's cell
    of ``wb`` (laid out as ``xb``)."""
    for r in range(INTERLEAVE):
        cur[r] = root
    for _ in range(steps):
        for r in range(INTERLEAVE):
            node = cur[r]
            at = np.uint64(node) * _ROW_WORDS
            cell = base + np.uint64(table[at + _U_FEATURE]) * _LANES + np.uint64(r)
            go_right = not (xb[cell] <= table_f[at + _U_THRESHOLD])
            child = table[at + _U_LEFT + np.uint64(go_right)]
            wb[cell] += n_samples[node] - n_samples[child]  # 0 once on a leaf's self-loop
            cur[r] = child


@njit(cache=True, nogil=True)
def explain_blocks(
    x, nodes, nodes_f, n_samples, roots, depths, k, top_features, top_weights, totals
):
    """Blocks of rows walked tree by tree, INTERLEAVE at a time (as ``path_sums``).

    A row's total telescopes along each path: ``n_samples[root] - n_samples[leaf]``.
    """
    n = x.shape[0]
    nf = x.shape[1]
    table = nodes.reshape(-1).view(np.uint32)
    table_f = nodes_f.reshape(-1)
    rows = block_rows(n, nf)
    xb = np.empty(rows * nf, np.float32)
    wb = np.empty(rows * nf, np.int64)
    weights = np.empty(nf, np.int64)
    cur = np.empty(INTERLEAVE, np.uint32)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        load_block(x, start, m, xb)
        wb[:] = 0
        totals[start : start + m] = 0
        for t in range(roots.shape[0]):
            root = roots[t]
            for g in range(0, m, INTERLEAVE):
                weigh_group(xb, wb, np.uint64(g * nf), table, table_f, n_samples, root,
                            depths[t], cur)  # fmt: skip
                for r in range(min(INTERLEAVE, m - g)):
                    totals[start + g + r] += n_samples[root] - n_samples[cur[r]]
        for r in range(m):
            cell = (r - r % INTERLEAVE) * nf + r % INTERLEAVE
            for f in range(nf):
                weights[f] = wb[cell + f * INTERLEAVE]
            top_k(weights, k, top_features[start + r], top_weights[start + r])


@njit(cache=True, nogil=True)
def explain(
    x, nodes, nodes_f, n_samples, roots, depths, n_features, k, top_features, top_weights, totals
):
    if denormals_flushed(nodes_f, np.float64(roots.shape[0])):
        return FLUSHED
    if x.shape[0] < FEW_ROWS:
        explain_rows(x, nodes, nodes_f, n_samples, roots, depths, k, top_features, top_weights,
                     totals)  # fmt: skip
    else:
        explain_blocks(x, nodes, nodes_f, n_samples, roots, depths, k, top_features,
                       top_weights, totals)  # fmt: skip
    return EXPLAINED


PARSE_DECLINED = -1
"""What ``parse_numbers`` returns for text outside its fast path (the caller parses it slowly)."""

CELL_EXACT, CELL_SLOW, CELL_BAD = 0, 1, 2
"""``parse_cell``: value exact; valid but left for float() (stored as NaN); not a number."""

MAX_FAST_DIGITS = 18
"""Significant digits a cell may have on the fast path (below 10**18 fits in an int64)."""

EXACT_SIGNIFICAND = 2**53
"""Largest significand converted exactly to float64."""

POW10 = np.array([float(10**k) for k in range(23)])
"""10**0 .. 10**22: the powers of ten that float64 holds exactly."""

MAX_EXPONENT = 1_000_000
"""Exponent digits saturate here (the cell is then left to float())."""

_DIGIT_0, _DIGIT_9 = 48, 57
_PLUS, _MINUS, _DOT, _COMMA, _LF, _CR = 43, 45, 46, 44, 10, 13
_LOWER_E, _UPPER_E = 101, 69


@njit(cache=True, nogil=True)
def exact_value(significand, scale, negative):
    """``significand * 10**scale`` correctly rounded, or NaN when one IEEE operation can't do it.

    Clinger's fast path: both operands are exact float64 values (significand <= 2**53,
    |scale| <= 22), so the one rounding of ``*`` or ``/`` is the correctly rounded result,
    the same bits as Python's float() of the text.
    """
    if significand == 0:
        value = 0.0
    elif significand > EXACT_SIGNIFICAND or scale > 22 or scale < -22:
        return np.nan
    elif scale >= 0:
        value = np.float64(significand) * POW10[scale]
    else:
        value = np.float64(significand) / POW10[-scale]
    return -value if negative else value


@njit(cache=True, nogil=True)
def parse_cell(buf, pos):
    """One cell ``[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?`` at ``buf[pos:]``.

    Returns (value, position after it, CELL_*); the caller checks what follows.
    """
    n = buf.shape[0]
    negative = pos < n and buf[pos] == _MINUS
    if pos < n and (buf[pos] == _PLUS or buf[pos] == _MINUS):
        pos += 1
    significand, digits, scale, seen, exact = 0, 0, 0, 0, True
    point = False
    while pos < n:  # bounded by the buffer
        c = buf[pos]
        if c == _DOT and not point:
            point = True
        elif _DIGIT_0 <= c <= _DIGIT_9:
            seen += 1
            if digits < MAX_FAST_DIGITS:
                significand = significand * 10 + (c - _DIGIT_0)
                digits += significand > 0
                scale -= point
            else:
                exact = False
        else:
            break
        pos += 1
    if seen == 0:
        return np.nan, pos, CELL_BAD
    if pos < n and (buf[pos] == _LOWER_E or buf[pos] == _UPPER_E):
        pos += 1
        sign = -1 if pos < n and buf[pos] == _MINUS else 1
        if pos < n and (buf[pos] == _PLUS or buf[pos] == _MINUS):
            pos += 1
        exponent, exp_digits = 0, 0
        while pos < n and _DIGIT_0 <= buf[pos] <= _DIGIT_9:  # bounded by the buffer
            exponent = min(MAX_EXPONENT, exponent * 10 + (buf[pos] - _DIGIT_0))
            exp_digits += 1
            pos += 1
        if exp_digits == 0:
            return np.nan, pos, CELL_BAD
        exact = exact and exponent < MAX_EXPONENT
        scale += sign * exponent
    value = exact_value(significand, scale, negative) if exact else np.nan
    return value, pos, CELL_SLOW if np.isnan(value) else CELL_EXACT


@njit(cache=True, nogil=True)
def line_end(buf, pos):
    """Position after the line break at ``pos`` (``\\n`` or ``\\r\\n``), or -1 if none is there."""
    if pos < buf.shape[0] and buf[pos] == _LF:
        return pos + 1
    if pos + 1 < buf.shape[0] and buf[pos] == _CR and buf[pos + 1] == _LF:
        return pos + 2
    return -1


@njit(cache=True, nogil=True)
def parse_numbers(buf, out, line_starts):
    """CSV data lines of plain decimal numbers into ``out`` (rows x columns); the rows parsed.

    Lines end with ``\\n`` or ``\\r\\n``; empty lines are skipped. Anything else (spaces,
    quotes, a bad cell, a wrong field count, more rows than ``out`` holds) returns
    PARSE_DECLINED. A valid cell the fast path cannot convert exactly is stored as NaN; each
    row's start offset goes to ``line_starts`` so the caller can convert those with float().
    """
    n = buf.shape[0]
    n_cols = out.shape[1]
    row, pos = 0, 0
    while pos < n:  # bounded: every pass consumes at least one byte
        after = line_end(buf, pos)
        if after >= 0:
            pos = after
            continue
        if row == out.shape[0]:
            return PARSE_DECLINED
        line_starts[row] = pos
        for col in range(n_cols):
            value, pos, status = parse_cell(buf, pos)
            if status == CELL_BAD:
                return PARSE_DECLINED
            out[row, col] = value
            if col + 1 < n_cols:
                if pos >= n or buf[pos] != _COMMA:
                    return PARSE_DECLINED
                pos += 1
        row += 1
        if pos < n:
            after = line_end(buf, pos)
            if after < 0:
                return PARSE_DECLINED
            pos = after
    return row


PPM = 1_000_000
"""Shares are written in parts per million (as ``ml.explain.PPM``)."""

_OUTLIER = np.frombuffer(b"outlier", dtype=np.uint8)
_INLIER = np.frombuffer(b"inlier", dtype=np.uint8)


@njit(cache=True, nogil=True)
def put(out, pos, text, start, stop):
    """``text[start:stop]`` copied to ``out[pos:]``; the position after it."""
    for i in range(stop - start):
        out[pos + i] = text[start + i]
    return pos + stop - start


@njit(cache=True, nogil=True)
def put_int(out, pos, value, width):
    """``value >= 0`` in decimal, zero-padded to ``width`` digits; the position after it."""
    digits, rest = 1, value // 10
    while rest > 0:  # bounded: at most 19 digits
        digits += 1
        rest //= 10
    digits = max(digits, width)
    for i in range(digits - 1, -1, -1):
        out[pos + i] = _DIGIT_0 + value % 10
        value //= 10
    return pos + digits


@njit(cache=True, nogil=True)
def format_scores(
    score_text, score_ends, outliers, path_sums, features, weights, totals, names, name_ends, out
):
    """The data lines of `vigil model score`'s CSV into ``out``; the bytes written.

    Per row: its score (``score_text`` up to ``score_ends[i]``), outlier/inlier, the path
    sum, then per top feature its name (``names`` up to ``name_ends[f]``, already quoted as
    CSV needs) and its share ``weight * PPM // total`` as ``units.micro``, or two empty cells.
    """
    pos, start = 0, 0
    for i in range(score_ends.shape[0]):
        pos = put(out, pos, score_text, start, score_ends[i])
        start = score_ends[i]
        out[pos] = _COMMA
        word = _OUTLIER if outliers[i] else _INLIER
        pos = put(out, pos + 1, word, 0, word.shape[0])
        out[pos] = _COMMA
        pos = put_int(out, pos + 1, path_sums[i], 1)
        for j in range(features.shape[1]):
            out[pos] = _COMMA
            pos += 1
            f = features[i, j]
            if f != NO_FEATURE:
                pos = put(out, pos, names, 0 if f == 0 else name_ends[f - 1], name_ends[f])
                share = weights[i, j] * PPM // totals[i]
                out[pos] = _COMMA
                pos = put_int(out, pos + 1, share // PPM, 1)
                out[pos] = _DOT
                pos = put_int(out, pos + 1, share % PPM, 6)
            else:
                out[pos] = _COMMA
                pos += 1
        out[pos] = _LF
        pos += 1
    return pos
