"""Ctrl-C and SIGTERM for long-running commands: ask the work to stop, let it finish cleanly."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

log = logging.getLogger("mctrack")


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None], doing: str,
                    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """While inside, each of ``signals`` logs what happens next (``doing``) and calls ``stop()`` instead of
    killing the process; the previous handlers come back on exit."""
    def on_signal(signum, _frame):
        log.info("%s received: %s", signal.Signals(signum).name, doing)
        stop()

    previous = {s: signal.signal(s, on_signal) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
