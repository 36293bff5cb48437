"""Identity allocation. Each tracker is handed its own allocator; nothing is process-global."""

from __future__ import annotations

import threading


class IdAllocator:
    """Hands out increasing integer ids starting at ``start``; never reuses one. Thread-safe."""

    def __init__(self, start: int = 1):
        self._next = int(start)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            return value
