"""The node's log: one JSON object per line for machines, or aligned text for a terminal.

Every record carries the time (UTC, ISO 8601 with milliseconds), the level,
the node (its organisation, or its key's prefix outside the members), the
committed height and the view at the moment it was written, an ``event`` (the
``event`` a call passes in ``extra``, else the logger's last name) and the
message; ``extra={"fields": {...}}`` adds structured values. Keys are never
logged: nothing in the node passes key material to a log call, and
:class:`JsonFormatter` writes only the fields above.

Faults and refusals can repeat at the rate a peer or client sends them, so
:class:`RateLimit` lets each kind of message (logger, level and message
template) through at most ``LOG_BURST`` times per ``LOG_WINDOW_S`` and then
says how many it held back.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_BURST = 20
"""Messages of one kind written per window; the rest are counted."""
LOG_WINDOW_S = 10.0
MAX_LOG_KINDS = 1_024
"""Kinds of message the rate limit tracks at once (the oldest window is dropped past it)."""
assert LOG_BURST >= 1 and LOG_WINDOW_S > 0

Context = Callable[[], dict[str, Any]]
"""Where the node is now: {"node": ..., "height": ..., "view": ...}."""


def _no_context() -> dict[str, Any]:
    return {}


class _Context:
    provider: Context = _no_context


def set_context(provider: Context) -> None:
    """The node tells the log where it is (called once the node exists)."""
    _Context.provider = provider


def _where() -> dict[str, Any]:
    try:
        return dict(_Context.provider())
    except Exception:  # the log must never fail because the node is half built
        return {}


def _event(record: logging.LogRecord) -> str:
    return str(getattr(record, "event", None) or record.name.rsplit(".", 1)[-1])


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, node, height, view, event, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower()}
        out.update(_where())
        out["event"] = _event(record)
        out["message"] = record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            out["fields"] = fields
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level node h=H v=V event: message key=value ...`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        where = _where()
        place = " ".join(
            part
            for part in (
                str(where.get("node", "")),
                f"h={where['height']}" if "height" in where else "",
                f"v={where['view']}" if "view" in where else "",
            )
            if part
        )
        line = f"{_time(record)} {record.levelname:<7} {place} {_event(record)}: "
        line += record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line += "".join(f" {k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RateLimit(logging.Filter):
    """At most LOG_BURST messages of one kind per LOG_WINDOW_S; then a count of those held back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self._windows: dict[tuple[str, int, str], list[float]] = {}
        """kind -> [window start, written, held back]"""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "held_back_note", False):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        window = self._windows.get(kind)
        if window is None or now - window[0] >= LOG_WINDOW_S:
            if window is not None and window[2]:
                self._note(record, int(window[2]))
            if window is None and len(self._windows) >= MAX_LOG_KINDS:
                self._windows.pop(next(iter(self._windows)))
            self._windows[kind] = [now, 1, 0]
            return True
        if window[1] < LOG_BURST:
            window[1] += 1
            return True
        window[2] += 1
        return False

    @staticmethod
    def _note(record: logging.LogRecord, count: int) -> None:
        logging.getLogger(record.name).log(
            record.levelno,
            "(%d more like %r were held back in %.0f s)",
            count,
            str(record.msg)[:120],
            LOG_WINDOW_S,
            extra={"held_back_note": True, "event": "held_back"},
        )


class ClientFaults(logging.Filter):
    """aiohttp logs a request it cannot parse (a bad header, a NUL byte, a stranger speaking
    something else) at ERROR with a traceback: a client's fault, not the node's, and any
    client can send one. Such a record becomes one INFO line saying what was wrong (then
    RateLimit holds repeats back); a real handler error keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError | ConnectionResetError):
            return True
        if logging.getLogger().getEffectiveLevel() > logging.INFO:
            return False
        text = getattr(error, "message", None) or str(error)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = (
            "refused a request it could not read: %s",
            (" ".join(str(text).split())[:200],),
        )
        record.exc_info, record.exc_text = None, None
        return True


def configure(level: str, fmt: str, stream: Any = None) -> logging.Handler:
    """Send the node's log to ``stream`` (stderr) in ``fmt`` at ``level``; returns the handler."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ClientFaults())
    handler.addFilter(RateLimit())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
