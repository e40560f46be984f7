"""The exact arithmetic behind the fixed-point scheme, and the deterministic exp2."""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ml_testing import make_data
from numba import njit
from sklearn.ensemble._iforest import _average_path_length

from ml.fixed import (
    ALL_OUTLIERS,
    EULER_GAMMA,
    MAX_LEAF_VALUE,
    NO_OUTLIERS,
    ONE,
    average_path_length,
    leaf_value,
    threshold_fixed,
)
from ml.limits import MAX_SUBSAMPLE, MAX_TREES
from ml.score import Scorer, neg_exp2, score_from_path_sum


def test_euler_gamma_constant_is_right_to_its_last_digit() -> None:
    """Independent value: H_n - ln n - 1/(2n) + Bernoulli terms, n = 10**4 (error < 1e-50)."""
    with localcontext() as ctx:
        ctx.prec = 70
        n = Decimal(10_000)
        harmonic = sum(Decimal(1) / Decimal(k) for k in range(1, 10_001))
        gamma = (
            harmonic - n.ln() - 1 / (2 * n) + 1 / (12 * n**2) - 1 / (120 * n**4)
            + 1 / (252 * n**6) - 1 / (240 * n**8) + 1 / (132 * n**10)
        )  # fmt: skip
        assert abs(gamma - EULER_GAMMA) < Decimal("1e-49")


def test_average_path_length_matches_scikit_learn() -> None:
    counts = np.array([1, 2, 3, 4, 5, 16, 255, 256, 257, 1000, MAX_SUBSAMPLE])
    reference = _average_path_length(counts)
    ours = np.array([float(average_path_length(int(n))) for n in counts])
    assert np.allclose(ours, reference, rtol=4e-16, atol=0)
    assert average_path_length(1) == 0 and average_path_length(2) == 1


def test_leaf_values_round_half_even_and_stay_bounded() -> None:
    assert leaf_value(0, 2, 2) == ONE  # (0 + c(2)) / c(2) = 1 exactly
    assert leaf_value(1, 1, 2) == ONE
    assert leaf_value(0, 256, 256) == ONE
    biggest = max(
        leaf_value(d, n, psi)
        for psi in (2, 3, 4, 5, 8, 100, 256, MAX_SUBSAMPLE)
        for d in range((psi - 1).bit_length() + 1)
        for n in (1, 2, 3, psi)
        if n <= psi
    )
    assert biggest < MAX_LEAF_VALUE
    assert MAX_TREES * MAX_LEAF_VALUE < 2**63


def _score_exact(path_sum: int, n_trees: int) -> Decimal:
    if path_sum % (n_trees * ONE) == 0:
        return -(Decimal(2) ** -(path_sum // (n_trees * ONE)))
    with localcontext() as ctx:
        ctx.prec = 60
        return -((Decimal(2).ln() * -Decimal(path_sum) / (n_trees * ONE)).exp())


@settings(max_examples=200, deadline=None)
@given(
    offset=st.floats(-0.999999, -1e-6),
    n_trees=st.integers(1, MAX_TREES),
)
def test_threshold_separates_exactly(offset: float, n_trees: int) -> None:
    """score(S) < offset holds for S = K - 1 and fails for S = K (exact decimal check)."""
    k = threshold_fixed(offset, n_trees)
    assert _score_exact(k - 1, n_trees) < Decimal(offset)
    assert not _score_exact(k, n_trees) < Decimal(offset)


def test_threshold_special_cases() -> None:
    assert threshold_fixed(-0.5, 100) == 100 * ONE
    assert threshold_fixed(-0.25, 3) == 6 * ONE
    assert threshold_fixed(0.0, 5) == ALL_OUTLIERS
    assert threshold_fixed(0.3, 5) == ALL_OUTLIERS
    assert threshold_fixed(-1.0, 5) == NO_OUTLIERS
    assert threshold_fixed(-3.0, 5) == NO_OUTLIERS
    assert threshold_fixed(-5e-324, MAX_TREES) < 2**63 - 1


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 60.0))
def test_neg_exp2_is_accurate(x: float) -> None:
    with localcontext() as ctx:
        ctx.prec = 40
        exact = (-Decimal(x) * Decimal(2).ln()).exp()
        assert abs(Decimal(neg_exp2(x)) - exact) <= exact * Decimal("6e-16")


def test_score_from_path_sum_matches_kernel_bits(medium) -> None:
    """A recorded path sum is enough to show the score, bit for bit."""
    x = make_data(21, n=300, d=5)
    result = Scorer(medium.model).score_batch(x)
    for path_sum, score in zip(result.path_sums.tolist(), result.scores.tolist(), strict=True):
        assert score_from_path_sum(path_sum, medium.model.n_trees) == score


def test_exp2_compiles_without_fused_multiply_add() -> None:
    """Fusing a*b+c would round differently on CPUs with and without FMA.

    The cached dispatcher cannot show its machine code, so compile the same
    function afresh (same flags: no fastmath) for this CPU and read it.
    """
    fresh = njit(cache=False)(neg_exp2.py_func)
    assert fresh(3.25) == neg_exp2(3.25)
    (signature,) = fresh.signatures
    assembly = fresh.inspect_asm(signature).lower()
    assert "vfmadd" not in assembly and "fmla" not in assembly and "fmadd" not in assembly


@pytest.mark.parametrize("x", [0.0, 1.0, 2.0, 10.0, 59.0])
def test_neg_exp2_exact_at_simple_points(x: float) -> None:
    assert neg_exp2(x) == 2.0**-x
