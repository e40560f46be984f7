"""Train a scikit-learn IsolationForest and export it as a Vigil model.

scikit-learn is the reference: ``fit`` calls it with the exposed
hyper-parameters, and ``export`` flattens its trees into the artifact layout
(``ml.forest``), mapping each tree's sub-sampled feature indices back to the
schema, converting scikit-learn's leaf markers to ``LEAF`` and computing each
leaf's exact fixed-point value (``ml.fixed.leaf_value``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from consensus.crypto import sha256
from ml.artifact import build_model, validate_feature_names
from ml.dataset import as_matrix, parse_csv
from ml.drift import histogram
from ml.errors import ArtifactError, InputError, TrainingError
from ml.fixed import leaf_value
from ml.forest import LEAF, NODE_DTYPES, TREE_SIZES_DTYPE, HyperParameters, Model, SubForest
from ml.limits import (
    DIGEST_BYTES,
    MAX_ANCHORS,
    MAX_SUBSAMPLE,
    MAX_TREES,
    MIN_SUBSAMPLE,
)
from ml.score import Scorer

FLOAT32_MAX = float(np.finfo(np.float32).max)
AUTO_SUBSAMPLE = 256
"""scikit-learn's subsample size for ``max_samples='auto'`` (capped by the row count)."""


@dataclass(frozen=True)
class TrainParams:
    """The IsolationForest hyper-parameters Vigil exposes (scikit-learn's meaning)."""

    n_estimators: int = 100
    max_samples: str | int | float = "auto"
    contamination: str | float = "auto"
    max_features: int | float = 1.0
    random_state: int = 0


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The exported model and the scikit-learn estimator it came from (the oracle)."""

    model: Model
    estimator: IsolationForest


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def effective_subsample(max_samples: str | int | float, n_rows: int) -> int:
    """The per-tree subsample size scikit-learn will use (``max_samples_``)."""
    if max_samples == "auto":
        return min(AUTO_SUBSAMPLE, n_rows)
    if isinstance(max_samples, bool):
        raise TrainingError("max_samples must be 'auto', an integer or a float in (0, 1]")
    if isinstance(max_samples, int):
        if max_samples < 1:
            raise TrainingError(f"max_samples must be at least 1, got {max_samples}")
        return min(max_samples, n_rows)
    if isinstance(max_samples, float) and 0.0 < max_samples <= 1.0:
        return int(max_samples * n_rows)
    raise TrainingError(
        f"max_samples must be 'auto', an integer or a float in (0, 1], got {max_samples!r}"
    )


def check_params(params: TrainParams, n_rows: int, n_features: int) -> int:
    """Refuse parameters the artifact cannot carry; return the effective subsample size."""
    n = params.n_estimators
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TREES:
        raise TrainingError(f"n_estimators must be an integer in 1..{MAX_TREES}, got {n!r}")
    psi = effective_subsample(params.max_samples, n_rows)
    if not MIN_SUBSAMPLE <= psi <= MAX_SUBSAMPLE:
        raise TrainingError(
            f"max_samples gives {psi} rows per tree; allowed {MIN_SUBSAMPLE}..{MAX_SUBSAMPLE}"
        )
    c = params.contamination
    if c != "auto" and not (isinstance(c, float) and 0.0 < c <= 0.5):
        raise TrainingError(f"contamination must be 'auto' or a float in (0, 0.5], got {c!r}")
    f = params.max_features
    ok_int = isinstance(f, int) and not isinstance(f, bool) and 1 <= f <= n_features
    if not (ok_int or (isinstance(f, float) and 0.0 < f <= 1.0)):
        raise TrainingError(
            f"max_features must be an integer in 1..{n_features} or a float in (0, 1], got {f!r}"
        )
    s = params.random_state
    if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32:
        raise TrainingError(f"random_state must be an integer in 0..2**32-1, got {s!r}")
    return psi


def fit(matrix: np.ndarray, params: TrainParams) -> IsolationForest:
    """Fit scikit-learn's IsolationForest on a validated float64 matrix."""
    check_params(params, matrix.shape[0], matrix.shape[1])
    estimator = IsolationForest(
        n_estimators=params.n_estimators,
        max_samples=params.max_samples,
        contamination=params.contamination,
        max_features=params.max_features,
        random_state=params.random_state,
    )
    with warnings.catch_warnings():
        # max_samples above the row count is clipped, as effective_subsample says.
        warnings.simplefilter("ignore", UserWarning)
        estimator.fit(matrix)
    return estimator


def _export_tree(tree: object, columns: np.ndarray, subsample: int) -> dict[str, np.ndarray]:
    t = tree.tree_
    left = t.children_left.astype(np.int64)
    right = t.children_right.astype(np.int64)
    leaf = left < 0
    feature = np.where(leaf, LEAF, columns[np.where(leaf, 0, t.feature)])
    threshold = np.where(leaf, 0.0, t.threshold)
    n_samples = t.n_node_samples.astype(np.int64)
    depth = np.zeros(len(left), dtype=np.int64)
    for i in range(len(left)):  # bounded by the tree size; children follow parents
        if not leaf[i]:
            assert left[i] > i and right[i] > i, "scikit-learn tree not in depth-first order"
            depth[left[i]] = depth[right[i]] = depth[i] + 1
    cache: dict[tuple[int, int], int] = {}
    value = np.zeros(len(left), dtype=np.int64)
    for i in np.flatnonzero(leaf):
        key = (int(depth[i]), int(n_samples[i]))
        if key not in cache:
            cache[key] = leaf_value(key[0], key[1], subsample)
        value[i] = cache[key]
    return {
        "left": np.where(leaf, LEAF, left),
        "right": np.where(leaf, LEAF, right),
        "feature": feature,
        "threshold": threshold,
        "n_samples": n_samples,
        "value": value,
    }


def export_subforest(
    estimator: IsolationForest, params: TrainParams, anchors: Sequence[bytes] = ()
) -> SubForest:
    """Flatten a fitted estimator's trees into one contributor record."""
    subsample = int(estimator.max_samples_)
    assert estimator._max_samples == subsample
    anchor_set = sorted(set(anchors))
    if len(anchor_set) > MAX_ANCHORS:
        raise TrainingError(f"{len(anchor_set)} anchors; the limit is {MAX_ANCHORS}")
    for a in anchor_set:
        if not isinstance(a, bytes) or len(a) != DIGEST_BYTES:
            raise TrainingError(f"anchor {a!r} is not a {DIGEST_BYTES}-byte digest")
    trees = [
        _export_tree(tree, np.asarray(cols, dtype=np.int64), subsample)
        for tree, cols in zip(estimator.estimators_, estimator.estimators_features_, strict=True)
    ]
    nodes = {
        name: np.concatenate([t[name] for t in trees]).astype(dtype)
        for name, dtype in NODE_DTYPES.items()
    }
    return SubForest(
        hyper=HyperParameters(
            n_estimators=params.n_estimators,
            max_samples=_text(params.max_samples),
            max_features=_text(params.max_features),
            contamination=_text(params.contamination),
            random_state=params.random_state,
        ),
        libraries=(("numpy", np.__version__), ("scikit-learn", sklearn.__version__)),
        anchors=tuple(anchor_set),
        subsample=subsample,
        training_offset=float(estimator.offset_),
        tree_sizes=np.array([len(t["left"]) for t in trees], dtype=TREE_SIZES_DTYPE),
        nodes=nodes,
    )


def train(
    data: object,
    feature_names: Sequence[str] | None = None,
    params: TrainParams | None = None,
    anchors: Sequence[bytes] = (),
    datasets: Sequence[tuple[bytes, int]] | None = None,
) -> TrainResult:
    """Fit on ``data`` (rows x features) and export; names default to ``x0, x1, ...``.

    ``datasets`` names the files the rows came from, as ``(sha256 of the file, rows)``
    in any order; their rows must add up to the data's. They are the sub-forest's anchors
    and the artifact's ``datasets`` (format 3), which governance checks against the
    chain. ``anchors`` alone (no row counts) writes a format 2 artifact.
    """
    params = params or TrainParams()
    matrix = as_matrix(data)
    if datasets is not None:
        if anchors:
            raise InputError("give datasets (digest, rows) or anchors, not both")
        if not datasets or sum(n for _, n in datasets) != matrix.shape[0]:
            raise InputError(
                f"the datasets' rows ({sum(n for _, n in datasets)}) must add up to the "
                f"{matrix.shape[0]} training rows"
            )
        if len({d for d, _ in datasets}) != len(datasets):
            raise InputError("a dataset is listed twice")
        anchors = sorted(d for d, _ in datasets)
    if not np.isfinite(matrix).all() or (np.abs(matrix) > FLOAT32_MAX).any():
        raise InputError("training data must be finite and within float32 range")
    names = (
        tuple(feature_names)
        if feature_names is not None
        else tuple(f"x{i}" for i in range(matrix.shape[1]))
    )
    if len(names) != matrix.shape[1]:
        raise InputError(f"{len(names)} feature names for {matrix.shape[1]} columns")
    try:
        validate_feature_names(list(names))
    except ArtifactError as exc:
        raise InputError(f"bad feature names: {exc}") from None
    check_params(params, matrix.shape[0], matrix.shape[1])
    estimator = fit(matrix, params)
    sub = export_subforest(estimator, params, anchors)
    plain = build_model(names, float(estimator.offset_), [sub])
    bins = histogram(Scorer(plain).score_batch(matrix).path_sums, plain.n_trees)
    model = build_model(names, float(estimator.offset_), [sub], bins, datasets)
    return TrainResult(model, estimator)


def train_csv(files: Sequence[bytes], params: TrainParams | None = None) -> TrainResult:
    """Train on the rows of one or more CSV files (each with the same header).

    Each file's SHA-256 and row count are recorded as a training dataset: that digest is
    what an ``anchor`` transaction for this exact file records, so the model names the data
    it was trained on without being told, and governance can look each one up on chain.
    """
    if not files:
        raise InputError("no training data")
    parsed = [parse_csv(data) for data in files]
    names = parsed[0].feature_names
    for i, dataset in enumerate(parsed[1:], start=1):
        if dataset.feature_names != names:
            raise InputError(
                f"file {i + 1} has columns {list(dataset.feature_names)}, file 1 has "
                f"{list(names)}; training files must share one header"
            )
    rows: dict[bytes, int] = {}
    for data, dataset in zip(files, parsed, strict=True):
        digest = sha256(data)
        if digest in rows:
            raise InputError(f"the same file is given twice (sha256 {digest.hex()})")
        rows[digest] = dataset.matrix.shape[0]
    matrix = np.concatenate([d.matrix for d in parsed]) if len(parsed) > 1 else parsed[0].matrix
    return train(matrix, names, params, datasets=list(rows.items()))
