"""Fixtures for the ml tests: small trained models shared by the session."""

from __future__ import annotations

import hashlib

import pytest
from ml_testing import make_data

from ml.train import TrainParams, TrainResult, train


@pytest.fixture(scope="session")
def small() -> TrainResult:
    """A small model (5 trees of 16 samples, 3 features, one 200-row dataset; format 3) for
    corruption tests."""
    data = make_data(7, n=200, d=3)
    return train(data, ["a", "b", "c"], TrainParams(5, 16, "auto", 1.0, 11),
                 datasets=[(hashlib.sha256(data.tobytes()).digest(), 200)])  # fmt: skip


@pytest.fixture(scope="session")
def medium() -> TrainResult:
    """A 100-tree model with contamination, used by parity, explanation and CLI tests."""
    return train(make_data(3, n=1000, d=5), None, TrainParams(100, "auto", 0.05, 1.0, 5))
