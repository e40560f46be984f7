"""Drift bins and PSI: exact integer binning against a float oracle, PSI against numpy."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from ml_testing import make_data

from ml.drift import DRIFT_BINS, SCORE_EDGES, bin_of, histogram, psi_ppm
from ml.fixed import ONE
from ml.score import Scorer, score_from_path_sum
from ml.train import TrainParams, train

EDGES = [float(e) for e in SCORE_EDGES]


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 4096), st.floats(0.0, 3.0))
def test_a_path_sum_falls_in_the_bin_of_its_score(n_trees: int, per_tree: float) -> None:
    path_sum = int(per_tree * ONE) * n_trees
    score = -score_from_path_sum(path_sum, n_trees)  # scikit-learn's sign: higher is normal
    expected = sum(1 for e in EDGES if score >= e)
    near_edge = any(abs(score - e) < 1e-9 for e in EDGES)
    assert near_edge or bin_of(path_sum, n_trees) == expected


def test_the_edges_themselves() -> None:
    """Score 0.5 is a path length of exactly ONE per tree: it opens bin 9 ([0.500, 0.525))."""
    assert bin_of(10 * ONE, 10) == 9
    assert bin_of(10 * ONE + 1, 10) == 8
    assert bin_of(0, 3) == DRIFT_BINS - 1  # score 1.0
    assert bin_of(100 * ONE, 1) == 0  # score near 0


counts = st.lists(st.integers(0, 10_000), min_size=DRIFT_BINS, max_size=DRIFT_BINS).filter(
    lambda c: sum(c) > 0
)


def _psi_float(expected: list[int], actual: list[int]) -> float:
    e = (np.array(expected) + 0.5) / (sum(expected) + 0.5 * DRIFT_BINS)
    a = (np.array(actual) + 0.5) / (sum(actual) + 0.5 * DRIFT_BINS)
    return float(np.sum((a - e) * np.log(a / e)))


@settings(max_examples=300, deadline=None)
@given(counts, counts)
def test_psi_agrees_with_a_float_oracle(expected: list[int], actual: list[int]) -> None:
    exact = psi_ppm(expected, actual)
    assert exact >= 0
    assert math.isclose(exact / 1e6, _psi_float(expected, actual), abs_tol=2e-6)
    assert psi_ppm(expected, expected) == 0
    assert exact == psi_ppm(actual, expected)  # PSI is symmetric in its two populations


def test_fresh_rows_from_the_training_population_are_stable_and_shifted_ones_are_not() -> None:
    rng = np.random.default_rng(17)
    model = train(make_data(4, n=2000, d=4), None, TrainParams(100, "auto", "auto", 1.0, 3)).model
    assert model.training_bins is not None
    scorer = Scorer(model)
    same = make_data(99, n=1000, d=4)
    shifted = same + rng.normal(2.5, 0.5, size=same.shape)
    stable = psi_ppm(model.training_bins, histogram(scorer.score_batch(same).path_sums, 100))
    moved = psi_ppm(model.training_bins, histogram(scorer.score_batch(shifted).path_sums, 100))
    assert stable < 100_000, stable
    assert moved > 250_000, moved
