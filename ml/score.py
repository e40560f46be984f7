"""The deterministic scorer: a model's trees laid out for the Numba kernels (``ml.kernels``).

For each row the kernel walks every tree from its root, comparing the
feature, cast to float32 as scikit-learn does, with the node's threshold
(``<=`` goes left), and adds the reached leaf's fixed-point value to an
int64 sum. Integer addition is exact and associative, so the sum (the *path
sum*, the value recorded on chain) is the same on every machine whatever
order the trees are visited in. The verdict compares it with the model's
integer threshold.

scikit-learn compares ``float64(x32) <= t`` with a float64 threshold ``t``.
For every float32 ``x32`` that is the same as ``x32 <= floor32(t)``, where
``floor32(t)`` is the largest float32 not above ``t`` (``float32_floor``), so
the kernel stores float32 thresholds and compares in float32 without changing
a single decision. Each node is packed into 16 bytes ``[feature, threshold,
left, right]`` (one cache line holds four nodes; a last, unreachable row
holds the subnormal probe of ``denormals_flushed``), leaves become nodes whose
children are themselves and whose threshold is +inf, so a walk of the tree's
depth needs no branch to stop at a leaf, and large batches walk sixteen rows
at once through one tree at a time so the CPU overlaps their memory loads
while the tree stays in its L1 cache.

Large batches (PARALLEL_MIN_ROWS rows or more) are cut into chunks scored on
several threads (the kernels release the GIL). Each row's result depends on
that row alone, so the arrays are the same bits whatever the split; each
chunk's kernel probes its own thread's floating-point mode.

The float score is a presentation of the path sum,
``-2 ** (-S / (T * 2**FIXED_POINT_BITS))``, computed by ``neg_exp2`` from
IEEE-754 basic operations only (no libm, no fastmath, no fused
multiply-add), so even it is bit-identical across machines; it matches
``score_samples`` to about 1e-13.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ml import kernels
from ml.dataset import as_matrix, as_numeric, check_shape, nan_error
from ml.errors import FloatEnvironmentError, InputError
from ml.fixed import ONE
from ml.forest import LEAF, Model
from ml.kernels import (
    COL_FEATURE,
    COL_LEFT,
    COL_RIGHT,
    COL_THRESHOLD,
    FLUSHED,
    NAN_ROW,
    NO_NAN,
    SUBNORMAL_PROBE,
    neg_exp2,
)
from ml.limits import MAX_TREE_DEPTH

MAX_WORKERS = 256
"""Most threads one batch is split over."""

PARALLEL_MIN_ROWS = 16_384
"""Smaller batches stay on the calling thread: starting threads costs about 0.1 ms, and a node
scoring a block (at most 10,000 transactions) keeps the one-thread path it always had."""

MIN_CHUNK_ROWS = 4096
"""Fewest rows in one chunk of a split batch (a few ms of work, so threads start rarely)."""

CHUNKS_PER_WORKER = 4
"""Chunks per thread: a core slowed by other work simply takes fewer of them."""


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity), within 1..MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def check_workers(workers: int | None) -> int:
    """``workers`` validated (None means ``default_workers()``)."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise InputError(f"workers must be an integer in 1..{MAX_WORKERS}, got {workers!r}")
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"workers must be an integer in 1..{MAX_WORKERS}, got {workers}")
    return workers


def split_rows(n: int, workers: int) -> list[tuple[int, int]]:
    """[start, stop) chunks covering ``n`` rows; one chunk unless the batch is large."""
    if workers == 1 or n < PARALLEL_MIN_ROWS:
        return [(0, n)]
    count = min(workers * CHUNKS_PER_WORKER, n // MIN_CHUNK_ROWS)
    return [(i * n // count, (i + 1) * n // count) for i in range(count)]


def run_split(
    call: Callable[[int, int], int], n: int, workers: int | None
) -> list[tuple[int, int]]:
    """``call(start, stop)`` on each chunk of ``n`` rows, on up to ``workers`` threads.

    Returns (start, status) per chunk, in row order. One chunk runs on the calling thread.
    """
    parts = split_rows(n, check_workers(workers))
    if len(parts) == 1:
        return [(0, call(0, n))]
    threads = min(check_workers(workers), len(parts))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vigil-ml") as pool:
        statuses = list(pool.map(lambda part: call(*part), parts))
    return [(start, status) for (start, _), status in zip(parts, statuses, strict=True)]


def flush_error() -> FloatEnvironmentError:
    return FloatEnvironmentError(
        "this process flushes subnormal floats to zero (was a library built with -ffast-math "
        "loaded?); its scores could differ from other nodes', so scoring is refused"
    )


@dataclass(frozen=True, eq=False)
class Scores:
    """Results for a batch: ``path_sums`` is what is recorded; the rest derives from it."""

    path_sums: np.ndarray
    scores: np.ndarray
    outliers: np.ndarray


def float32_floor(threshold: np.ndarray) -> np.ndarray:
    """Largest float32 <= each float64 threshold: ``x32 <= t`` iff ``x32 <= float32_floor(t)``."""
    with np.errstate(over="ignore"):  # beyond float32 range rounds to +-inf, then steps down
        rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


class Scorer:
    """A model's trees concatenated into one packed node table for the kernels."""

    def __init__(self, model: Model) -> None:
        tables, values, samples, roots, depths = [], [], [], [], []
        base = 0
        for sub in model.contributors:
            nodes = sub.nodes
            sizes = sub.tree_sizes.astype(np.int64)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            own = np.arange(sub.n_nodes, dtype=np.int64) + base
            tree_base = np.repeat(starts, sizes) + base
            leaf = nodes["left"] == LEAF
            table = np.empty((sub.n_nodes, 4), dtype=np.int32)
            table[:, COL_FEATURE] = np.where(leaf, 0, nodes["feature"])
            thresholds = float32_floor(np.where(leaf, np.inf, nodes["threshold"]))
            table[:, COL_THRESHOLD] = thresholds.view(np.int32)
            table[:, COL_LEFT] = np.where(leaf, own, nodes["left"].astype(np.int64) + tree_base)
            table[:, COL_RIGHT] = np.where(leaf, own, nodes["right"].astype(np.int64) + tree_base)
            tables.append(table)
            values.append(nodes["value"].astype(np.int64))
            samples.append(nodes["n_samples"].astype(np.int64))
            roots.append(starts + base)
            depths.append(_tree_depths(nodes["left"], nodes["right"], sizes, starts))
            base += sub.n_nodes
        probe = np.array([[0, 0, base, base]], dtype=np.int32)  # unreachable: no parent
        probe[0, COL_THRESHOLD] = np.array([SUBNORMAL_PROBE], dtype=np.float32).view(np.int32)[0]
        self.model = model
        self.nodes = np.ascontiguousarray(np.concatenate([*tables, probe]))
        self.nodes_f = self.nodes.view(np.float32)
        self.value = np.ascontiguousarray(np.concatenate(values), dtype=np.int64)
        self.n_samples = np.ascontiguousarray(np.concatenate(samples), dtype=np.int64)
        self.roots = np.ascontiguousarray(np.concatenate(roots), dtype=np.int64)
        self.depths = np.ascontiguousarray(np.concatenate(depths), dtype=np.int64)
        self.n_features = model.n_features
        self.span = float(model.n_trees * ONE)
        self.cut = model.threshold
        assert self.roots.shape[0] == model.n_trees
        assert int(self.depths.max()) <= MAX_TREE_DEPTH

    def prepare(self, rows: object) -> np.ndarray:
        """Validate rows (C-ordered float64, the model's width, no NaN) for the kernels.

        The kernels round each feature to float32 as they read it, as
        scikit-learn does; values beyond float32's range become +-inf.
        """
        return as_matrix(rows, self.n_features)

    def score_batch(self, rows: object, workers: int | None = None) -> Scores:
        """Score a matrix (rows x model features); NaN is refused.

        Batches of PARALLEL_MIN_ROWS rows or more are split over ``workers`` threads
        (default: every core this process may use); the result is the same either way.
        """
        x = as_numeric(rows)  # NaN is looked for by the kernel: one pass less for one row
        check_shape(x, self.n_features)
        n = x.shape[0]
        sums = np.empty(n, dtype=np.int64)
        scores = np.empty(n, dtype=np.float64)
        outliers = np.empty(n, dtype=np.bool_)

        def chunk(start: int, stop: int) -> int:
            return kernels.score_batch(
                x[start:stop], self.nodes, self.nodes_f, self.value, self.roots, self.depths,
                self.span, self.cut, sums[start:stop], scores[start:stop], outliers[start:stop],
            )  # fmt: skip

        results = run_split(chunk, n, workers)
        if any(status == FLUSHED for _, status in results):
            raise flush_error()
        for start, nan_row in results:  # in row order: the first NaN row is reported
            if nan_row != NO_NAN:
                raise nan_error(start + nan_row)
        return Scores(sums, scores, outliers)

    def score_row(self, row: object) -> tuple[int, float, bool]:
        """Score one row: (path sum, score, is outlier); the fast path for one transaction."""
        x = as_numeric(row)
        if x.shape != (self.n_features,):
            raise InputError(f"expected a row of {self.n_features} features, got shape {x.shape}")
        total, score, outlier = kernels.score_row(
            x, self.nodes, self.nodes_f, self.value, self.roots, self.depths, self.span, self.cut
        )
        if total == FLUSHED:
            raise flush_error()
        if total == NAN_ROW:
            raise InputError("row holds NaN; missing values are not supported")
        return total, score, outlier


def _tree_depths(
    left: np.ndarray, right: np.ndarray, sizes: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Deepest leaf of each tree (levels walked breadth-first, at most MAX_TREE_DEPTH)."""
    base = np.repeat(starts, sizes)
    tree_of = np.repeat(np.arange(len(sizes)), sizes)
    depth = np.zeros(len(sizes), dtype=np.int64)
    frontier = starts
    for level in range(MAX_TREE_DEPTH + 1):
        inner = frontier[left[frontier] != LEAF]
        if inner.size == 0:
            break
        assert level < MAX_TREE_DEPTH
        depth[tree_of[inner]] = level + 1
        frontier = np.concatenate([left[inner] + base[inner], right[inner] + base[inner]])
    return depth


def score_from_path_sum(path_sum: int, n_trees: int) -> float:
    """The presentation score of a recorded path sum (same bits as the kernel's)."""
    return -neg_exp2(float(path_sum) / float(n_trees * ONE))
