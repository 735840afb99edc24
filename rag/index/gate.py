"""One refresh at a time per open index, without making questions wait for it.

A question that finds the seeds changed refreshes the index itself when no refresh is
running (and so gets the change); while one runs, other questions answer from the
current generation at once, and the change they saw is picked up by one more pass of
the running refresh. An explicit refresh waits its turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class RefreshGate:
    """Serialises refreshes; remembers changes seen while one was running.

    Example:
        >>> gate = RefreshGate()
        >>> gate.try_run(lambda: "refreshed"), gate.running
        (True, False)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while a refresh runs
        self._flag = threading.Lock()  # guards `_pending` against the end of a refresh
        self._pending = False
        self.running = False

    def run(self, refresh: Callable[[], T]) -> T:
        """Run ``refresh`` once no other refresh runs (waiting for it), then again while
        changes were seen meanwhile; the first run's result."""
        self._lock.acquire()
        return self._run_held(refresh)

    def try_run(self, refresh: Callable[[], object]) -> bool:
        """Run ``refresh`` (as `run`) unless a refresh is running: then note that it must
        look again when it ends, and return False at once."""
        with self._flag:
            if not self._lock.acquire(blocking=False):
                self._pending = True
                return False
        self._run_held(refresh)
        return True

    def _run_held(self, refresh: Callable[[], T]) -> T:
        """Run ``refresh`` with `_lock` held, and release it only together with seeing no
        change noted meanwhile: a change noted as it ends is never left behind."""
        self.running = True
        try:
            with self._flag:
                self._pending = False
            result = refresh()
            while True:
                with self._flag:
                    if not self._pending:
                        self.running = False
                        self._lock.release()
                        return result
                    self._pending = False
                refresh()
        except BaseException:
            with self._flag:
                self.running = False
                self._lock.release()
            raise
