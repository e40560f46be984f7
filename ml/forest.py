"""In-memory model: the feature schema, the threshold and the contributors' sub-forests.

These classes hold plain numpy arrays and metadata; they know nothing about
scikit-learn (``ml.train`` builds them) or bytes (``ml.artifact`` encodes and
validates them). Node arrays of a sub-forest are the concatenation of its
trees; child indices are local to their tree, a leaf has ``left == right ==
LEAF`` and ``feature == LEAF``, and ``value`` holds each leaf's fixed-point
normalised path length (zero at internal nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEAF = -1
"""Child index and feature index marking a leaf."""

NODE_DTYPES: dict[str, np.dtype] = {
    "left": np.dtype("<i4"),
    "right": np.dtype("<i4"),
    "feature": np.dtype("<i4"),
    "threshold": np.dtype("<f8"),
    "n_samples": np.dtype("<u4"),
    "value": np.dtype("<i8"),
}
"""Per-node arrays of a sub-forest and their little-endian dtypes, in artifact order."""

TREE_SIZES_DTYPE = np.dtype("<u4")
"""Dtype of the per-tree node counts."""


@dataclass(frozen=True, eq=False)
class HyperParameters:
    """How a contributor trained its forest (descriptive; scoring uses only the trees)."""

    n_estimators: int
    max_samples: str
    max_features: str
    contamination: str
    random_state: int | None


@dataclass(frozen=True, eq=False)
class SubForest:
    """One contributor's trees plus the provenance that travels with them."""

    hyper: HyperParameters
    libraries: tuple[tuple[str, str], ...]
    anchors: tuple[bytes, ...]
    subsample: int
    training_offset: float
    tree_sizes: np.ndarray
    nodes: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_trees(self) -> int:
        return int(self.tree_sizes.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.nodes["left"].shape[0])


@dataclass(frozen=True, eq=False)
class Model:
    """A loaded (validated) model and its canonical bytes."""

    feature_names: tuple[str, ...]
    offset: float
    threshold: int
    contributors: tuple[SubForest, ...]
    digests: tuple[bytes, ...]
    data: bytes = field(repr=False)
    model_id: bytes
    training_bins: tuple[int, ...] | None = None
    """The training scores per ``ml.drift`` bin; None for a version 1 artifact."""
    datasets: tuple[tuple[bytes, int], ...] | None = None
    """``(digest, rows)`` of each training dataset, by digest; None before version 3."""

    @property
    def n_trees(self) -> int:
        return sum(c.n_trees for c in self.contributors)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)
