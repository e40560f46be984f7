"""The artifact: round trips keep the id, and every corrupted field is rejected at load."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_testing import decode, leaf_forest, make_data, reseal

from consensus.crypto import sha256
from ml import artifact
from ml.drift import DRIFT_BINS, MAX_BIN_COUNT
from ml.errors import ArtifactError
from ml.forest import NODE_DTYPES, TREE_SIZES_DTYPE, HyperParameters, SubForest
from ml.limits import (
    MAX_ANCHORS,
    MAX_ARTIFACT_BYTES,
    MAX_CONTRIBUTORS,
    MAX_DATASET_ROWS,
    MAX_FEATURE_NAME_BYTES,
    MAX_FEATURES,
    MAX_LIBRARIES,
    MAX_SUBSAMPLE,
    MAX_TEXT_BYTES,
    MAX_TREES,
    MIN_SUBSAMPLE,
)
from ml.score import Scorer
from ml.train import TrainParams, train

REC = artifact.RECORD_FIELDS


def test_round_trip_keeps_the_id(small) -> None:
    model = small.model
    again = artifact.load(model.data)
    assert again.model_id == model.model_id == sha256(model.data)
    rebuilt = artifact.encode_model(
        again.feature_names, again.offset, again.contributors, again.training_bins, again.datasets
    )
    assert rebuilt == model.data
    assert artifact.load(model.data, expected_id=model.model_id).model_id == model.model_id


def test_training_is_reproducible_to_the_byte() -> None:
    x = make_data(1, n=150, d=3)
    params = TrainParams(10, "auto", 0.1, 1.0, 42)
    assert train(x, None, params).model.data == train(x, None, params).model.data
    other = TrainParams(10, "auto", 0.1, 1.0, 43)
    assert train(x, None, params).model.model_id != train(x, None, other).model.model_id


def test_artifact_records_versions_hyper_parameters_and_anchors() -> None:
    import sklearn

    anchor = sha256(b"dataset")
    result = train(make_data(2, n=100, d=2), ["p", "q"], TrainParams(7, 32, 0.1, 1.0, 3), [anchor])
    sub = result.model.contributors[0]
    assert dict(sub.libraries)["scikit-learn"] == sklearn.__version__
    assert dict(sub.libraries)["numpy"] == np.__version__
    assert sub.anchors == (anchor,)
    assert (sub.hyper.n_estimators, sub.hyper.max_samples, sub.hyper.contamination) == (
        7,
        "32",
        "0.1",
    )
    assert sub.hyper.random_state == 3 and sub.subsample == 32
    assert result.model.offset == result.estimator.offset_
    assert result.model.feature_names == ("p", "q")


def test_wrong_expected_id_is_refused(small) -> None:
    with pytest.raises(ArtifactError, match="expected"):
        artifact.load(small.model.data, expected_id=bytes(32))


# ----------------------------------------------------------- one corrupted field at a time


def _first(kind: str, record: list) -> int:
    """Index of the first leaf / root / non-root internal node of the record's first tree."""
    left = np.frombuffer(record[REC.index("left")], dtype=NODE_DTYPES["left"])
    if kind == "leaf":
        return int(np.flatnonzero(left == -1)[0])
    if kind == "root":
        return 0
    return int(np.flatnonzero(left[1:] != -1)[0]) + 1


def _blob(name: str, kind: str, change):
    def mutate(top: list) -> None:
        record = top[5][0]
        i = REC.index(name)
        arr = np.frombuffer(record[i], dtype=NODE_DTYPES.get(name, TREE_SIZES_DTYPE)).copy()
        change(arr, _first(kind, record), record)
        record[i] = arr.tobytes()

    return mutate


def _set(path: tuple, value):
    def mutate(top: list) -> None:
        target = top
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _grandchild(arr, i, record) -> None:
    left = np.frombuffer(record[REC.index("left")], dtype=NODE_DTYPES["left"])
    arr[0] = left[left[0]] if left[left[0]] != -1 else arr[0] + 1


R0 = (5, 0)
CORRUPTIONS = {
    "magic": (_set((0,), "other-model"), {"magic"}),
    "version": (_set((1,), 99), {"format_version"}),
    "version-old": (_set((1,), 2), {"artifact"}),  # version 2 has one field fewer
    "datasets-type": (_set((7,), "x"), {"datasets"}),
    "datasets-empty": (_set((7,), []), {"datasets"}),
    "datasets-extra": (lambda top: top[7].append([b"\xff" * 32, 5]), {"datasets"}),
    "datasets-other": (_set((7, 0, 0), b"\xee" * 32), {"datasets"}),
    "datasets-digest-short": (_set((7, 0, 0), b"x"), {"datasets[0].digest"}),
    "datasets-rows-zero": (_set((7, 0, 1), 0), {"datasets[0].rows"}),
    "datasets-rows-huge": (_set((7, 0, 1), MAX_DATASET_ROWS + 1), {"datasets[0].rows"}),
    "datasets-rows-float": (_set((7, 0, 1), 200.0), {"datasets[0].rows"}),
    "datasets-entry-short": (_set((7, 0), [b"\x00" * 32]), {"datasets[0]"}),
    "training_bins-short": (lambda top: top[6].pop(), {"training_bins"}),
    "training_bins-negative": (_set((6, 0), -1), {"training_bins"}),
    "training_bins-float": (_set((6, 0), 1.0), {"training_bins"}),
    "training_bins-empty": (_set((6,), [0] * DRIFT_BINS), {"training_bins"}),
    "training_bins-huge": (_set((6, 0), MAX_BIN_COUNT + 1), {"training_bins"}),
    "version-type": (_set((1,), "1"), {"format_version"}),
    "names-empty": (_set((2,), []), {"feature_names"}),
    "names-type": (_set((2,), "a,b,c"), {"feature_names"}),
    "name-empty": (_set((2, 0), ""), {"feature_names[0]"}),
    "name-type": (_set((2, 0), 5), {"feature_names[0]"}),
    "name-space": (_set((2, 0), " a"), {"feature_names[0]"}),
    "name-control": (_set((2, 0), "a\n"), {"feature_names[0]"}),
    "name-dup": (_set((2, 1), "a"), {"feature_names[1]"}),
    "name-too-long": (_set((2, 0), "x" * (MAX_FEATURE_NAME_BYTES + 1)), {"feature_names[0]"}),
    "names-drop": (lambda top: top[2].pop(), {"contributors[0].feature"}),
    "offset-type": (_set((3,), 0), {"offset"}),
    "offset-value": (_set((3,), -0.7), {"threshold"}),
    "threshold-plus": (lambda top: top.__setitem__(4, top[4] + 1), {"threshold"}),
    "threshold-neg": (_set((4,), -1), {"threshold"}),
    "threshold-type": (_set((4,), 1.5), {"threshold"}),
    "contributors-empty": (_set((5,), []), {"contributors"}),
    "contributors-type": (_set((5,), b""), {"contributors"}),
    "contributors-dup": (lambda top: top[5].append(copy.deepcopy(top[5][0])), {"contributors[1]"}),
    "record-short": (lambda top: top[5][0].pop(), {"contributors[0]"}),
    "record-type": (_set(R0, "x"), {"contributors[0]"}),
    "hyper-short": (lambda top: top[5][0][1].pop(), {"contributors[0].hyper"}),
    "n-estimators": (_set((*R0, 1, 0), 6), {"contributors[0].hyper.n_estimators"}),
    "n-estimators-zero": (_set((*R0, 1, 0), 0), {"contributors[0].hyper.n_estimators"}),
    "max-samples-type": (_set((*R0, 1, 1), 16), {"contributors[0].hyper.max_samples"}),
    "max-features-long": (
        _set((*R0, 1, 2), "9" * (MAX_TEXT_BYTES + 1)),
        {"contributors[0].hyper.max_features"},
    ),
    "contamination-empty": (_set((*R0, 1, 3), ""), {"contributors[0].hyper.contamination"}),
    "random-state-neg": (_set((*R0, 1, 4), -1), {"contributors[0].hyper.random_state"}),
    "random-state-type": (_set((*R0, 1, 4), "11"), {"contributors[0].hyper.random_state"}),
    "libraries-type": (_set((*R0, 2), "numpy"), {"contributors[0].libraries"}),
    "library-pair": (_set((*R0, 2, 0), ["numpy"]), {"contributors[0].libraries[0]"}),
    "library-order": (lambda top: top[5][0][2].reverse(), {"contributors[0].libraries[1]"}),
    "library-version-type": (_set((*R0, 2, 0, 1), 2), {"contributors[0].libraries[0]"}),
    "anchor-short": (_set((*R0, 3), [b"x" * 31]), {"contributors[0].anchors[0]"}),
    "anchor-order": (_set((*R0, 3), [b"b" * 32, b"a" * 32]), {"contributors[0].anchors[1]"}),
    "anchor-dup": (_set((*R0, 3), [b"a" * 32, b"a" * 32]), {"contributors[0].anchors[1]"}),
    "subsample-small": (_set((*R0, 4), 1), {"contributors[0].subsample"}),
    "subsample-other": (_set((*R0, 4), 17), {"contributors[0].n_samples"}),
    "subsample-type": (_set((*R0, 4), 16.0), {"contributors[0].subsample"}),
    "training-offset-type": (_set((*R0, 5), 1), {"contributors[0].training_offset"}),
    "sizes-odd": (_set((*R0, 6), b"\x01\x00\x00"), {"contributors[0].tree_sizes"}),
    "sizes-zero": (_blob("tree_sizes", "root", lambda a, i, r: a.__setitem__(0, 0)), None),
    "sizes-shift": (
        _blob(
            "tree_sizes",
            "root",
            lambda a, i, r: (a.__setitem__(0, a[0] - 1), a.__setitem__(1, a[1] + 1)),
        ),
        None,
    ),
    "sizes-huge": (_blob("tree_sizes", "root", lambda a, i, r: a.__setitem__(0, 99)), None),
    "left-self": (_blob("left", "root", lambda a, i, r: a.__setitem__(i, i)), {".left"}),
    "left-out": (_blob("left", "root", lambda a, i, r: a.__setitem__(i, 10_000)), {".left"}),
    "left-leaf": (
        _blob("left", "root", lambda a, i, r: a.__setitem__(i, -1)),
        {".right", ".feature"},
    ),
    "left-on-leaf": (_blob("left", "leaf", lambda a, i, r: a.__setitem__(i, i + 1)), {".right"}),
    "left-skip": (_blob("left", "root", _grandchild), {".children"}),
    "right-self": (_blob("right", "inner", lambda a, i, r: a.__setitem__(i, i)), {".right"}),
    "right-neg": (_blob("right", "root", lambda a, i, r: a.__setitem__(i, -5)), {".right"}),
    "right-to-left": (
        _blob("right", "root", lambda a, i, r: a.__setitem__(i, a[i] - 1)),
        {".children", ".right", ".n_samples"},
    ),
    "feature-range": (_blob("feature", "root", lambda a, i, r: a.__setitem__(i, 3)), {".feature"}),
    "feature-neg": (_blob("feature", "inner", lambda a, i, r: a.__setitem__(i, -2)), {".feature"}),
    "feature-on-leaf": (
        _blob("feature", "leaf", lambda a, i, r: a.__setitem__(i, 0)),
        {".feature"},
    ),
    "threshold-nan": (_blob("threshold", "root", lambda a, i, r: a.__setitem__(i, np.nan)), None),
    "threshold-inf": (_blob("threshold", "inner", lambda a, i, r: a.__setitem__(i, np.inf)), None),
    "threshold-leaf": (_blob("threshold", "leaf", lambda a, i, r: a.__setitem__(i, 1.0)), None),
    "threshold-neg-zero": (
        _blob("threshold", "leaf", lambda a, i, r: a.__setitem__(i, -0.0)),
        None,
    ),
    "samples-root": (_blob("n_samples", "root", lambda a, i, r: a.__setitem__(i, a[i] + 1)), None),
    "samples-leaf-zero": (_blob("n_samples", "leaf", lambda a, i, r: a.__setitem__(i, 0)), None),
    "samples-leaf-plus": (
        _blob("n_samples", "leaf", lambda a, i, r: a.__setitem__(i, a[i] + 1)),
        None,
    ),
    "samples-inner": (
        _blob("n_samples", "inner", lambda a, i, r: a.__setitem__(i, a[i] - 1)),
        None,
    ),
    "value-inner": (_blob("value", "root", lambda a, i, r: a.__setitem__(i, 1)), None),
    "value-leaf-plus": (_blob("value", "leaf", lambda a, i, r: a.__setitem__(i, a[i] + 1)), None),
    "value-leaf-minus": (_blob("value", "leaf", lambda a, i, r: a.__setitem__(i, a[i] - 1)), None),
    "checksum-flip": (lambda top: top.__setitem__(8, bytes(32)), {"checksum"}),
    "checksum-short": (lambda top: top.__setitem__(8, b"x"), {"checksum"}),
    "digest-flip": (_set((*R0, 0), bytes(32)), {"contributors[0].digest"}),
    "digest-short": (_set((*R0, 0), b"abc"), {"contributors[0].digest"}),
}
# Blob corruptions whose expected field is the blob itself.
for _name, _field in (
    ("sizes-zero", "tree_sizes"),
    ("sizes-shift", None),
    ("sizes-huge", "tree_sizes"),
    ("threshold-nan", "threshold"),
    ("threshold-inf", "threshold"),
    ("threshold-leaf", "threshold"),
    ("threshold-neg-zero", "threshold"),
    ("samples-root", "n_samples"),
    ("samples-leaf-zero", "n_samples"),
    ("samples-leaf-plus", "n_samples"),
    ("samples-inner", "n_samples"),
    ("value-inner", "value"),
    ("value-leaf-plus", "value"),
    ("value-leaf-minus", "value"),
):
    _fields = {f".{_field}"} if _field else {".left", ".right", ".children", ".n_samples"}
    CORRUPTIONS[_name] = (CORRUPTIONS[_name][0], _fields)
for _node_field in NODE_DTYPES:
    CORRUPTIONS[f"{_node_field}-truncated"] = (
        (lambda f: lambda top: top[5][0].__setitem__(REC.index(f), top[5][0][REC.index(f)][:-1]))(
            _node_field
        ),
        {f".{_node_field}"},
    )
    CORRUPTIONS[f"{_node_field}-type"] = (
        _set((*R0, REC.index(_node_field)), []),
        {f".{_node_field}"},
    )


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_every_corrupted_field_is_rejected(small, name) -> None:
    mutate, fields = CORRUPTIONS[name]
    top = decode(small.model.data)
    mutate(top)
    data = reseal(
        top, digests=not name.startswith("digest"), checksum=not name.startswith("checksum")
    )
    assert data != small.model.data
    with pytest.raises(ArtifactError) as info:
        artifact.load(data)
    field = info.value.field
    assert any(field == f or field.endswith(f) for f in fields), (field, str(info.value))


def test_a_version_1_artifact_still_loads_and_scores_the_same(small) -> None:
    """Artifacts written before the drift baseline existed load, with no training bins."""
    top = decode(small.model.data)
    old = reseal([top[0], 1, *top[2:6], None])
    model = artifact.load(old)
    assert model.training_bins is None and model.threshold == small.model.threshold
    rows = np.random.default_rng(5).normal(size=(50, 3))
    assert (
        Scorer(model).score_batch(rows).path_sums == Scorer(small.model).score_batch(rows).path_sums
    ).all()
    assert artifact.encode_model(model.feature_names, model.offset, model.contributors) == old


def test_a_version_2_artifact_still_loads_without_datasets(small) -> None:
    top = decode(small.model.data)
    old = reseal([top[0], 2, *top[2:7], None])
    model = artifact.load(old)
    assert model.datasets is None and model.training_bins == small.model.training_bins
    assert (
        artifact.encode_model(
            model.feature_names, model.offset, model.contributors, model.training_bins
        )
        == old
    )


def test_datasets_round_trip_and_name_the_anchors(small) -> None:
    [(digest, rows)] = small.model.datasets
    assert rows == 200 and small.model.contributors[0].anchors == (digest,)
    again = artifact.build_model(
        small.model.feature_names,
        small.model.offset,
        small.model.contributors,
        small.model.training_bins,
        [(digest, rows)],
    )
    assert again.data == small.model.data
    with pytest.raises(ValueError, match="training bins"):
        artifact.encode_model(
            small.model.feature_names, small.model.offset, small.model.contributors, None, []
        )


def test_a_trained_model_counts_every_training_row_in_its_bins(small) -> None:
    bins = small.model.training_bins
    assert bins is not None and len(bins) == DRIFT_BINS
    assert sum(bins) == 200  # the rows of the fixture's training data


def test_every_field_of_the_schema_has_a_corruption_case() -> None:
    covered = " ".join(CORRUPTIONS)
    for top_field in (
        "magic",
        "version",
        "names",
        "offset",
        "threshold",
        "contributors",
        "training_bins",
        "datasets",
        "checksum",
    ):
        assert top_field in covered
    for record_field in (
        "digest",
        "hyper",
        "libraries",
        "anchor",
        "subsample",
        "training-offset",
        "sizes",
    ):
        assert record_field in covered
    for node_field in NODE_DTYPES:
        assert node_field.replace("n_samples", "samples") in covered


def test_every_single_byte_flip_is_rejected(small) -> None:
    data = small.model.data
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x41
        with pytest.raises(ArtifactError):
            artifact.load(bytes(damaged))


def test_truncated_and_extended_bytes_are_rejected(small) -> None:
    data = small.model.data
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        with pytest.raises(ArtifactError, match="artifact"):
            artifact.load(data[:cut])
    with pytest.raises(ArtifactError, match="trailing"):
        artifact.load(data + b"\x00")
    with pytest.raises(ArtifactError):
        artifact.load(bytearray(data))


def test_tree_deeper_than_scikit_learn_allows_is_rejected() -> None:
    """A chain of four samples has depth 3; scikit-learn caps subsample 4 at depth 2."""
    from ml.fixed import leaf_value

    left = [1, -1, 3, -1, 5, -1, -1]
    right = [2, -1, 4, -1, 6, -1, -1]
    n_samples = [4, 1, 3, 1, 2, 1, 1]
    depth = [0, 1, 1, 2, 2, 3, 3]
    values = [0 if left[i] != -1 else leaf_value(depth[i], n_samples[i], 4) for i in range(7)]
    nodes = {
        "left": left,
        "right": right,
        "feature": [0 if x != -1 else -1 for x in left],
        "threshold": [0.5 if x != -1 else 0.0 for x in left],
        "n_samples": n_samples,
        "value": values,
    }
    sub = SubForest(
        HyperParameters(1, "4", "1.0", "auto", 0),
        (),
        (),
        4,
        -0.5,
        np.array([7], dtype=TREE_SIZES_DTYPE),
        {k: np.array(v, dtype=NODE_DTYPES[k]) for k, v in nodes.items()},
    )
    with pytest.raises(ArtifactError, match="depth") as info:
        artifact.load(artifact.encode_model(["f"], -0.5, [sub]))
    assert info.value.field == "contributors[0].children"


# ----------------------------------------------------------- limits at their edges


def _with_names(n: int) -> list[str]:
    return [f"f{i}" for i in range(n)]


def test_max_trees_edge() -> None:
    model = artifact.build_model(["f"], -0.5, [leaf_forest(MAX_TREES, 2)])
    assert model.n_trees == MAX_TREES
    with pytest.raises(ArtifactError, match=str(MAX_TREES + 1)):
        artifact.load(artifact.encode_model(["f"], -0.5, [leaf_forest(MAX_TREES + 1, 2)]))
    split = [leaf_forest(MAX_TREES - 1, 2), leaf_forest(1, 3)]
    assert artifact.build_model(["f"], -0.5, split).n_trees == MAX_TREES
    with pytest.raises(ArtifactError, match="MAX_TREES"):
        artifact.load(artifact.encode_model(["f"], -0.5, [*split, leaf_forest(1, 4)]))


def test_max_features_and_name_length_edges() -> None:
    artifact.build_model(_with_names(MAX_FEATURES), -0.5, [leaf_forest(1, 2)])
    with pytest.raises(ArtifactError, match="feature_names"):
        artifact.load(
            artifact.encode_model(_with_names(MAX_FEATURES + 1), -0.5, [leaf_forest(1, 2)])
        )
    artifact.build_model(["é" * (MAX_FEATURE_NAME_BYTES // 2)], -0.5, [leaf_forest(1, 2)])
    with pytest.raises(ArtifactError, match=r"feature_names\[0\]"):
        artifact.load(
            artifact.encode_model(["x" * (MAX_FEATURE_NAME_BYTES + 1)], -0.5, [leaf_forest(1, 2)])
        )


def test_subsample_edges() -> None:
    for good in (MIN_SUBSAMPLE, MAX_SUBSAMPLE):
        artifact.build_model(["f"], -0.5, [leaf_forest(1, good)])
    for bad in (MIN_SUBSAMPLE - 1, MAX_SUBSAMPLE + 1):
        with pytest.raises(ArtifactError, match="subsample"):
            artifact.load(artifact.encode_model(["f"], -0.5, [leaf_forest(1, bad)]))


def test_contributor_count_edge() -> None:
    subs = [leaf_forest(1, 2 + i) for i in range(MAX_CONTRIBUTORS + 1)]
    assert artifact.build_model(["f"], -0.5, subs[:MAX_CONTRIBUTORS]).n_trees == MAX_CONTRIBUTORS
    with pytest.raises(ArtifactError, match="contributors"):
        artifact.load(artifact.encode_model(["f"], -0.5, subs))


def test_anchor_count_edge() -> None:
    anchors = tuple(sorted(sha256(bytes([i, j])) for i in range(2) for j in range(200)))
    artifact.build_model(["f"], -0.5, [leaf_forest(1, 2, anchors[:MAX_ANCHORS])])
    with pytest.raises(ArtifactError, match="anchors"):
        artifact.load(
            artifact.encode_model(["f"], -0.5, [leaf_forest(1, 2, anchors[: MAX_ANCHORS + 1])])
        )


def test_library_count_and_text_edges(small) -> None:
    top = decode(small.model.data)
    top[5][0][2] = [[f"lib{i:02d}", "v" * MAX_TEXT_BYTES] for i in range(MAX_LIBRARIES)]
    artifact.load(reseal(top))
    top[5][0][2].append(["lib99", "1"])
    with pytest.raises(ArtifactError, match="libraries"):
        artifact.load(reseal(top))


def test_default_size_limit_refuses_one_byte_more() -> None:
    with pytest.raises(ArtifactError, match="exceeds"):
        artifact.load(bytes(MAX_ARTIFACT_BYTES + 1))


def test_size_limit_edge(small) -> None:
    data = small.model.data
    assert artifact.load(data, max_bytes=len(data)).model_id == small.model.model_id
    with pytest.raises(ArtifactError, match="exceeds"):
        artifact.load(data, max_bytes=len(data) - 1)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_damage_is_refused_or_a_valid_model(small, data) -> None:
    """Replace, insert or delete random bytes: always ArtifactError, never another exception."""
    raw = bytearray(small.model.data)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "replace":
            raw[where] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw.insert(where, data.draw(st.integers(0, 255)))
        else:
            del raw[where]
    if bytes(raw) == small.model.data:
        return
    with pytest.raises(ArtifactError):
        artifact.load(bytes(raw))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_resealed_node_damage_is_refused_or_still_a_scorable_model(small, data) -> None:
    """Past the checksum and digests: any node value either fails validation or is a real model."""
    top = decode(small.model.data)
    record = top[5][0]
    name = data.draw(st.sampled_from(sorted(NODE_DTYPES)))
    arr = np.frombuffer(record[REC.index(name)], dtype=NODE_DTYPES[name]).copy()
    index = data.draw(st.integers(0, len(arr) - 1))
    if name == "threshold":
        arr[index] = data.draw(st.floats(allow_nan=True, allow_infinity=True))
    else:
        info = np.iinfo(arr.dtype)
        arr[index] = data.draw(
            st.one_of(st.integers(-3, 300), st.integers(int(info.min), int(info.max))).filter(
                lambda v: info.min <= v <= info.max
            )
        )
    record[REC.index(name)] = arr.tobytes()
    try:
        model = artifact.load(reseal(top))
    except ArtifactError:
        return
    result = Scorer(model).score_batch(make_data(3, n=30, d=3, outliers=3))
    assert (result.path_sums >= 0).all()


def test_dataset_rows_at_their_bound_load(small) -> None:
    top = decode(small.model.data)
    top[7][0][1] = MAX_DATASET_ROWS
    assert artifact.load(reseal(top)).datasets[0][1] == MAX_DATASET_ROWS
