"""Numeric data for training and scoring: CSV text with a header, or a matrix.

The library never opens files: callers (the CLI) read the bytes and pass
them here. Values must be plain decimal numbers; NaN, infinities, empty cells
and ragged rows are refused with the line and column named.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml import kernels
from ml.artifact import validate_feature_names
from ml.errors import ArtifactError, InputError
from ml.limits import MAX_CSV_BYTES, MAX_FEATURES, MAX_ROWS

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Named columns and a float64 matrix with one row per data line."""

    feature_names: tuple[str, ...]
    matrix: np.ndarray

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """The matrix restricted to ``names`` in that order; extra columns are ignored."""
        index = {name: i for i, name in enumerate(self.feature_names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise InputError(f"missing column(s): {', '.join(missing)}")
        return np.ascontiguousarray(self.matrix[:, [index[name] for name in names]])


def parse_csv(data: str | bytes) -> Dataset:
    """Parse CSV text (or UTF-8 bytes) whose first line names the columns.

    Plain numeric data (cells of digits, sign, point and exponent; no spaces or quotes) is
    read by a compiled parser (``ml.kernels.parse_numbers``), ~50 times faster than the
    csv module; anything it does not take, errors included, is read by the csv module, which
    names the bad line and column. Both give the same matrix, bit for bit.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_CSV_BYTES:
            raise InputError(f"CSV is {len(data)} bytes; the limit is {MAX_CSV_BYTES}")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"CSV is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        raw = data.removeprefix(b"\xef\xbb\xbf")
    else:
        size = len(data.encode("utf-8", "surrogatepass"))
        if len(data) > MAX_CSV_BYTES or size > MAX_CSV_BYTES:
            raise InputError(f"CSV is larger than the limit of {MAX_CSV_BYTES} bytes")
        text, raw = data, _utf8(data)
    fast = None if raw is None else parse_fast(raw)
    return parse_slow(text) if fast is None else fast


def _utf8(text: str) -> bytes | None:
    """``text`` as UTF-8 (None if it holds lone surrogates, which only the slow path reads)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


def parse_slow(text: str) -> Dataset:
    """The csv module's reading: names the line and column of anything it refuses."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        names = _header(next(reader, None))
        rows: list[list[float]] = []
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(rows) >= MAX_ROWS:
                raise InputError(f"line {line}: more than {MAX_ROWS} data rows")
            if len(row) != len(names):
                raise InputError(f"line {line}: expected {len(names)} fields, got {len(row)}")
            rows.append([_number(cell, line, name) for cell, name in zip(row, names, strict=True)])
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise InputError("CSV has a header but no data rows")
    return Dataset(tuple(names), np.array(rows, dtype=np.float64))


def _header(header: list[str] | None) -> list[str]:
    if header is None:
        raise InputError("CSV is empty: expected a header line naming the columns")
    names = [cell.strip() for cell in header]
    if len(names) > MAX_FEATURES:
        raise InputError(f"{len(names)} columns; the limit is {MAX_FEATURES}")
    try:
        validate_feature_names(names, "header")
    except ArtifactError as exc:
        raise InputError(f"line 1: bad header: {exc}") from None
    return names


def parse_fast(raw: bytes) -> Dataset | None:
    """The compiled reading of UTF-8 CSV bytes, or None for anything it does not take.

    Its header line must hold no quote and no carriage return but at its end; data lines
    must be plain numbers (``kernels.parse_numbers``). A cell beyond the exact fast path
    (over 18 significant digits, or exponents past 10**22) is converted by float(), as the
    slow path does; a value out of range, like any error, is left to the slow path.
    """
    newline = raw.find(b"\n")
    header_line = raw[: max(newline, 0)].removesuffix(b"\r")
    if newline < 0 or b'"' in header_line or b"\r" in header_line or not header_line:
        return None
    try:
        names = _header(next(csv.reader([header_line.decode()], strict=True)))
    except (InputError, csv.Error, UnicodeDecodeError):
        return None
    buf = np.frombuffer(raw, dtype=np.uint8)[newline + 1 :]
    capacity = min(MAX_ROWS, raw.count(b"\n", newline + 1) + 1, len(buf) // len(names) + 1)
    out = np.empty((capacity, len(names)), dtype=np.float64)
    starts = np.empty(capacity, dtype=np.int64)
    rows = kernels.parse_numbers(buf, out, starts)
    if rows <= 0 or not _convert_slow_cells(raw, newline + 1, out[:rows], starts):
        return None
    matrix = out[:rows] if 2 * rows >= capacity else out[:rows].copy()  # blank lines: shrink
    return Dataset(tuple(names), matrix)


def _convert_slow_cells(raw: bytes, offset: int, matrix: np.ndarray, starts: np.ndarray) -> bool:
    """Fill the cells the compiled parser left as NaN with float() of their text (valid
    numbers: it checked them); False if one is out of range (the slow path names it)."""
    for row in np.flatnonzero(np.isnan(matrix).any(axis=1)):  # bounded by the rows
        start = offset + int(starts[row])
        stop = raw.find(b"\n", start)
        line = raw[start : len(raw) if stop < 0 else stop]
        values = [float(cell) for cell in line.removesuffix(b"\r").split(b",")]
        if not all(map(math.isfinite, values)):
            return False
        matrix[row] = values
    return True


def _number(cell: str, line: int, name: str) -> float:
    text = cell.strip()
    if not _NUMBER.fullmatch(text):
        raise InputError(f"line {line}, column {name!r}: {cell!r} is not a decimal number")
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"line {line}, column {name!r}: {cell!r} is out of range")
    return value


def check_shape(matrix: np.ndarray, n_features: int | None = None) -> None:
    """Refuse anything but 1..MAX_ROWS rows of ``n_features`` columns."""
    if matrix.ndim != 2:
        raise InputError(f"expected a 2-D matrix, got {matrix.ndim} dimension(s)")
    if not 1 <= matrix.shape[0] <= MAX_ROWS:
        raise InputError(f"{matrix.shape[0]} rows; allowed 1..{MAX_ROWS}")
    if n_features is not None and matrix.shape[1] != n_features:
        raise InputError(f"expected {n_features} feature column(s), got {matrix.shape[1]}")


def as_numeric(values: object) -> np.ndarray:
    """``values`` as a C-ordered float64 array (no copy when it already is one)."""
    try:
        return np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"data is not numeric ({exc})") from None


def nan_error(row: int) -> InputError:
    return InputError(f"row {row} holds NaN; missing values are not supported")


def as_matrix(values: object, n_features: int | None = None) -> np.ndarray:
    """Validate a 2-D numeric matrix: at most MAX_ROWS rows, no NaN, ``n_features`` columns.

    Infinities are allowed (scikit-learn scores them: they fall on the same side
    of every threshold); NaN is refused because the artifact defines no side
    for a missing value. The result is C-ordered float64.
    """
    matrix = as_numeric(values)
    check_shape(matrix, n_features)
    nan_rows = np.isnan(matrix).any(axis=1)
    if nan_rows.any():
        raise nan_error(int(np.flatnonzero(nan_rows)[0]))
    return matrix
