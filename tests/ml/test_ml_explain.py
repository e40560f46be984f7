"""Explanations: exact against a reference walk of scikit-learn's trees, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from ml_testing import make_data

from ml.errors import InputError
from ml.explain import NO_FEATURE, PPM, explain_batch, explain_row, report_row
from ml.limits import MAX_TOP_K
from ml.score import Scorer
from ml.train import TrainParams, train


def reference_weights(estimator, row: np.ndarray, n_features: int) -> np.ndarray:
    """Samples separated from the row per feature, walking scikit-learn's own trees."""
    weights = np.zeros(n_features, dtype=np.int64)
    x = row.astype(np.float32)
    for tree, columns in zip(estimator.estimators_, estimator.estimators_features_, strict=True):
        t = tree.tree_
        node = 0
        while t.children_left[node] != -1:
            feature = columns[t.feature[node]]
            go_left = np.float64(x[feature]) <= t.threshold[node]
            child = t.children_left[node] if go_left else t.children_right[node]
            weights[feature] += t.n_node_samples[node] - t.n_node_samples[child]
            node = child
    return weights


def test_weights_equal_a_reference_walk_of_scikit_learn_trees() -> None:
    x = make_data(4, n=300, d=7)
    result = train(x, None, TrainParams(30, 64, "auto", 0.6, 1))
    explained = explain_batch(Scorer(result.model), x[:40], k=7)
    for i in range(40):
        expected = reference_weights(result.estimator, x[i], 7)
        order = sorted(range(7), key=lambda f: (-expected[f], f))
        got = [int(f) for f in explained.features[i] if f != NO_FEATURE]
        assert got == [f for f in order if expected[f] > 0]
        assert explained.weights[i][: len(got)].tolist() == [int(expected[f]) for f in got]
        assert explained.totals[i] == expected.sum()


def test_injected_outliers_are_explained_by_their_feature() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1000, 6))
    x[:15, 2] += 9.0
    x[15:30, 4] -= 7.0
    result = train(x, None, TrainParams(100, "auto", "auto", 1.0, 2))
    explained = explain_batch(Scorer(result.model), x[:30], k=3)
    assert (explained.features[:15, 0] == 2).all()
    assert (explained.features[15:30, 0] == 4).all()


def test_explanations_are_deterministic_and_row_equals_batch(medium) -> None:
    scorer = Scorer(medium.model)
    x = make_data(8, n=50, d=5)
    first = explain_batch(scorer, x, k=3)
    second = explain_batch(Scorer(medium.model), x, k=3)
    assert np.array_equal(first.features, second.features)
    assert np.array_equal(first.weights, second.weights)
    names = medium.model.feature_names
    for i in range(0, 50, 7):
        row = explain_row(scorer, x[i], k=3)
        assert row == first.row(i, names)
        assert [name for name, _ in row] == [names[f] for f in first.features[i]]
        shares = [share for _, share in row]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= PPM
    every = first.rows(names)
    assert every == [first.row(i, names) for i in range(50)]
    assert all(type(share) is int for row in every for _, share in row)


def test_top_k_edges(medium) -> None:
    scorer = Scorer(medium.model)
    x = make_data(9, n=5, d=5, outliers=2)
    wide = explain_batch(scorer, x, k=MAX_TOP_K)
    assert wide.features.shape == (5, 5)  # capped at the feature count
    with pytest.raises(InputError, match="k must"):
        explain_batch(scorer, x, k=MAX_TOP_K + 1)
    with pytest.raises(InputError, match="k must"):
        explain_batch(scorer, x, k=0)


def test_ties_prefer_the_lower_feature_index() -> None:
    x = np.tile(np.array([[0.0, 0.0], [1.0, 1.0]]), (50, 1))
    result = train(x, ["p", "q"], TrainParams(40, "auto", "auto", 1.0, 0))
    explained = explain_batch(Scorer(result.model), np.array([[0.0, 0.0]]), k=2)
    weights = explained.weights[0]
    if weights[0] == weights[1]:
        assert explained.features[0].tolist() == [0, 1]
    else:
        assert weights[0] > weights[1]


def test_row_report_carries_what_a_receipt_records(medium) -> None:
    scorer = Scorer(medium.model)
    x = make_data(10, n=20, d=5)
    batch = scorer.score_batch(x)
    for i in (0, 5, 19):
        report = report_row(scorer, x[i].tolist(), k=2)
        assert report.model_id == medium.model.model_id
        assert (report.path_sum, report.outlier) == (batch.path_sums[i], batch.outliers[i])
        assert report.score == batch.scores[i]
        assert report.top == tuple(explain_row(scorer, x[i], k=2))
    with pytest.raises(InputError, match="numeric"):
        report_row(scorer, ["a"] * 5)
