"""Multi-core batches: the same bits as one thread, whatever the split, and the float guard per
thread.

Each row's path sum, score, verdict and explanation depend on that row alone, so splitting a
batch over threads cannot change them; these tests hold the code to that (split sizes from
one row per chunk up, fewer rows than threads, the first NaN row named as one thread names it)
and check that a worker thread whose FPU flushes subnormals is refused even when the calling
thread's does not.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_testing import NEEDS_GCC, make_data, run_with_library

import ml.score
from ml.errors import InputError
from ml.explain import Explanations, explain_batch
from ml.kernels import INTERLEAVE
from ml.score import PARALLEL_MIN_ROWS, Scorer, Scores, split_rows
from ml.train import TrainParams, train


def same_scores(a: Scores, b: Scores) -> bool:
    return (
        np.array_equal(a.path_sums, b.path_sums)
        and a.scores.tobytes() == b.scores.tobytes()
        and np.array_equal(a.outliers, b.outliers)
    )


def same_explanations(a: Explanations, b: Explanations) -> bool:
    return (
        np.array_equal(a.features, b.features)
        and np.array_equal(a.weights, b.weights)
        and np.array_equal(a.totals, b.totals)
    )


@pytest.fixture
def split_everything(monkeypatch) -> None:
    """Split every batch, down to one row per chunk, so small inputs exercise the threads."""
    monkeypatch.setattr(ml.score, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(ml.score, "MIN_CHUNK_ROWS", 1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3 * INTERLEAVE + 5),
    workers=st.sampled_from([2, 3, 5, 8]),
)
def test_any_split_gives_the_one_thread_bits(medium, split_everything, seed, n, workers) -> None:
    scorer = Scorer(medium.model)
    x = make_data(seed % 1000, n=n, d=5, outliers=min(n, 3)) * 2.0
    one = scorer.score_batch(x, workers=1)
    assert len(split_rows(n, workers)) == min(n, workers * ml.score.CHUNKS_PER_WORKER)
    assert same_scores(scorer.score_batch(x, workers=workers), one)
    k = 1 + seed % 5
    assert same_explanations(
        explain_batch(scorer, x, k, workers=workers), explain_batch(scorer, x, k, workers=1)
    )


def test_block_path_equals_the_row_path_at_many_widths() -> None:
    """Blocks of rows (many features: a block is one group of 16) against one row at a time."""
    for d in (1, 3, 8, 130, 300):
        x = make_data(d, n=300, d=d, outliers=20)
        scorer = Scorer(train(x, None, TrainParams(12, 64, "auto", 1.0, d)).model)
        batch = scorer.score_batch(x)
        explained = explain_batch(scorer, x, 4)
        for i in range(0, 300, 13):
            assert scorer.score_row(x[i]) == (
                batch.path_sums[i],
                batch.scores[i],
                batch.outliers[i],
            )
            alone = explain_batch(scorer, x[i : i + 1], 4)  # fewer than FEW_ROWS rows
            assert np.array_equal(alone.features[0], explained.features[i])
            assert np.array_equal(alone.weights[0], explained.weights[i])
            assert alone.totals[0] == explained.totals[i]


def test_a_large_batch_is_split_and_equal(medium) -> None:
    scorer = Scorer(medium.model)
    n = PARALLEL_MIN_ROWS * 2 + 7
    x = make_data(5, n=n, d=5, outliers=200) * 1.5
    assert len(split_rows(n, 2)) > 1 and split_rows(n - 1, 1) == [(0, n - 1)]
    one = scorer.score_batch(x, workers=1)
    for workers in (2, 3, None):
        assert same_scores(scorer.score_batch(x, workers=workers), one)
    assert same_explanations(explain_batch(scorer, x, workers=3), explain_batch(scorer, x, 3))


def test_small_batches_stay_on_the_calling_thread() -> None:
    from node.app.types import MAX_BLOCK_TXS

    assert MAX_BLOCK_TXS < PARALLEL_MIN_ROWS  # a node's block is scored as it always was
    assert split_rows(PARALLEL_MIN_ROWS - 1, 64) == [(0, PARALLEL_MIN_ROWS - 1)]


def test_the_first_nan_row_is_named_whatever_the_split(medium, split_everything) -> None:
    scorer = Scorer(medium.model)
    x = make_data(6, n=50, d=5)
    x[41, 2] = np.nan
    x[17, 0] = np.nan
    for workers in (1, 2, 7):
        with pytest.raises(InputError, match="row 17 holds NaN"):
            scorer.score_batch(x, workers=workers)
        with pytest.raises(InputError, match="row 17 holds NaN"):
            explain_batch(scorer, x, workers=workers)
    with pytest.raises(InputError, match="rows; allowed"):
        scorer.score_batch(np.empty((0, 5)), workers=3)  # no rows: refused as on one thread


@pytest.mark.parametrize("workers", [0, -1, 257, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(medium, workers) -> None:
    scorer = Scorer(medium.model)
    with pytest.raises(InputError, match="workers"):
        scorer.score_batch(np.zeros((2, 5)), workers=workers)
    with pytest.raises(InputError, match="workers"):
        explain_batch(scorer, np.zeros((2, 5)), workers=workers)


FLUSHING_WORKERS = """
import ctypes, json, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import ml.score
from ml import artifact
from ml.errors import FloatEnvironmentError
from ml.explain import explain_batch
from ml.score import Scorer

library = ctypes.CDLL(sys.argv[1])  # exports set_mode(): this thread only flushes subnormals


class FlushingPool(ThreadPoolExecutor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, initializer=library.set_mode, **kwargs)


ml.score.ThreadPoolExecutor = FlushingPool
scorer = Scorer(artifact.load(sys.stdin.buffer.read()))
x = np.full((ml.score.PARALLEL_MIN_ROWS, scorer.n_features), 1e-40)
refused = []
for call in (lambda: scorer.score_batch(x, workers=2), lambda: explain_batch(scorer, x, workers=2)):
    try:
        call()
    except FloatEnvironmentError:
        refused.append(True)
fine = scorer.score_batch(x, workers=1).path_sums.tolist()[:3]  # this thread does not flush
print(json.dumps([len(refused), fine]))
"""


@NEEDS_GCC
def test_a_worker_thread_that_flushes_subnormals_is_refused(medium, tmp_path) -> None:
    """Only the worker threads flush (FTZ and DAZ): each chunk's kernel checks its own thread."""
    import json

    source = "#include <xmmintrin.h>\nvoid set_mode(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }\n"
    out = run_with_library(tmp_path, source, FLUSHING_WORKERS, medium.model.data)
    refused, fine = json.loads(out)
    assert refused == 2
    expected = Scorer(medium.model).score_batch(np.full((3, 5), 1e-40)).path_sums.tolist()
    assert fine == expected
