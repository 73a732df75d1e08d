"""Serialized answers of stored queries, memoised per namespace generation and time horizon.

A stored query's answer is a pure function of the namespace snapshot (its generation), the
request and the effective `as_of`. The memo key is (method, namespace id, generation, request
bytes); the request bytes include an explicit `as_of`, so such an answer is valid for as long
as the generation is current. Without one, the answer at the server's clock is valid from the
second it was computed at until the next instant at which a definition involved gains or loses
a partition (domain/horizon.py); a hit then puts the current clock into the answer's `as_of`,
which is field 1 of every memoised response, so the bytes are exactly those that computing the
answer afresh would give (`SerializeToString` writes fields in field-number order; `_entry`
checks it on every miss, and keeps nothing when it does not hold).

Entries of older generations are never looked up again and leave with the LRU order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api import convert

# Defence in depth: even a definition with no tick ahead is recomputed this often.
MAX_AGE_SECONDS = 3600
AS_OF_TAG = b"\x0a"  # field 1, length-delimited


@dataclass(frozen=True, slots=True)
class Entry:
    # Without an explicit as_of: everything after the as_of field; with one: the whole answer.
    body: bytes
    explicit: bool
    valid_from: int
    valid_until: int


def as_of_field(as_of: datetime) -> bytes:
    """Field 1 (`as_of`, a Timestamp) as `SerializeToString` writes it."""
    timestamp = Timestamp()
    convert.set_instant(timestamp, as_of)
    value = timestamp.SerializeToString()
    return AS_OF_TAG + bytes((len(value),)) + value  # a Timestamp is under 128 bytes


def _size(key: Hashable, body: bytes) -> int:
    parts = key if isinstance(key, tuple) else (key,)
    return len(body) + sum(len(part) for part in parts if isinstance(part, bytes | str))


class ResponseMemo:
    """An LRU of serialized answers bounded in entries and in bytes (answers plus request
    bytes); an answer larger than `max_bytes / 64` is not kept. Thread-safe."""

    def __init__(self, capacity: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        # Thread safety: guarded by self._lock (an insertion and its evictions are one step).
        self._entries: OrderedDict[Hashable, tuple[Entry, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # Answers served from the memo, and answers computed (then memoised if small enough).
        # Thread safety: written under self._lock; a metrics scrape reads one int unlocked.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:  # never between an insertion and its evictions
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def get(self, key: Hashable, as_of: datetime | None, now: int) -> bytes | None:
        """The memoised answer for `key` at `as_of` (`now`: its whole seconds), or None.
        Entries of requests with an explicit `as_of` need neither."""
        with self._lock:
            known = self._entries.get(key)
            if known is None:
                return None
            entry = known[0]
            if not entry.valid_from <= now < entry.valid_until:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        if entry.explicit:
            return entry.body
        assert as_of is not None, "an answer at the server's clock needs the clock"
        return as_of_field(as_of) + entry.body

    def put(
        self,
        key: Hashable,
        answer: bytes,
        as_of: datetime,
        explicit: bool,
        now: int,
        valid_until: int | None,
    ) -> None:
        """Remember `answer` (the full serialized response, computed at `as_of`)."""
        size = _size(key, answer)
        entry = (
            self._entry(answer, as_of, explicit, now, valid_until)
            if size <= self.max_bytes // 64
            else None
        )
        with self._lock:
            self.misses += 1
            if entry is None:
                return
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._bytes -= replaced[1]
            self._entries[key] = (entry, size)
            self._bytes += size
            while len(self._entries) > self.capacity or self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    @staticmethod
    def _entry(
        answer: bytes, as_of: datetime, explicit: bool, now: int, valid_until: int | None
    ) -> Entry | None:
        """What to keep of `answer`; None if it must not be kept."""
        if explicit:
            return Entry(answer, True, -(2**63), 2**63)
        head = as_of_field(as_of)
        if not answer.startswith(head):  # as_of not first: never serve spliced bytes
            return None
        until = now + MAX_AGE_SECONDS
        if valid_until is not None:
            until = min(until, valid_until)
        return Entry(answer[len(head) :], False, now, until)
