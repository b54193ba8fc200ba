"""Stopping a long-running command cleanly: Ctrl-C (SIGINT) raises KeyboardInterrupt by
Python's default; SIGTERM and SIGHUP, which service managers, CI runners and `kill` send,
are turned into `Terminated` here so that every `finally` runs the same way (the lab stops
its servers, `watch` closes its exporter and flushes its record).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; unwinds like KeyboardInterrupt so cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def termination_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` in the main thread; the
    previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
