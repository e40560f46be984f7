"""Committed score drift on real ledgers: PSI windows, the drift event, agreement across nodes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_helpers import commit, open_ledger
from test_scoring import decide, ready, score_tx

from consensus import codec
from ml.drift import DRIFT_BINS, psi_ppm
from ml.train import TrainParams, train
from node.app import drift_state, governance
from node.app.drift_state import MAX_DRIFT_HISTORY, DriftRecord, drift_key, level_of
from node.app.state import Overlay, storage_key
from vm.values import encode_value

WINDOW = 500
"""Null PSI over 22 bins is about (occupied bins - 1) / WINDOW: 250 came near 0.1 by chance."""


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    data = np.random.default_rng(11).normal(0, 1, size=(2000, 3))
    return train(data, ("amount", "hour", "country"), TrainParams(n_estimators=50)).model


def _scores(ledger, rows: np.ndarray, tag: str) -> list:  # type: ignore[no-untyped-def]
    receipts = []
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        txs = [score_tx([float(x) for x in r], f"{tag}{start + i}") for i, r in enumerate(chunk)]
        receipts += commit(ledger, txs)
    assert all(r.status == "ok" for r in receipts), {r.error for r in receipts}
    return receipts


def _record(ledger, model) -> DriftRecord:  # type: ignore[no-untyped-def]
    raw = ledger.store.get(drift_key(model.model_id))
    assert raw is not None
    return DriftRecord.decode(raw)


def test_stable_scores_stay_below_notice_and_a_shift_raises_the_alarm(
    tmp_path: Path,
    model,  # type: ignore[no-untyped-def]
) -> None:
    ledger = ready(tmp_path / "a", model)
    decide(ledger, "set_param", {"name": "drift_window", "value": WINDOW})
    rng = np.random.default_rng(99)
    calm = _scores(ledger, rng.normal(0, 1, size=(3 * WINDOW, 3)), "calm")
    record = _record(ledger, model)
    assert record.windows == 3 and record.window_count == 0
    assert all(psi < 100_000 for _, _, psi in record.history), record.history
    assert record.level == "ok"
    assert not [e for r in calm for e in r.events if e.name == "drift"]

    shifted = rng.normal(2.0, 1.0, size=(WINDOW, 3))
    receipts = _scores(ledger, shifted, "moved")
    record = _record(ledger, model)
    assert record.windows == 4 and record.last_psi_ppm > 250_000, record.last_psi_ppm
    assert record.level == "alarm"
    [event] = [e for r in receipts for e in r.events if e.name == "drift"]
    assert event.data == ("fraud", model.model_id, "alarm", record.last_psi_ppm, 3)
    assert receipts[-1].events[-1] == event  # the score that closed the window carries it
    assert sum(record.total_bins) == 4 * WINDOW

    # Every node that commits the same blocks holds the same drift record and PSI.
    for i in range(3):
        other = open_ledger(tmp_path / f"f{i}")
        other.store.put_artifact(model.model_id, model.data)
        for height in range(1, ledger.height + 1):
            other.commit(ledger.store.block(height), ledger.certificate(height))  # type: ignore[arg-type]
        assert other.store.get(drift_key(model.model_id)) == ledger.store.get(
            drift_key(model.model_id)
        )
        assert other.store.state_root() == ledger.store.state_root()


def test_a_window_closes_exactly_at_the_governed_size(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    ledger = ready(tmp_path / "a", model)
    decide(ledger, "set_param", {"name": "drift_window", "value": 50})
    rows = np.random.default_rng(5).normal(0, 1, size=(49, 3))
    _scores(ledger, rows, "a")
    assert _record(ledger, model).windows == 0 and _record(ledger, model).window_count == 49
    _scores(ledger, rows[:1], "b")
    record = _record(ledger, model)
    assert record.windows == 1 and record.window_count == 0
    assert record.history[0][2] == psi_ppm(model.training_bins, record.total_bins)


def test_the_history_is_bounded() -> None:
    """Past MAX_DRIFT_HISTORY closed windows the oldest drop off (the record stays small)."""
    state = Overlay(lambda key: None)
    window = 50
    state.put(storage_key("governance", "param:drift_window"), encode_value(window, 64))
    assert governance.param(state, "drift_window") == window
    training = (1,) * DRIFT_BINS
    for _ in range((MAX_DRIFT_HISTORY + 3) * window):
        drift_state.record_score(state, bytes(32), training, 1, 0, 7)
    record = DriftRecord.decode(state.get(drift_key(bytes(32))))  # type: ignore[arg-type]
    assert record.windows == MAX_DRIFT_HISTORY + 3
    assert len(record.history) == MAX_DRIFT_HISTORY
    assert record.history[0][0] == 3
    assert codec.decode(record.encode())[3] == MAX_DRIFT_HISTORY + 3


def test_levels_at_their_edges() -> None:
    assert level_of(99_999, 100_000, 250_000) == "ok"
    assert level_of(100_000, 100_000, 250_000) == "notice"
    assert level_of(249_999, 100_000, 250_000) == "notice"
    assert level_of(250_000, 100_000, 250_000) == "alarm"


@given(
    bins=st.lists(st.integers(0, 2**40), min_size=DRIFT_BINS, max_size=DRIFT_BINS),
    count=st.integers(0, 2**40),
    windows=st.integers(0, 2**40),
    psi=st.none() | st.integers(0, 2**40),
    level=st.sampled_from(drift_state.LEVELS),
    history=st.lists(
        st.tuples(st.integers(0, 2**40), st.integers(1, 2**40), st.integers(0, 2**40)),
        max_size=MAX_DRIFT_HISTORY,
    ),
)
def test_a_record_packs_to_the_codecs_own_encoding(  # type: ignore[no-untyped-def]
    bins, count, windows, psi, level, history
) -> None:
    """DriftRecord.encode skips the codec's validity walk; the bytes are encode()'s all the
    same, and they decode back to the record."""
    record = DriftRecord(tuple(bins), count, tuple(bins), windows, psi, level, tuple(history))
    wire = [bins, count, bins, windows, psi, level, [list(h) for h in history]]
    assert record.encode() == codec.encode(wire)
    # the next score's record shares the history object, whose encoding is remembered
    later = dataclasses.replace(record, window_count=count + 1)
    assert later.history is record.history
    assert later.encode() == codec.encode([bins, count + 1, *wire[2:]])
    drift_state._RECENT.clear()
    assert DriftRecord.decode(record.encode()) == record
