"""Append-only text files written in whole lines."""

from __future__ import annotations

import errno
import os
from pathlib import Path

_os_write = os.write  # indirection so tests can simulate a full disk


class AppendFile:
    """An append-only text file written in whole-line chunks by one ``os.write`` call each."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.size = 0

    def write(self, text: str) -> None:
        """Append whole lines; on failure truncate back to the last whole line and re-raise (``filename`` set)."""
        if not text:
            return
        data = memoryview(text.encode())
        start = self.size
        try:
            while data:
                n = _os_write(self.fd, data)
                if n <= 0:  # pragma: no cover - os.write raises rather than returning 0 for files
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                data = data[n:]
                self.size += n
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)
                self.size = start
            except OSError:
                pass
            exc.filename = exc.filename or str(self.path)
            raise

    def check(self) -> None:
        """Raise OSError when the file was deleted while open (e.g. its folder was removed)."""
        if os.fstat(self.fd).st_nlink == 0:
            raise OSError(errno.ENOENT, "the file was deleted while running (was the output folder removed?)",
                          str(self.path))

    def close(self, sync: bool = True) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        try:
            if sync:
                os.fsync(fd)
        except OSError as exc:
            exc.filename = exc.filename or str(self.path)
            raise
        finally:
            os.close(fd)
