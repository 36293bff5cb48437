"""The edge's bounded buffer of messages not yet accepted by the broker."""

from __future__ import annotations

import collections
import logging
import threading

log = logging.getLogger(__name__)


def _size(fields: dict) -> int:
    return sum(len(k) + (len(v) if isinstance(v, (bytes, str)) else 8) for k, v in fields.items())


class Outbox:
    """FIFO of ``(stream, fields)`` bounded by a count and a byte size; beyond either the oldest is dropped
    (counted in ``dropped``; one warning for the first drop of each outage). Thread-safe."""

    def __init__(self, max_messages: int, max_bytes: int):
        self.max_messages, self.max_bytes = int(max_messages), int(max_bytes)
        self._q: collections.deque = collections.deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.dropped = 0
        self._warned = False
        self._next = 0  # number of the next message put

    def put(self, stream: str, fields: dict) -> None:
        size = _size(fields)
        with self._lock:
            self._q.append((self._next, stream, fields, size))
            self._next += 1
            self._bytes += size
            dropped = 0
            while len(self._q) > self.max_messages or (self._bytes > self.max_bytes and len(self._q) > 1):
                s = self._q.popleft()[3]
                self._bytes -= s
                dropped += 1
            self.dropped += dropped
            warn = dropped and not self._warned
            if warn:
                self._warned = True
        if warn:
            log.warning("fleet: broker unreachable and the outbox is full (%d messages, %.1f MB): dropping the "
                        "oldest messages (counted in mctrack_fleet_outbox_dropped_total)", self.max_messages,
                        self.max_bytes / 1e6)
        self._wake.set()

    def peek(self, n: int) -> tuple[int, list[tuple[str, dict]]]:
        """The ``n`` oldest messages and the number of the last of them (-1 when empty)."""
        with self._lock:
            items = [self._q[i] for i in range(min(n, len(self._q)))]
        return (items[-1][0] if items else -1), [(s, f) for _, s, f, _ in items]

    def pop_through(self, last: int) -> None:
        """Remove the messages up to number ``last`` (sent); ones dropped meanwhile are already gone."""
        with self._lock:
            while self._q and self._q[0][0] <= last:
                self._bytes -= self._q.popleft()[3]
            if not self._q:
                self._warned = False

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def __len__(self) -> int:
        return len(self._q)

    @property
    def bytes(self) -> int:
        return self._bytes
