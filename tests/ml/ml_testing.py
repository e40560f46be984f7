"""Helpers shared by the ml tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from consensus import codec
from ml import artifact
from ml.fixed import leaf_value
from ml.forest import NODE_DTYPES, TREE_SIZES_DTYPE, HyperParameters, SubForest

NEEDS_GCC = pytest.mark.skipif(
    shutil.which("gcc") is None or platform.machine() != "x86_64",
    reason="needs gcc on x86-64 to build a library that sets MXCSR",
)


def run_with_library(tmp_path: Path, c_source: str, script: str, stdin: bytes) -> str:
    """Build ``c_source`` into a shared library and run ``script`` (``python -c``) with the
    library's path as its argument and ``stdin`` as its input; the script's output."""
    source = tmp_path / "mode.c"
    source.write_text(c_source)
    library = tmp_path / "libmode.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, str(library)],
        input=stdin,
        capture_output=True,
        check=True,
    )
    return out.stdout.decode()


def make_data(seed: int, n: int = 300, d: int = 4, outliers: int = 10) -> np.ndarray:
    """Gaussian inliers plus a few rows pushed far out along random features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    rows = rng.choice(n, size=outliers, replace=False)
    cols = rng.integers(0, d, size=outliers)
    x[rows, cols] += rng.choice([-1.0, 1.0], size=outliers) * rng.uniform(5, 9, size=outliers)
    return x


def leaf_forest(n_trees: int, subsample: int, anchors: tuple[bytes, ...] = ()) -> SubForest:
    """A sub-forest of single-leaf trees (every training row identical): cheap at any size."""
    value = leaf_value(0, subsample, subsample) if subsample >= 2 else 0
    nodes = {
        "left": np.full(n_trees, -1),
        "right": np.full(n_trees, -1),
        "feature": np.full(n_trees, -1),
        "threshold": np.zeros(n_trees),
        "n_samples": np.full(n_trees, subsample),
        "value": np.full(n_trees, value),
    }
    return SubForest(
        hyper=HyperParameters(n_trees, "auto", "1.0", "auto", 0),
        libraries=(("numpy", "test"),),
        anchors=anchors,
        subsample=subsample,
        training_offset=-0.5,
        tree_sizes=np.ones(n_trees, dtype=TREE_SIZES_DTYPE),
        nodes={k: nodes[k].astype(dt) for k, dt in NODE_DTYPES.items()},
    )


def decode(data: bytes) -> list:
    return codec.decode(data, max_size=artifact.MAX_ARTIFACT_BYTES, allow_float=True)


def reseal(top: list, *, digests: bool = True, checksum: bool = True) -> bytes:
    """Re-encode a decoded artifact, recomputing sub-forest digests and the checksum."""
    if digests and type(top[5]) is list:
        for record in top[5]:
            if type(record) is list and len(record) == len(artifact.RECORD_FIELDS):
                record[0] = artifact.subforest_digest(top[2], record[1:])
    body = top[:-1]
    if checksum:
        return artifact.seal(body)
    return codec.encode([*body, top[-1]], allow_float=True)
