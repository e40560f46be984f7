"""Federated merge: deterministic, and scoring the union equals scikit-learn's union."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from ml_testing import leaf_forest, make_data

from ml import artifact
from ml.errors import MergeError
from ml.limits import MAX_CONTRIBUTORS, MAX_TREES
from ml.merge import merge
from ml.score import Scorer
from ml.train import TrainParams, train


def _member(seed: int, trees: int = 20, subsample: object = 128, contamination: object = "auto"):
    x = make_data(seed, n=400, d=4)
    return train(x, ["a", "b", "c", "d"], TrainParams(trees, subsample, contamination, 1.0, seed))


@pytest.fixture(scope="module")
def members():
    return [_member(1), _member(2, trees=30), _member(3, trees=10)]


def test_merge_is_independent_of_input_order(members) -> None:
    models = [m.model for m in members]
    outputs = {merge(list(order)).data for order in itertools.permutations(models)}
    assert len(outputs) == 1
    merged = artifact.load(outputs.pop())
    assert merged.digests == tuple(sorted(merged.digests))
    assert merged.n_trees == 60
    assert set(merged.digests) == {m.model.digests[0] for m in members}


def test_merge_of_merges_flattens_to_the_same_model(members) -> None:
    a, b, c = (m.model for m in members)
    assert merge([merge([a, b]), c]).data == merge([a, b, c]).data


def test_union_scores_equal_scikit_learn_on_the_union_forest(members) -> None:
    union = copy.deepcopy(members[0].estimator)
    for member in members[1:]:
        e = member.estimator
        union.estimators_ = union.estimators_ + e.estimators_
        union.estimators_features_ = union.estimators_features_ + e.estimators_features_
        union._decision_path_lengths += e._decision_path_lengths
        union._average_path_length_per_tree += e._average_path_length_per_tree
    union.n_estimators = len(union.estimators_)
    merged = merge([m.model for m in members])
    x = make_data(50, n=500, d=4)
    ours = Scorer(merged).score_batch(x)
    assert np.abs(ours.scores - union.score_samples(x)).max() <= 1e-9
    clear = np.abs(union.decision_function(x)) > 1e-9
    assert (ours.outliers[clear] == (union.predict(x) == -1)[clear]).all()


def test_different_subsample_sizes_average_normalised_path_lengths() -> None:
    small, large = _member(4, trees=15, subsample=32), _member(5, trees=25, subsample=256)
    merged = merge([small.model, large.model])
    x = make_data(51, n=300, d=4)
    mean_path = [-np.log2(-m.estimator.score_samples(x)) for m in (small, large)]
    expected = -(2.0 ** -((15 * mean_path[0] + 25 * mean_path[1]) / 40))
    assert np.abs(Scorer(merged).score_batch(x).scores - expected).max() <= 1e-9


def test_sums_of_parts_equal_the_merged_sum(members) -> None:
    """Path sums are integers: the merged sum is exactly the sum of the members' sums."""
    x = make_data(52, n=100, d=4)
    merged = Scorer(merge([m.model for m in members]))
    parts = sum(Scorer(m.model).score_batch(x).path_sums for m in members)
    assert np.array_equal(merged.score_batch(x).path_sums, parts)


def test_schema_mismatch_duplicates_and_offsets_are_refused(members) -> None:
    a, b, _ = (m.model for m in members)
    other = train(make_data(6, n=100, d=4), ["a", "b", "c", "e"], TrainParams(5, 64)).model
    with pytest.raises(MergeError, match="schema"):
        merge([a, other])
    with pytest.raises(MergeError, match="twice"):
        merge([a, a])
    with pytest.raises(MergeError, match="twice"):
        merge([merge([a, b]), b])
    with pytest.raises(MergeError, match="at least two"):
        merge([a])
    contaminated = _member(7, contamination=0.1).model
    with pytest.raises(MergeError, match="offsets"):
        merge([a, contaminated])
    chosen = merge([a, contaminated], offset=-0.55)
    assert chosen.offset == -0.55
    with pytest.raises(MergeError, match="finite"):
        merge([a, b], offset=float("nan"))


def test_merge_limits_at_their_edges() -> None:
    def model(n_trees: int, subsample: int):
        return artifact.build_model(["f"], -0.5, [leaf_forest(n_trees, subsample)])

    assert merge([model(MAX_TREES - 1, 2), model(1, 3)]).n_trees == MAX_TREES
    with pytest.raises(MergeError, match="trees"):
        merge([model(MAX_TREES - 1, 2), model(2, 3)])
    models = [model(1, 2 + i) for i in range(MAX_CONTRIBUTORS + 1)]
    assert len(merge(models[:MAX_CONTRIBUTORS]).contributors) == MAX_CONTRIBUTORS
    with pytest.raises(MergeError, match="contributors"):
        merge(models)


def _member_on(seed: int, digest_of: bytes, rows: int = 400):  # type: ignore[no-untyped-def]
    x = make_data(seed, n=rows, d=4)
    params = TrainParams(10, 64, "auto", 1.0, seed)
    return train(x, ["a", "b", "c", "d"], params, datasets=[(digest_of * 32, rows)]).model


def test_merged_datasets_are_the_union_of_the_members(members) -> None:
    a, b = _member_on(1, b"\x01"), _member_on(2, b"\x02", rows=300)
    merged = merge([a, b])
    assert merged.datasets == ((b"\x01" * 32, 400), (b"\x02" * 32, 300))
    assert merge([b, a]).data == merged.data
    same_file = _member_on(3, b"\x01")  # another member trained on the same anchored file
    assert merge([a, same_file]).datasets == ((b"\x01" * 32, 400),)
    other_count = _member_on(4, b"\x01", rows=200)
    with pytest.raises(MergeError, match="credits dataset"):
        merge([a, other_count])
    legacy = members[0].model  # format 2: no datasets, so the merge records none
    assert merge([a, legacy]).datasets is None
