"""Cancellation of one job: a flag that signal handlers trip, and regions it may interrupt.

`ixci run-job` installs handlers for SIGINT, SIGTERM and SIGHUP that call `CancelToken.trip`.
The runner checks the flag between steps and inside every wait loop; blocking calls (an HTTP
probe, a version query) run inside `interruptible()`, where the first trip raises `Cancelled`
at once instead of waiting for the call's own timeout. Only the first trip raises: the cleanup
that follows is never interrupted by later signals.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from ixci.errors import Cancelled

__all__ = ["CancelToken", "interruptible", "reason"]


class CancelToken(threading.Event):
    """The job's cancellation flag. `trip()` (from a signal handler) sets it; when the main
    thread is inside `interruptible()` the first trip also raises `Cancelled` there, so a
    blocking wait (an HTTP probe, a version query) ends at once instead of at its timeout.
    It raises at most once: the cleanup that follows runs to completion whatever arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "cancelled"
        self._depth = 0
        self._raised = False
        self._tripped = False

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A region the first trip may interrupt by raising `Cancelled`."""
        if self.is_set():
            raise Cancelled(self.reason)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def is_set(self) -> bool:
        """True once tripped (or set)."""
        return self._tripped or super().is_set()

    def trip(self, reason: str) -> None:
        """Set the flag; raise `Cancelled` if this is the first trip inside `interruptible()`
        on the main thread (signal handlers run there)."""
        if not self._tripped:
            self.reason = reason
        self._tripped = True
        # Event.set takes a lock that the interrupted main thread may be holding (inside
        # Event.wait): set it from another thread, never from the handler itself.
        threading.Thread(target=self.set, daemon=True).start()
        main = threading.current_thread() is threading.main_thread()
        if self._depth > 0 and not self._raised and main:
            self._raised = True
            raise Cancelled(reason)


def reason(cancel: threading.Event) -> str:
    """What cancelled the job ("cancelled by SIGINT"), or plain "cancelled"."""
    return str(getattr(cancel, "reason", "cancelled"))


def interruptible(cancel: threading.Event) -> contextlib.AbstractContextManager[None]:
    """`cancel.interruptible()` for a `CancelToken`; a no-op region for a plain Event."""
    if isinstance(cancel, CancelToken):
        return cancel.interruptible()
    return contextlib.nullcontext()
