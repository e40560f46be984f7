"""The canonical model artifact: encoding, model id and validating load.

An artifact is one canonical msgpack array (``consensus.codec``)::

    [MAGIC, FORMAT_VERSION, feature_names, offset, threshold, contributors, training_bins,
     datasets, checksum]

* ``feature_names``: the schema, a list of distinct non-empty strings;
* ``offset``: scikit-learn's ``offset_`` (``decision_function = score - offset``),
  kept for presentation;
* ``threshold``: the integer K of ``ml.fixed.threshold_fixed(offset, T)``; a row
  is an outlier iff its path sum is below K (re-derived and compared at load);
* ``contributors``: sub-forest records sorted by their digest (below);
* ``training_bins``: the training rows' scores counted in the fixed bins of
  ``ml.drift`` (``DRIFT_BINS`` integers), the distribution drift is measured
  against. It is the trainer's claim (the rows stay off chain); for a merged
  model it is the sum of the inputs' counts, each under its own forest;
* ``datasets``: ``[digest, rows]`` for every training dataset, sorted by
  digest: the SHA-256 of the file (what an ``anchor`` transaction records) and
  how many of the training rows came from it. The digests are exactly the
  anchors of the sub-forests (checked at load); governance looks each one up
  on chain before a version is approved, and the rows are the trainer's
  contribution (raw data never leaves the trainer);
* ``checksum``: SHA-256 of the encoding of the fields before it, so any
  damaged byte is caught even before the structure is examined.

Older versions still load. Version 1 (no ``training_bins``) scores as before
and reports no drift (``Model.training_bins`` is None); versions 1 and 2 have
no ``datasets`` (``Model.datasets`` is None), so a chain that requires anchored
training data refuses to approve them.

A sub-forest record is::

    [digest, [n_estimators, max_samples, max_features, contamination, random_state],
     [[library, version], ...], [anchor, ...], subsample, training_offset,
     tree_sizes, left, right, feature, threshold, n_samples, value]

where the last seven are little-endian byte strings (``ml.forest.NODE_DTYPES``)
and ``digest = SHA-256(encode([SUBFOREST_DOMAIN, feature_names, record[1:]]))``.

The model id is the SHA-256 of the artifact bytes. ``load`` checks every
field: types, sizes, sortedness, digests, that each tree is a tree (children
after their parent and inside the tree, every node but the root has exactly
one parent, depth within scikit-learn's cap), leaf markers agree across the
arrays, features are in range, thresholds finite, sample counts add up, and
each leaf value equals its exact definition. Any failure raises
``ArtifactError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from consensus import codec
from consensus.crypto import sha256
from ml.drift import check_counts
from ml.errors import ArtifactError
from ml.fixed import leaf_value, threshold_fixed
from ml.forest import LEAF, NODE_DTYPES, TREE_SIZES_DTYPE, HyperParameters, Model, SubForest
from ml.limits import (
    DIGEST_BYTES,
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

MAGIC = "vigil-model"
FORMAT_VERSION = 3
"""The version this code writes; ``READABLE_VERSIONS`` lists what it loads."""
SUBFOREST_DOMAIN = "vigil/ml/subforest/v1"
TOP_FIELDS_V1 = ("magic", "format_version", "feature_names", "offset", "threshold", "contributors")
TOP_FIELDS_V2 = (*TOP_FIELDS_V1, "training_bins")
TOP_FIELDS = (*TOP_FIELDS_V2, "datasets")
FIELDS_OF_VERSION = {1: TOP_FIELDS_V1, 2: TOP_FIELDS_V2, 3: TOP_FIELDS}
READABLE_VERSIONS = tuple(FIELDS_OF_VERSION)
assert FORMAT_VERSION in READABLE_VERSIONS
HYPER_FIELDS = ("n_estimators", "max_samples", "max_features", "contamination", "random_state")
RECORD_FIELDS = (
    "digest",
    "hyper",
    "libraries",
    "anchors",
    "subsample",
    "training_offset",
    "tree_sizes",
    *NODE_DTYPES,
)


def max_depth_for(subsample: int) -> int:
    """scikit-learn's depth cap for a tree grown on ``subsample`` rows: ceil(log2(subsample))."""
    return (subsample - 1).bit_length()


def model_id(data: bytes) -> bytes:
    """The id of an artifact: SHA-256 of its bytes."""
    return sha256(data)


# ---------------------------------------------------------------- encoding


def _record_body(sub: SubForest) -> list:
    hyper = sub.hyper
    body = [
        [
            hyper.n_estimators,
            hyper.max_samples,
            hyper.max_features,
            hyper.contamination,
            hyper.random_state,
        ],
        [[name, version] for name, version in sub.libraries],
        list(sub.anchors),
        sub.subsample,
        float(sub.training_offset),
        np.ascontiguousarray(sub.tree_sizes, dtype=TREE_SIZES_DTYPE).tobytes(),
    ]
    for name, dtype in NODE_DTYPES.items():
        body.append(np.ascontiguousarray(sub.nodes[name], dtype=dtype).tobytes())
    return body


def subforest_digest(feature_names: Sequence[str], body: list) -> bytes:
    """Digest of a sub-forest record body (everything after the digest) under a schema."""
    return sha256(codec.encode([SUBFOREST_DOMAIN, list(feature_names), body], allow_float=True))


def seal(fields: list) -> bytes:
    """Encode the top-level fields and append their checksum (``load`` checks their number)."""
    checksum = sha256(codec.encode(fields, allow_float=True))
    return codec.encode([*fields, checksum], allow_float=True)


def encode_model(
    feature_names: Sequence[str],
    offset: float,
    contributors: Sequence[SubForest],
    training_bins: Sequence[int] | None = None,
    datasets: Sequence[tuple[bytes, int]] | None = None,
) -> bytes:
    """Canonical artifact bytes; contributors are ordered by digest so the order given is moot.

    Without ``training_bins`` the artifact is written in version 1 (no drift baseline);
    with them but without ``datasets``, in version 2 (no training datasets to check).
    """
    if datasets is not None and training_bins is None:
        raise ValueError("an artifact with datasets needs training bins (version 3)")
    names = list(feature_names)
    records = []
    for sub in contributors:
        body = _record_body(sub)
        records.append([subforest_digest(names, body), *body])
    records.sort(key=lambda r: r[0])
    n_trees = sum(sub.n_trees for sub in contributors)
    threshold = threshold_fixed(float(offset), n_trees) if n_trees else 0
    fields = [MAGIC, 1, names, float(offset), threshold, records]
    if training_bins is not None:
        fields = [MAGIC, 2, *fields[2:], list(training_bins)]
    if datasets is not None:
        rows = sorted([bytes(d), int(n)] for d, n in datasets)
        fields = [MAGIC, FORMAT_VERSION, *fields[2:], rows]
    return seal(fields)


def build_model(
    feature_names: Sequence[str],
    offset: float,
    contributors: Sequence[SubForest],
    training_bins: Sequence[int] | None = None,
    datasets: Sequence[tuple[bytes, int]] | None = None,
) -> Model:
    """Encode and then load (fully validate) a model: nothing unvalidated leaves this module."""
    return load(encode_model(feature_names, offset, contributors, training_bins, datasets))


# ---------------------------------------------------------------- validation helpers


def _fail(field: str, reason: str) -> ArtifactError:
    return ArtifactError(field, reason)


def _expect_list(value: object, field: str, length: int | None = None) -> list:
    if type(value) is not list:
        raise _fail(field, f"expected an array, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise _fail(field, f"expected {length} elements, got {len(value)}")
    return value


def _expect_int(value: object, field: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise _fail(field, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise _fail(field, f"{value} is outside {low}..{high}")
    return value


def _expect_float(value: object, field: str) -> float:
    if type(value) is not float:
        raise _fail(field, f"expected a float, got {type(value).__name__}")
    assert math.isfinite(value)
    return value


def _expect_text(value: object, field: str, max_bytes: int) -> str:
    if type(value) is not str:
        raise _fail(field, f"expected a string, got {type(value).__name__}")
    size = len(value.encode())
    if not 0 < size <= max_bytes:
        raise _fail(field, f"must be 1..{max_bytes} UTF-8 bytes, got {size}")
    if any(not ch.isprintable() for ch in value) or value != value.strip():
        raise _fail(field, "has control characters or surrounding whitespace")
    return value


def _expect_digest(value: object, field: str) -> bytes:
    if type(value) is not bytes or len(value) != DIGEST_BYTES:
        raise _fail(field, f"expected {DIGEST_BYTES} bytes")
    return value


def _expect_sorted_unique(values: Sequence, field: str) -> None:
    for i in range(1, len(values)):
        if not values[i - 1] < values[i]:
            raise _fail(f"{field}[{i}]", "entries must be strictly increasing (sorted, no repeats)")


def _expect_blob(value: object, field: str, dtype: np.dtype, count: int | None) -> np.ndarray:
    if type(value) is not bytes:
        raise _fail(field, f"expected bytes, got {type(value).__name__}")
    if len(value) % dtype.itemsize:
        raise _fail(field, f"length {len(value)} is not a multiple of {dtype.itemsize}")
    if count is not None and len(value) != count * dtype.itemsize:
        raise _fail(field, f"expected {count} entries, got {len(value) // dtype.itemsize}")
    return np.frombuffer(value, dtype=dtype)


def validate_feature_names(value: object, field: str = "feature_names") -> tuple[str, ...]:
    """A schema: 1..MAX_FEATURES distinct, printable, non-empty names."""
    names = _expect_list(value, field)
    if not 1 <= len(names) <= MAX_FEATURES:
        raise _fail(field, f"must have 1..{MAX_FEATURES} names, got {len(names)}")
    seen: set[str] = set()
    for i, name in enumerate(names):
        _expect_text(name, f"{field}[{i}]", MAX_FEATURE_NAME_BYTES)
        if name in seen:
            raise _fail(f"{field}[{i}]", f"duplicate feature name {name!r}")
        seen.add(name)
    return tuple(names)


# ---------------------------------------------------------------- tree structure


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_trees(
    field: str, sizes: np.ndarray, nodes: dict[str, np.ndarray], n_features: int, subsample: int
) -> None:
    """Check that the node arrays describe ``len(sizes)`` valid isolation trees."""
    n = int(sizes.sum())
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    tree_of = np.repeat(np.arange(len(sizes)), sizes)
    base = starts[tree_of]
    local = np.arange(n, dtype=np.int64) - base
    size_of = sizes[tree_of]
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    feature = nodes["feature"].astype(np.int64)
    threshold = nodes["threshold"]
    n_samples = nodes["n_samples"].astype(np.int64)
    value = nodes["value"].astype(np.int64)

    def where(i: int) -> str:
        return f"tree {int(tree_of[i])} node {int(local[i])}"

    leaf = left == LEAF
    internal = ~leaf
    for name, arr in (("right", right), ("feature", feature)):
        bad = leaf != (arr == LEAF)
        if bad.any():
            i = _first(bad)
            raise _fail(f"{field}.{name}", f"{where(i)}: leaf marker disagrees with left")
    for name, child in (("left", left), ("right", right)):
        bad = internal & ((child <= local) | (child >= size_of))
        if bad.any():
            i = _first(bad)
            raise _fail(
                f"{field}.{name}",
                f"{where(i)}: child {int(child[i])} must be after the node and inside its "
                f"tree of {int(size_of[i])} nodes",
            )
    bad = internal & ((feature < 0) | (feature >= n_features))
    if bad.any():
        i = _first(bad)
        raise _fail(
            f"{field}.feature", f"{where(i)}: feature {int(feature[i])} outside 0..{n_features - 1}"
        )
    bad = internal & ~np.isfinite(threshold)
    if bad.any():
        raise _fail(f"{field}.threshold", f"{where(_first(bad))}: threshold is not finite")
    bad = leaf & (threshold.view(np.uint64) != 0)
    if bad.any():
        raise _fail(f"{field}.threshold", f"{where(_first(bad))}: a leaf's threshold must be 0.0")
    children = np.concatenate([left[internal], right[internal]]) + np.concatenate(
        [base[internal], base[internal]]
    )
    parents = np.bincount(children, minlength=n)
    bad = parents != (local != 0)
    if bad.any():
        i = _first(bad)
        raise _fail(
            f"{field}.children",
            f"{where(i)} has {int(parents[i])} parents (the root needs 0, every other node 1)",
        )
    # Children come after their parent and every non-root node has one parent,
    # so each tree is a tree rooted at its first node; walk it level by level.
    depth = np.full(n, -1, dtype=np.int64)
    depth[starts] = 0
    frontier = starts
    cap = max_depth_for(subsample)
    for level in range(cap + 1):
        inner = frontier[internal[frontier]]
        if inner.size == 0:
            break
        if level == cap:
            raise _fail(
                f"{field}.children",
                f"{where(int(inner[0]))} is at depth {cap} but not a leaf (cap for "
                f"subsample {subsample})",
            )
        frontier = np.concatenate([left[inner] + base[inner], right[inner] + base[inner]])
        depth[frontier] = level + 1
    assert (depth >= 0).all()

    roots_bad = n_samples[starts] != subsample
    if roots_bad.any():
        i = int(starts[_first(roots_bad)])
        raise _fail(f"{field}.n_samples", f"{where(i)}: root holds {n_samples[i]} != {subsample}")
    bad = leaf & (n_samples < 1)
    if bad.any():
        raise _fail(f"{field}.n_samples", f"{where(_first(bad))}: a leaf holds no sample")
    sums = np.zeros(n, dtype=np.int64)
    sums[internal] = n_samples[left[internal] + base[internal]]
    sums[internal] += n_samples[right[internal] + base[internal]]
    bad = internal & (sums != n_samples)
    if bad.any():
        i = _first(bad)
        raise _fail(
            f"{field}.n_samples", f"{where(i)}: {n_samples[i]} != sum of its children {sums[i]}"
        )

    bad = internal & (value != 0)
    if bad.any():
        raise _fail(f"{field}.value", f"{where(_first(bad))}: internal node with a value")
    leaves = np.flatnonzero(leaf)
    keys = np.unique(np.stack([depth[leaves], n_samples[leaves]], axis=1), axis=0)
    expected = np.zeros(n, dtype=np.int64)
    table = {(int(d), int(k)): leaf_value(int(d), int(k), subsample) for d, k in keys}
    expected[leaves] = [
        table[(int(d), int(k))] for d, k in zip(depth[leaves], n_samples[leaves], strict=True)
    ]
    bad = leaf & (value != expected)
    if bad.any():
        i = _first(bad)
        raise _fail(f"{field}.value", f"{where(i)}: {value[i]} != exact leaf value {expected[i]}")


# ---------------------------------------------------------------- records


def _load_record(
    record: object, field: str, feature_names: tuple[str, ...], trees_left: int
) -> tuple[bytes, SubForest]:
    fields = _expect_list(record, field, len(RECORD_FIELDS))
    digest = _expect_digest(fields[0], f"{field}.digest")
    if subforest_digest(feature_names, fields[1:]) != digest:
        raise _fail(f"{field}.digest", "does not match the sub-forest it names")

    raw_hyper = _expect_list(fields[1], f"{field}.hyper", len(HYPER_FIELDS))
    hf = f"{field}.hyper"
    n_estimators = _expect_int(raw_hyper[0], f"{hf}.n_estimators", 1, MAX_TREES)
    texts = [
        _expect_text(raw_hyper[i], f"{hf}.{HYPER_FIELDS[i]}", MAX_TEXT_BYTES) for i in (1, 2, 3)
    ]
    random_state = raw_hyper[4]
    if random_state is not None:
        random_state = _expect_int(random_state, f"{hf}.random_state", 0, 2**32 - 1)
    hyper = HyperParameters(n_estimators, texts[0], texts[1], texts[2], random_state)

    raw_libs = _expect_list(fields[2], f"{field}.libraries")
    if len(raw_libs) > MAX_LIBRARIES:
        raise _fail(f"{field}.libraries", f"more than {MAX_LIBRARIES} entries")
    libraries = []
    for i, pair in enumerate(raw_libs):
        lf = f"{field}.libraries[{i}]"
        name, version = _expect_list(pair, lf, 2)
        libraries.append(
            (_expect_text(name, lf, MAX_TEXT_BYTES), _expect_text(version, lf, MAX_TEXT_BYTES))
        )
    _expect_sorted_unique([name for name, _ in libraries], f"{field}.libraries")

    raw_anchors = _expect_list(fields[3], f"{field}.anchors")
    if len(raw_anchors) > MAX_ANCHORS:
        raise _fail(f"{field}.anchors", f"more than {MAX_ANCHORS} entries")
    anchors = tuple(_expect_digest(a, f"{field}.anchors[{i}]") for i, a in enumerate(raw_anchors))
    _expect_sorted_unique(anchors, f"{field}.anchors")

    subsample = _expect_int(fields[4], f"{field}.subsample", MIN_SUBSAMPLE, MAX_SUBSAMPLE)
    training_offset = _expect_float(fields[5], f"{field}.training_offset")

    sizes = _expect_blob(fields[6], f"{field}.tree_sizes", TREE_SIZES_DTYPE, None)
    if not 1 <= len(sizes) <= trees_left:
        raise _fail(
            f"{field}.tree_sizes", f"{len(sizes)} trees; allowed 1..{trees_left} (MAX_TREES)"
        )
    if len(sizes) != n_estimators:
        raise _fail(f"{hf}.n_estimators", f"{n_estimators} but the sub-forest has {len(sizes)}")
    sizes = sizes.astype(np.int64)
    bad = (sizes < 1) | (sizes > 2 * subsample - 1)
    if bad.any():
        raise _fail(
            f"{field}.tree_sizes",
            f"tree {_first(bad)} has {sizes[_first(bad)]} nodes; allowed 1..{2 * subsample - 1}",
        )
    count = int(sizes.sum())
    nodes = {}
    for i, (name, dtype) in enumerate(NODE_DTYPES.items()):
        nodes[name] = _expect_blob(fields[7 + i], f"{field}.{name}", dtype, count)
    _check_trees(field, sizes, nodes, len(feature_names), subsample)
    sub = SubForest(
        hyper=hyper,
        libraries=tuple(libraries),
        anchors=anchors,
        subsample=subsample,
        training_offset=training_offset,
        tree_sizes=sizes.astype(TREE_SIZES_DTYPE),
        nodes=nodes,
    )
    return digest, sub


# ---------------------------------------------------------------- load


def load(
    data: bytes, *, expected_id: bytes | None = None, max_bytes: int = MAX_ARTIFACT_BYTES
) -> Model:
    """Decode and validate an artifact; raise ArtifactError naming the first bad field.

    ``expected_id`` (a model id fetched from the chain) is compared with the
    bytes' SHA-256 before anything else is looked at.
    """
    if type(data) is not bytes:
        raise _fail("artifact", f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise _fail("artifact", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    digest = model_id(data)
    if expected_id is not None and digest != expected_id:
        raise _fail("artifact", f"id {digest.hex()} != expected {expected_id.hex()}")
    try:
        top = codec.decode(data, max_size=max_bytes, allow_float=True)
    except codec.CodecError as exc:
        raise _fail("artifact", f"not a canonical model artifact ({exc})") from None
    top = _expect_list(top, "artifact")
    if len(top) < 2 or top[0] != MAGIC:
        raise _fail("magic", f"expected {MAGIC!r}; not a Vigil model artifact")
    if type(top[1]) is not int or top[1] not in FIELDS_OF_VERSION:
        raise _fail(
            "format_version", f"unsupported version {top[1]!r} (readable: {READABLE_VERSIONS})"
        )
    n_fields = len(FIELDS_OF_VERSION[top[1]])
    top = _expect_list(top, "artifact", n_fields + 1)
    checksum = _expect_digest(top[n_fields], "checksum")
    if sha256(codec.encode(top[:n_fields], allow_float=True)) != checksum:
        raise _fail("checksum", "does not match the content: the artifact is damaged")
    training_bins = None
    if top[1] >= 2:
        counts = check_counts(top[6])
        if isinstance(counts, str):
            raise _fail("training_bins", counts)
        training_bins = tuple(counts)

    feature_names = validate_feature_names(top[2])
    offset = _expect_float(top[3], "offset")
    records = _expect_list(top[5], "contributors")
    if not 1 <= len(records) <= MAX_CONTRIBUTORS:
        raise _fail("contributors", f"must have 1..{MAX_CONTRIBUTORS} entries, got {len(records)}")
    digests: list[bytes] = []
    contributors: list[SubForest] = []
    trees = 0
    for i, record in enumerate(records):
        d, sub = _load_record(record, f"contributors[{i}]", feature_names, MAX_TREES - trees)
        digests.append(d)
        contributors.append(sub)
        trees += sub.n_trees
    _expect_sorted_unique(digests, "contributors")
    threshold = _expect_int(top[4], "threshold", 0, 2**63 - 1)
    if threshold != threshold_fixed(offset, trees):
        raise _fail(
            "threshold", f"{threshold} != {threshold_fixed(offset, trees)} derived from offset"
        )
    datasets = None
    if top[1] >= 3:
        datasets = _load_datasets(top[7], {a for sub in contributors for a in sub.anchors})
    return Model(
        feature_names=feature_names,
        offset=offset,
        threshold=threshold,
        contributors=tuple(contributors),
        digests=tuple(digests),
        data=data,
        model_id=digest,
        training_bins=training_bins,
        datasets=datasets,
    )


def _load_datasets(value: object, anchors: set[bytes]) -> tuple[tuple[bytes, int], ...]:
    """``[[digest, rows], ...]`` sorted by digest, naming exactly the sub-forests' anchors."""
    entries = _expect_list(value, "datasets")
    if len(entries) > len(anchors):
        raise _fail("datasets", f"{len(entries)} entries for {len(anchors)} anchored datasets")
    out: list[tuple[bytes, int]] = []
    for i, entry in enumerate(entries):
        digest, rows = _expect_list(entry, f"datasets[{i}]", 2)
        out.append(
            (
                _expect_digest(digest, f"datasets[{i}].digest"),
                _expect_int(rows, f"datasets[{i}].rows", 1, MAX_DATASET_ROWS),
            )
        )
    _expect_sorted_unique([d for d, _ in out], "datasets")
    if {d for d, _ in out} != anchors:
        raise _fail("datasets", "must name exactly the anchors of the contributors")
    return tuple(out)
