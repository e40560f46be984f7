"""Federated merge: the consortium model is the union of the members' forests.

Each member trains on private data and publishes a model; ``merge`` pools
their sub-forests (flattening models that are themselves merges) under one
feature schema. Every tree keeps its own normalisation ``c(psi)`` inside its
leaf values, so the merged path sum divided by the total tree count is the
mean normalised path length over all trees. When every contributor used the
same subsample size this is exactly scikit-learn's score for a forest whose
estimators are the union; with different sizes it is the same average with
each tree normalised by its own ``c(psi)``.

The drift baseline is the sum of the inputs' training histograms
(``merged_training_bins``); the training datasets are the union of the inputs'
(``merged_datasets``). The result does not depend on the order of the inputs: contributors are
stored sorted by digest and the threshold is derived from the offset and
the total tree count. The offset must be given unless all inputs agree on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ml.artifact import build_model
from ml.errors import MergeError
from ml.forest import Model, SubForest
from ml.limits import MAX_CONTRIBUTORS, MAX_TREES


def merge(models: Sequence[Model], offset: float | None = None) -> Model:
    """Union of ``models``' sub-forests; ``offset`` overrides the decision offset."""
    if len(models) < 2:
        raise MergeError(f"merge needs at least two models, got {len(models)}")
    schema = models[0].feature_names
    for i, model in enumerate(models[1:], start=1):
        if model.feature_names != schema:
            raise MergeError(
                f"model {i} has feature schema {list(model.feature_names)}, "
                f"model 0 has {list(schema)}; merged models must share one schema"
            )
    by_digest: dict[bytes, SubForest] = {}
    for i, model in enumerate(models):
        for digest, sub in zip(model.digests, model.contributors, strict=True):
            if digest in by_digest:
                raise MergeError(
                    f"model {i} repeats contributor {digest.hex()}: its trees would count twice"
                )
            by_digest[digest] = sub
    if len(by_digest) > MAX_CONTRIBUTORS:
        raise MergeError(f"{len(by_digest)} contributors; the limit is {MAX_CONTRIBUTORS}")
    trees = sum(sub.n_trees for sub in by_digest.values())
    if trees > MAX_TREES:
        raise MergeError(f"{trees} trees in total; the limit is {MAX_TREES}")
    if offset is None:
        offsets = {model.offset for model in models}
        if len(offsets) != 1:
            raise MergeError(
                f"the models have different offsets {sorted(offsets)}; choose one explicitly"
            )
        offset = offsets.pop()
    if not isinstance(offset, float) or not math.isfinite(offset):
        raise MergeError(f"offset must be a finite float, got {offset!r}")
    bins = merged_training_bins(models)
    return build_model(
        schema,
        offset,
        [by_digest[d] for d in sorted(by_digest)],
        bins,
        merged_datasets(models) if bins is not None else None,
    )


def merged_datasets(models: Sequence[Model]) -> list[tuple[bytes, int]] | None:
    """The training datasets of all inputs (None if any input records none).

    Two inputs trained on the same anchored file must credit it with the same rows; it then
    counts once.
    """
    if any(model.datasets is None for model in models):
        return None
    rows: dict[bytes, int] = {}
    for i, model in enumerate(models):
        for digest, n in model.datasets or ():
            if rows.setdefault(digest, n) != n:
                raise MergeError(
                    f"model {i} credits dataset {digest.hex()} with {n} rows, another with "
                    f"{rows[digest]}"
                )
    return sorted(rows.items())


def merged_training_bins(models: Sequence[Model]) -> list[int] | None:
    """The merged model's drift baseline: the sum of the inputs' training histograms.

    Each input's rows were scored by its own forest, not by the union, so this is
    an estimate of the union's training distribution (close when the members'
    data come from one population, which is what a shared model assumes). If any
    input has no histogram (a version 1 artifact) the merged model has none.
    """
    if any(model.training_bins is None for model in models):
        return None
    return [sum(column) for column in zip(*(m.training_bins for m in models), strict=True)]
