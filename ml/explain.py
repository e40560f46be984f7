"""Per-row explanations: which features isolated the row, and how strongly.

Method (integer, deterministic): every split on the row's path through a
tree separates some of the tree's training sample from the row; the split's
weight is that number, ``n_samples[node] - n_samples[child taken]``, and it
is credited to the split's feature. A feature that cuts the row off from
most of the data (early, or often) gets most of the weight. Weights are
summed over all trees in int64; the top k features are the largest weights,
ties broken by the lower feature index. A feature's share is
``weight * 10**6 // total`` (parts per million of all the samples separated
on the row's paths), an integer a receipt can record as is.

(Crediting splits by depth alone, ``2**-depth``, was tried and rejected: the
root split's feature is random, so it drowned the signal; on data with
outliers injected along one feature, the separated-samples weight named that
feature first for every outlier, the depth weight for almost none.)

The cost is one more walk of the forest per row, about twice scoring's (the
weights are read and written at every split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml import kernels
from ml.dataset import as_numeric
from ml.errors import InputError
from ml.kernels import FLUSHED, NO_FEATURE
from ml.limits import MAX_TOP_K
from ml.score import Scorer, flush_error, run_split

PPM = 1_000_000
"""Shares are reported in parts per million of a row's total split weight."""


@dataclass(frozen=True, eq=False)
class Explanations:
    """Top-k features per row: indices (NO_FEATURE when fewer split), weights and totals."""

    features: np.ndarray
    weights: np.ndarray
    totals: np.ndarray

    def row(self, i: int, names: tuple[str, ...]) -> list[tuple[str, int]]:
        """Row ``i`` as (feature name, share in parts per million), strongest first."""
        return _named(
            self.features[i].tolist(), self.weights[i].tolist(), int(self.totals[i]), names
        )

    def rows(self, names: tuple[str, ...]) -> list[list[tuple[str, int]]]:
        """Every row as ``row`` gives it, converted from the arrays at once (a node explains
        each block's scores: indexing the arrays element by element cost more than the
        kernel)."""
        return [
            _named(f, w, t, names)
            for f, w, t in zip(
                self.features.tolist(), self.weights.tolist(), self.totals.tolist(), strict=True
            )
        ]


def _named(
    features: list[int], weights: list[int], total: int, names: tuple[str, ...]
) -> list[tuple[str, int]]:
    out = []
    for f, w in zip(features, weights, strict=True):
        if f == NO_FEATURE:
            break
        out.append((names[f], share_ppm(w, total)))
    return out


def share_ppm(weight: int, total: int) -> int:
    """A weight as parts per million of the row's total (integer division, rounds down)."""
    assert 0 < weight <= total
    return weight * PPM // total


def explain_batch(
    scorer: Scorer, rows: object, k: int = 3, workers: int | None = None
) -> Explanations:
    """Explain every row of a matrix; ``k`` in 1..MAX_TOP_K (capped at the feature count).

    Large batches are split over ``workers`` threads as ``Scorer.score_batch`` does; each
    row's explanation depends on that row alone, so the result is the same either way.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP_K:
        raise InputError(f"k must be an integer in 1..{MAX_TOP_K}, got {k!r}")
    x = scorer.prepare(rows)
    k = min(k, scorer.n_features)
    n = x.shape[0]
    features = np.empty((n, k), dtype=np.int64)
    weights = np.empty((n, k), dtype=np.int64)
    totals = np.empty(n, dtype=np.int64)

    def chunk(start: int, stop: int) -> int:
        return kernels.explain(
            x[start:stop], scorer.nodes, scorer.nodes_f, scorer.n_samples, scorer.roots,
            scorer.depths, scorer.n_features, k,
            features[start:stop], weights[start:stop], totals[start:stop],
        )  # fmt: skip

    if any(status == FLUSHED for _, status in run_split(chunk, n, workers)):
        raise flush_error()
    return Explanations(features, weights, totals)


def explain_row(scorer: Scorer, row: object, k: int = 3) -> list[tuple[str, int]]:
    """Explain one row: [(feature name, share in ppm), ...], strongest first."""
    x = as_numeric(row)
    if x.ndim != 1:
        raise InputError(f"expected one row (1-D), got shape {x.shape}")
    return explain_batch(scorer, x.reshape(1, -1), k).row(0, scorer.model.feature_names)


@dataclass(frozen=True)
class RowReport:
    """What a receipt records for one scored row (all integers but the presentation score).

    ``path_sum`` and ``outlier`` are the consensus result; ``score`` is
    ``-2 ** (-path_sum / (T * 2**40))`` for people; ``top`` lists the
    explaining features with their share in parts per million.
    """

    model_id: bytes
    path_sum: int
    outlier: bool
    score: float
    top: tuple[tuple[str, int], ...]


def report_row(scorer: Scorer, row: object, k: int = 3) -> RowReport:
    """Score and explain one row: everything a `score` transaction's receipt needs."""
    path_sum, score, outlier = scorer.score_row(row)
    top = explain_row(scorer, row, k)
    return RowReport(scorer.model.model_id, path_sum, outlier, score, tuple(top))
