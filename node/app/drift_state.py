"""Committed score drift per model: the histogram and PSI every node keeps in state.

Each committed score of a model whose artifact carries a training histogram
(``ml.drift``) is counted in its bin, under the native state key
``drift/<model id>``. Windows are tumbling: when ``drift_window`` scores
(a governance parameter) have been counted, the window's PSI against the
training bins is computed exactly (integer millionths), appended to a bounded
history, and the window starts again. When a window's level (``ok`` below
``drift_notice_ppm``, ``notice``, or ``alarm`` at or above ``drift_alarm_ppm``)
differs from the previous window's, the score transaction that closed the
window emits a ``drift`` event. All of it is state, so a light client can
prove the histogram, the PSI and its history under a certified header.

The record is one canonical msgpack array::

    [window_bins, window_count, total_bins, windows, last_psi_ppm | None, level,
     [[window, height, psi_ppm], ...]]
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus import codec
from consensus.bounded import BoundedMap
from ml.drift import DRIFT_BINS, bin_of, psi_ppm
from node.app import governance
from node.app.state import Overlay

DRIFT = b"drift/"
MAX_DRIFT_HISTORY = 64
"""Closed windows kept per model (the explorer's drift chart); older ones drop off."""
LEVELS = ("ok", "notice", "alarm")
MAX_RECENT_RECORDS = 16
"""Drift records this module wrote last, kept by their bytes: every score of a block reads
the record the previous score wrote, and decoding it again was a tenth of a score's work."""
DRIFT_EVENT = "drift"


@dataclass(frozen=True)
class DriftRecord:
    """A model's drift state; ``decode`` refuses anything but a record this module wrote."""

    window_bins: tuple[int, ...] = (0,) * DRIFT_BINS
    window_count: int = 0
    total_bins: tuple[int, ...] = (0,) * DRIFT_BINS
    windows: int = 0
    last_psi_ppm: int | None = None
    level: str = "ok"
    history: tuple[tuple[int, int, int], ...] = ()

    def encode(self) -> bytes:
        """Packed without the codec's validity walk: every field is a count, a height, a
        PSI in millionths (non-negative ints far below 2**63), a level name or None, nested
        three deep; with a full history the walk cost more than the rest of a score's drift
        work (a test holds the bytes to ``codec.encode``). The history changes only when a
        window closes, so its encoding is remembered with it (``_history_bytes``): packing
        it again at every score was a tenth of the application thread's time (issue 15)."""
        head = codec.pack_canonical(
            [
                list(self.window_bins),
                self.window_count,
                list(self.total_bins),
                self.windows,
                self.last_psi_ppm,
                self.level,
            ]
        )
        assert head[0] == _SIX_FIELDS, "six fields pack under a one-byte array header"
        return _RECORD_HEADER + head[1:] + _history_bytes(self.history)

    @classmethod
    def decode(cls, raw: bytes) -> DriftRecord:
        known = _RECENT.get(raw)
        if known is not None:
            return known
        fields = codec.decode(raw)
        assert type(fields) is list and len(fields) == 7, "drift record is damaged"
        record = cls(
            tuple(fields[0]),
            fields[1],
            tuple(fields[2]),
            fields[3],
            fields[4],
            fields[5],
            tuple(tuple(h) for h in fields[6]),
        )
        assert len(record.window_bins) == len(record.total_bins) == DRIFT_BINS
        assert record.level in LEVELS and len(record.history) <= MAX_DRIFT_HISTORY
        return record


_RECENT: BoundedMap[bytes, DriftRecord] = BoundedMap(MAX_RECENT_RECORDS)
"""Bytes -> the record they encode, for the last records written (``MAX_RECENT_RECORDS``)."""
_RECORD_HEADER = codec.array_header(7)
_SIX_FIELDS = codec.array_header(6)[0]
_HISTORIES: BoundedMap[int, tuple[tuple[tuple[int, int, int], ...], bytes]] = BoundedMap(
    MAX_RECENT_RECORDS
)
"""id(history) -> (that history, its encoding), for the last histories encoded
(``MAX_RECENT_RECORDS``); holding the history keeps its id from naming another meanwhile."""


def _history_bytes(history: tuple[tuple[int, int, int], ...]) -> bytes:
    known = _HISTORIES.get(id(history))
    if known is not None and known[0] is history:
        return known[1]
    raw = codec.pack_canonical([list(h) for h in history])
    _HISTORIES.remember(id(history), (history, raw))
    return raw


def drift_key(model_id: bytes) -> bytes:
    return DRIFT + model_id


def read(state: Overlay, model_id: bytes) -> DriftRecord | None:
    raw = state.get(drift_key(model_id))
    return None if raw is None else DriftRecord.decode(raw)


def level_of(psi: int, notice: int, alarm: int) -> str:
    if psi >= alarm:
        return "alarm"
    return "notice" if psi >= notice else "ok"


def record_score(
    state: Overlay,
    model_id: bytes,
    training_bins: tuple[int, ...],
    n_trees: int,
    path_sum: int,
    height: int,
) -> tuple[str, int, int] | None:
    """Count one committed score; (level, psi_ppm, window) when a window closes on a new level."""
    old = read(state, model_id) or DriftRecord()
    b = bin_of(path_sum, n_trees)
    window_bins = list(old.window_bins)
    window_bins[b] += 1
    total_bins = list(old.total_bins)
    total_bins[b] += 1
    record = DriftRecord(
        tuple(window_bins), old.window_count + 1, tuple(total_bins),
        old.windows, old.last_psi_ppm, old.level, old.history,
    )  # fmt: skip
    change = None
    if record.window_count >= governance.param(state, "drift_window"):
        psi = psi_ppm(training_bins, record.window_bins)
        level = level_of(
            psi,
            governance.param(state, "drift_notice_ppm"),
            governance.param(state, "drift_alarm_ppm"),
        )
        window = record.windows
        if level != record.level:
            change = (level, psi, window)
        history = (*record.history, (window, height, psi))[-MAX_DRIFT_HISTORY:]
        record = DriftRecord(
            (0,) * DRIFT_BINS, 0, record.total_bins, window + 1, psi, level, history
        )
    raw = record.encode()
    _RECENT.remember(raw, record)  # the next score of the block reads it back
    state.put(drift_key(model_id), raw)
    return change


@dataclass(frozen=True)
class DriftView:
    """What a node reports of a model family's drift (the API and the metrics read this)."""

    name: str
    model_id: bytes
    training_bins: tuple[int, ...] | None
    record: DriftRecord
    window: int
    notice_ppm: int
    alarm_ppm: int

    @property
    def level(self) -> str:
        """``unknown`` for a model without a training histogram or before a window closed."""
        if self.training_bins is None or self.record.windows == 0:
            return "unknown"
        return self.record.level


def view(
    state: Overlay, name: str, model_id: bytes, training_bins: tuple[int, ...] | None
) -> DriftView:
    """The drift of ``model_id`` (the family ``name``'s active model) as the state holds it."""
    return DriftView(
        name,
        model_id,
        training_bins,
        read(state, model_id) or DriftRecord(),
        governance.param(state, "drift_window"),
        governance.param(state, "drift_notice_ppm"),
        governance.param(state, "drift_alarm_ppm"),
    )
