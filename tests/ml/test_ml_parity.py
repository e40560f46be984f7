"""Differential tests: our kernel against scikit-learn's IsolationForest (the oracle)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_testing import NEEDS_GCC, make_data, run_with_library

from ml import artifact
from ml.errors import InputError
from ml.explain import explain_batch
from ml.limits import MAX_SUBSAMPLE, MAX_TREE_DEPTH
from ml.score import Scorer, float32_floor
from ml.train import TrainParams, train

TOLERANCE = 1e-9
"""The issue's bound on |our score - score_samples|."""


def assert_parity(result, x: np.ndarray) -> None:
    estimator = result.estimator
    ours = Scorer(result.model).score_batch(x)
    reference = estimator.score_samples(x)
    assert np.abs(ours.scores - reference).max() <= TOLERANCE
    decision = estimator.decision_function(x)
    predicted_outlier = estimator.predict(x) == -1
    clear = np.abs(decision) > TOLERANCE
    assert (ours.outliers[clear] == predicted_outlier[clear]).all()


CASES = [
    ("auto", 300, 4, TrainParams(100, "auto", "auto", 1.0, 0)),
    ("int-subsample", 500, 6, TrainParams(50, 64, "auto", 1.0, 1)),
    ("float-subsample", 400, 3, TrainParams(40, 0.5, 0.1, 1.0, 2)),
    ("contamination", 600, 8, TrainParams(60, "auto", 0.02, 1.0, 3)),
    ("max-features-float", 300, 7, TrainParams(30, 128, "auto", 0.5, 4)),
    ("max-features-int", 300, 5, TrainParams(30, 100, 0.3, 2, 5)),
    ("one-feature", 200, 1, TrainParams(25, "auto", 0.1, 1.0, 6)),
    ("tiny-subsample", 100, 2, TrainParams(20, 2, "auto", 1.0, 7)),
    ("subsample-above-rows", 50, 3, TrainParams(20, 500, "auto", 1.0, 8)),
]


@pytest.mark.parametrize(("name", "n", "d", "params"), CASES, ids=[c[0] for c in CASES])
def test_scores_and_verdicts_match_scikit_learn(name, n, d, params) -> None:
    x = make_data(n + d, n=n, d=d, outliers=max(1, n // 30))
    result = train(x, None, params)
    fresh = make_data(n + d + 1000, n=400, d=d, outliers=20) * 1.5
    assert_parity(result, x)
    assert_parity(result, fresh)


def test_duplicated_and_integer_data_match() -> None:
    """Many identical rows make leaves with several samples (the c(n) correction)."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, size=(500, 3)).astype(np.float64)
    result = train(x, None, TrainParams(50, 256, "auto", 1.0, 9))
    assert_parity(result, x)
    assert_parity(result, x + 0.5)


def test_values_at_and_beside_every_threshold_go_the_same_way(medium) -> None:
    """Rows on, just below and just above float32 thresholds, and float64 values that round
    onto a threshold only when cast to float32 (the cast must happen before the comparison)."""
    scorer = Scorer(medium.model)
    thresholds = np.concatenate([s.nodes["threshold"] for s in medium.model.contributors])
    floors = np.unique(float32_floor(thresholds[thresholds != 0.0]))
    up = np.nextafter(floors, np.float32(np.inf))
    down = np.nextafter(floors, np.float32(-np.inf))
    f64, up64, down64 = floors.astype(np.float64), up.astype(np.float64), down.astype(np.float64)
    probes = np.concatenate(
        [
            f64,
            up64,
            down64,
            f64 + 0.4 * (up64 - f64),  # above the threshold in float64, on it in float32
            f64 - 0.4 * (f64 - down64),
            f64 + 0.6 * (up64 - f64),  # rounds up past it
        ]
    )
    rng = np.random.default_rng(1)
    x = rng.choice(probes, size=(4000, medium.model.n_features))
    assert_parity(medium, x)
    widened = x.astype(np.float32).astype(np.float64)
    assert np.array_equal(scorer.score_batch(x).path_sums, scorer.score_batch(widened).path_sums)
    for row, expected in zip(x[:200], scorer.score_batch(x[:200]).path_sums, strict=True):
        assert scorer.score_row(row)[0] == expected


def test_float32_floor_is_the_largest_float32_not_above() -> None:
    rng = np.random.default_rng(2)
    t = np.concatenate([rng.normal(size=5000) * 10.0 ** rng.integers(-30, 30, 5000), [1e39, -1e39]])
    f = float32_floor(t)
    assert (f.astype(np.float64) <= t).all()
    with np.errstate(over="ignore"):
        assert (np.nextafter(f, np.float32(np.inf)).astype(np.float64) > t).all()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_infinite_features_follow_scikit_learn(medium) -> None:
    x = make_data(5, n=20, d=5)
    x[::2, 1] = np.inf
    x[1::2, 3] = -np.inf
    x[3, 0] = 1e300
    assert_parity(medium, x)


def test_nan_is_refused_in_batch_and_row(medium) -> None:
    scorer = Scorer(medium.model)
    row = np.zeros(5)
    row[2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        scorer.score_batch(row.reshape(1, -1))
    with pytest.raises(InputError, match="NaN"):
        scorer.score_row(row)
    with pytest.raises(InputError, match="feature"):
        scorer.score_row(np.zeros(4))
    with pytest.raises(InputError, match="feature"):
        scorer.score_batch(np.zeros((2, 6)))


def test_row_entry_point_equals_batch(medium) -> None:
    scorer = Scorer(medium.model)
    x = make_data(11, n=60, d=5)
    batch = scorer.score_batch(x)
    for i, row in enumerate(x):
        total, score, outlier = scorer.score_row(row.tolist())
        assert total == batch.path_sums[i]
        assert score == batch.scores[i]
        assert outlier == batch.outliers[i]
    # Small batches (below the interleave width) take the other loop: same sums.
    for size in (1, 7, 8, 9, 17):
        assert np.array_equal(scorer.score_batch(x[:size]).path_sums, batch.path_sums[:size])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 120),
    d=st.integers(1, 5),
    trees=st.integers(1, 12),
    subsample=st.one_of(st.just("auto"), st.integers(2, 150), st.floats(0.3, 1.0)),
    contamination=st.one_of(st.just("auto"), st.floats(0.01, 0.5)),
    scale=st.sampled_from([1e-3, 1.0, 1e6]),
)
def test_random_data_parity(seed, n, d, trees, subsample, contamination, scale) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_t(2, size=(n, d)) * scale
    if isinstance(subsample, float) and int(subsample * n) < 2:
        subsample = "auto"
    result = train(x, None, TrainParams(trees, subsample, contamination, 1.0, seed))
    assert_parity(result, x)
    assert_parity(result, rng.standard_t(2, size=(50, d)) * scale * 2)


FRESH_PROCESS = """
import json, sys
import numpy as np
from ml import artifact
from ml.explain import explain_batch
from ml.score import Scorer
data = sys.stdin.buffer.read()
model = artifact.load(data)
x = np.array(json.loads(sys.argv[1]))
scorer = Scorer(model)
result = scorer.score_batch(x)
top = explain_batch(scorer, x, 3)
print(json.dumps([model.model_id.hex(), result.path_sums.tolist(),
                  [s.hex() for s in result.scores.tolist()], result.outliers.tolist(),
                  top.features.tolist(), top.weights.tolist()]))
"""


def test_same_artifact_scores_identically_in_a_fresh_process(medium) -> None:
    x = make_data(12, n=200, d=5)
    scorer = Scorer(artifact.load(medium.model.data))
    here = scorer.score_batch(x)
    top = explain_batch(scorer, x, 3)
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps(x.tolist())],
        input=medium.model.data,
        capture_output=True,
        check=True,
    )
    model_id, sums, scores, outliers, features, weights = json.loads(out.stdout)
    assert model_id == medium.model.model_id.hex()
    assert sums == here.path_sums.tolist()
    assert scores == [s.hex() for s in here.scores.tolist()]
    assert outliers == here.outliers.tolist()
    assert features == top.features.tolist() and weights == top.weights.tolist()


def test_largest_subsample_reaches_the_depth_cap() -> None:
    """MAX_SUBSAMPLE rows per tree: scikit-learn grows to depth MAX_TREE_DEPTH; we follow."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(MAX_SUBSAMPLE + 10, 2))
    result = train(x, None, TrainParams(2, MAX_SUBSAMPLE, "auto", 1.0, 0))
    scorer = Scorer(result.model)
    assert int(scorer.depths.max()) == MAX_TREE_DEPTH
    assert_parity(result, x[:3000])


FLUSHING_PROCESS = """
import ctypes, json, sys
import numpy as np
from ml import artifact
from ml.errors import FloatEnvironmentError
from ml.explain import explain_batch
from ml.score import Scorer
scorer = Scorer(artifact.load(sys.stdin.buffer.read()))
x = np.full((3, scorer.n_features), 1e-40)
before = scorer.score_batch(x).path_sums.tolist()
ctypes.CDLL(sys.argv[1])  # its constructor sets FTZ/DAZ, as any -ffast-math library does
refused = []
for call in (lambda: scorer.score_batch(x), lambda: scorer.score_row(x[0]),
             lambda: explain_batch(scorer, x)):
    try:
        call()
    except FloatEnvironmentError:
        refused.append(True)
print(json.dumps([before, len(refused), float(np.float32(1e-40))]))
"""


MXCSR_MODES = {"flush-to-zero": 0x8000, "denormals-are-zero": 0x0040, "both": 0x8040}


@NEEDS_GCC
@pytest.mark.parametrize("mode", sorted(MXCSR_MODES))
def test_scoring_refuses_a_process_that_flushes_subnormals(medium, tmp_path, mode) -> None:
    """Subnormal features would go the other way at a split: refuse rather than disagree.

    The library sets the CPU mode when loaded, as a -ffast-math build does.
    """
    source = (
        "#include <xmmintrin.h>\n"
        "__attribute__((constructor)) static void set_mode(void) {\n"
        f"    _mm_setcsr(_mm_getcsr() | {MXCSR_MODES[mode]:#x});\n"
        "}\n"
    )
    out = run_with_library(tmp_path, source, FLUSHING_PROCESS, medium.model.data)
    before, refused, _ = json.loads(out)
    assert refused == 3
    assert before == Scorer(medium.model).score_batch(np.full((3, 5), 1e-40)).path_sums.tolist()
