"""Every bound the ml package enforces, defined once.

Each limit is checked where data enters (training, artifact load, scoring)
and tested at its edge: exactly the limit passes, one past fails.
"""

from __future__ import annotations

FIXED_POINT_BITS = 40
"""Leaf path contributions are stored as round(value * 2**FIXED_POINT_BITS).

A leaf's rounding error is at most 2**-41 of a normalised path length, so
scores stay within ~1e-12 of scikit-learn's."""

MAX_FEATURES = 1024
"""Most feature columns a model may have."""

MAX_FEATURE_NAME_BYTES = 128
"""Longest feature name, in UTF-8 bytes."""

MAX_TREES = 4096
"""Most trees in one model, summed over all contributors."""

MIN_SUBSAMPLE = 2
"""Smallest per-tree subsample size (max_samples_); with one sample the score is undefined."""

MAX_SUBSAMPLE = 65_536
"""Largest per-tree subsample size (max_samples_)."""

MAX_TREE_DEPTH = 16
"""Deepest leaf: scikit-learn caps depth at ceil(log2(max_samples_)) = 16 for MAX_SUBSAMPLE."""

MAX_CONTRIBUTORS = 64
"""Most sub-forests (federated contributors) in one model."""

MAX_ANCHORS = 256
"""Most training-data digests one contributor may list."""

MAX_TEXT_BYTES = 64
"""Longest descriptive string (hyper-parameter text, library name or version)."""

MAX_LIBRARIES = 8
"""Most library-version pairs one contributor may list."""

MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
"""Largest artifact accepted by ``artifact.load``."""

MAX_CSV_BYTES = 64 * 1024 * 1024
"""Largest CSV text accepted for training or scoring."""

MAX_ROWS = 1_000_000
"""Most data rows in one CSV or matrix (training or scoring)."""

MAX_TOP_K = 16
"""Most features an explanation may list per row."""

DIGEST_BYTES = 32
MAX_DATASET_ROWS = 2**53
"""Most training rows an artifact may credit to one dataset (exact in a float64 and in JSON)."""
"""SHA-256 digest length: model ids, sub-forest digests and data anchors."""

INT64_MAX = 2**63 - 1

assert (1 << MAX_TREE_DEPTH) == MAX_SUBSAMPLE
