"""A map that holds at most a fixed number of entries: the one bounded cache of the code base.

Every memo, cache and per-peer table that a client, a peer or the chain's own growth could
otherwise grow without end is one of these, so its bound is named once where it is made and
cannot be forgotten at an insertion: ``remember`` forgets the oldest entries as it adds.
It is an ``OrderedDict`` (C-implemented), so reads (``get``, ``in``, ``[]``) cost what a
dict's do; only insertions go through Python.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(OrderedDict[K, V]):
    """At most ``limit`` entries, oldest first; ``remember`` adds one as the newest (a key
    already held moves to the end) and forgets the oldest while there are too many."""

    def __init__(self, limit: int) -> None:
        assert limit >= 1, "a bounded map holds at least one entry"
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)

    def remember_all(self, items: Iterable[tuple[K, V]]) -> None:
        """``remember`` each pair in turn (the last ``limit`` of them are kept)."""
        for key, value in items:
            self[key] = value
            self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.limit,), None, None, iter(self.items()))
