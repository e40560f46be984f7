"""CSV and matrix input, and training parameters: clear errors at every edge."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ml.dataset
from ml.dataset import as_matrix, parse_csv, parse_fast, parse_slow
from ml.errors import InputError, TrainingError
from ml.limits import MAX_CSV_BYTES, MAX_FEATURES, MAX_ROWS, MAX_SUBSAMPLE, MAX_TREES
from ml.train import TrainParams, check_params, effective_subsample, train


def test_csv_with_header_parses_to_named_columns() -> None:
    data = parse_csv("a, b ,c\n1,2.5,-3e2\n\n+.5, 6. ,7\n")
    assert data.feature_names == ("a", "b", "c")
    assert data.matrix.tolist() == [[1.0, 2.5, -300.0], [0.5, 6.0, 7.0]]
    assert data.columns(["c", "a"]).tolist() == [[-300.0, 1.0], [7.0, 0.5]]
    assert parse_csv(b"\xef\xbb\xbfx\r\n1\r\n").feature_names == ("x",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b\n", "no data rows"),
        ("a,b\n1\n", "line 2: expected 2 fields, got 1"),
        ("a,b\n1,2\n3,4,5\n", "line 3: expected 2 fields"),
        ("a,b\n1,x\n", "line 2, column 'b'"),
        ("a,b\n1,nan\n", "not a decimal number"),
        ("a,b\n1,inf\n", "not a decimal number"),
        ("a,b\n1,1_000\n", "not a decimal number"),
        ("a,b\n1,\n", "not a decimal number"),
        ("a,b\n1,1e999\n", "out of range"),
        ("a,a\n1,2\n", "duplicate"),
        ("a,\n1,2\n", "bad header"),
        ('a,b\n1,"2\n', "malformed CSV"),
    ],
)
def test_bad_csv_is_refused_with_the_place(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_csv(text)


def test_csv_limits_at_their_edges(monkeypatch) -> None:
    with pytest.raises(InputError, match="UTF-8"):
        parse_csv(b"a\n\xff\n")
    with pytest.raises(InputError, match="limit"):
        parse_csv(b"a\n" + b"1" * (MAX_CSV_BYTES - 1))
    monkeypatch.setattr(ml.dataset, "MAX_CSV_BYTES", 8)
    assert parse_csv(b"a\n1\n2\n3\n").matrix.shape == (3, 1)  # exactly 8 bytes
    with pytest.raises(InputError, match="limit"):
        parse_csv(b"a\n1\n2\n34\n")
    monkeypatch.setattr(ml.dataset, "MAX_CSV_BYTES", MAX_CSV_BYTES)
    monkeypatch.setattr(ml.dataset, "MAX_ROWS", 3)
    assert parse_csv("a\n1\n2\n3\n").matrix.shape == (3, 1)
    with pytest.raises(InputError, match="more than 3"):
        parse_csv("a\n1\n2\n3\n4\n")
    header = ",".join(f"c{i}" for i in range(MAX_FEATURES))
    assert parse_csv(header + "\n" + ",".join(["0"] * MAX_FEATURES)).matrix.shape[1] == MAX_FEATURES
    with pytest.raises(InputError, match="columns"):
        parse_csv(header + ",extra\n" + ",".join(["0"] * (MAX_FEATURES + 1)))


def test_missing_columns_are_named() -> None:
    with pytest.raises(InputError, match=r"missing column.*: c, d"):
        parse_csv("a,b\n1,2\n").columns(["a", "c", "d"])


def test_matrix_validation_and_row_limit() -> None:
    assert as_matrix(np.zeros((MAX_ROWS, 1))).shape == (MAX_ROWS, 1)
    with pytest.raises(InputError, match="rows"):
        as_matrix(np.zeros((MAX_ROWS + 1, 1)))
    with pytest.raises(InputError, match="2-D"):
        as_matrix([1.0, 2.0])
    with pytest.raises(InputError, match="numeric"):
        as_matrix([["a"]])
    with pytest.raises(InputError, match="NaN"):
        as_matrix([[1.0], [np.nan]])
    with pytest.raises(InputError, match="3 feature"):
        as_matrix([[1.0, 2.0]], 3)


def test_training_data_must_be_finite_and_in_float32_range() -> None:
    with pytest.raises(InputError, match="float32"):
        train([[0.0], [np.inf], [1.0]])
    with pytest.raises(InputError, match="float32"):
        train([[0.0], [1e39], [1.0]])
    with pytest.raises(InputError, match="names"):
        train([[0.0], [1.0]], ["a", "b"])
    with pytest.raises(InputError, match="duplicate"):
        train([[0.0, 1.0], [1.0, 0.0]], ["a", "a"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (TrainParams(n_estimators=0), "n_estimators"),
        (TrainParams(n_estimators=MAX_TREES + 1), "n_estimators"),
        (TrainParams(n_estimators=True), "n_estimators"),
        (TrainParams(max_samples=1), "rows per tree"),
        (TrainParams(max_samples=0), "at least 1"),
        (TrainParams(max_samples=1.5), "max_samples"),
        (TrainParams(max_samples="all"), "max_samples"),
        (TrainParams(contamination=0.6), "contamination"),
        (TrainParams(contamination=0.0), "contamination"),
        (TrainParams(max_features=0), "max_features"),
        (TrainParams(max_features=4), "max_features"),
        (TrainParams(max_features=1.5), "max_features"),
        (TrainParams(random_state=-1), "random_state"),
        (TrainParams(random_state=2**32), "random_state"),
    ],
)
def test_bad_training_parameters_are_refused(params: TrainParams, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        check_params(params, n_rows=100, n_features=3)


def test_subsample_limits_follow_scikit_learn_rules() -> None:
    assert effective_subsample("auto", 1000) == 256
    assert effective_subsample("auto", 40) == 40
    assert effective_subsample(500, 100) == 100
    assert effective_subsample(0.25, 100) == 25
    assert check_params(TrainParams(max_samples=MAX_SUBSAMPLE), MAX_SUBSAMPLE, 1) == MAX_SUBSAMPLE
    with pytest.raises(TrainingError, match="rows per tree"):
        check_params(TrainParams(max_samples=MAX_SUBSAMPLE + 1), MAX_SUBSAMPLE + 1, 1)
    assert check_params(TrainParams(max_samples=2), 2, 1) == 2
    with pytest.raises(TrainingError, match="rows per tree"):
        check_params(TrainParams(max_samples=0.5), 3, 1)


def test_train_csv_records_the_data_digest() -> None:
    from consensus.crypto import sha256
    from ml.train import train_csv

    data = b"a,b\n" + b"".join(f"{i % 7},{i % 5}\n".encode() for i in range(60))
    other = b"a,b\n" + b"".join(f"{i % 3},{i % 2}\n".encode() for i in range(25))
    model = train_csv([data, other], TrainParams(5, "auto", "auto", 1.0, 0)).model
    assert model.feature_names == ("a", "b")
    assert model.contributors[0].anchors == tuple(sorted([sha256(data), sha256(other)]))
    assert model.datasets == tuple(sorted([(sha256(data), 60), (sha256(other), 25)]))
    assert sum(model.training_bins) == 85  # the rows of both files
    with pytest.raises(InputError, match="line 2"):
        train_csv([b"a,b\n1\n"])
    with pytest.raises(InputError, match="share one header"):
        train_csv([data, b"a,c\n1,2\n"])
    with pytest.raises(InputError, match="twice"):
        train_csv([data, data])
    with pytest.raises(InputError, match="no training data"):
        train_csv([])


def test_plain_numbers_take_the_compiled_path_with_the_same_bits() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 3)) * 10.0 ** rng.integers(-30, 30, size=(400, 3))
    x[0] = [0.0, -0.0, 2.0**53 + 2]
    styles = [repr, "{:.3f}".format, "{:e}".format, "{:.17g}".format, "{:+.0f}".format]
    for style in styles:
        text = "a,b,c\r\n" + "\n\n".join(",".join(style(v) for v in row) for row in x.tolist())
        fast = parse_fast(text.encode())
        assert fast is not None, style
        slow = parse_slow(text)
        assert fast.feature_names == slow.feature_names == ("a", "b", "c")
        assert fast.matrix.tobytes() == slow.matrix.tobytes()  # -0.0 and last-bit rounding too
    assert parse_fast(b"a\n1e999\n") is None  # out of range: the slow path names the line
    assert parse_fast(b"a\n 1\n") is None  # spaces: the csv module strips them
    assert parse_fast(b'"a"\n1\n') is None


CSV_CHARS = st.sampled_from([*'0123456789+-.eE,\n\r "x', "1.5", "-2e-3", "\n", ","])


@settings(max_examples=400, deadline=None)
@given(body=st.lists(CSV_CHARS, max_size=40).map("".join), header=st.sampled_from(["a,b", "a"]))
def test_the_compiled_path_agrees_with_the_csv_module(body: str, header: str) -> None:
    """Whatever the text, parse_csv gives what the csv module's reading gives (or its error)."""
    text = header + "\n" + body
    try:
        expected = parse_slow(text)
    except InputError as exc:
        assert parse_fast(text.encode()) is None
        with pytest.raises(InputError) as raised:
            parse_csv(text)
        assert str(raised.value) == str(exc)
        return
    got = parse_csv(text.encode())
    assert got.feature_names == expected.feature_names
    assert got.matrix.tobytes() == expected.matrix.tobytes()
