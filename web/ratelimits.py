"""In-process rate-limit counters without a thread per burst (used when Redis is not set).

`limits`' MemoryStorage (behind Flask-Limiter's `memory://`) forgets expired counters on a
`threading.Timer` of 10 ms that ends after one sweep and is started again by the next hit:
under steady booking traffic that is a new thread every few requests (measured in-process: 133
threads for 500 bookings), each costing the booking request its creation and a GIL hand-over.

Expiry does not need that thread: `get` (called by every hit) already drops an expired counter
of the key it reads; the sweep only frees memory held by keys that stopped coming. Here the
sweep runs inline, in the request that comes `SWEEP_SECONDS` after the last one, and never
concurrently. Everything else (counting, windows, moving-window entries) is the parent's.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from limits.storage import MemoryStorage

SCHEME = "sweptmemory"


class SweptMemoryStorage(MemoryStorage):
    """MemoryStorage whose sweep of expired keys runs inline every SWEEP_SECONDS."""

    # Registers `sweptmemory://` with limits' storage registry (on import).
    STORAGE_SCHEME: ClassVar[list[str]] = [SCHEME]
    SWEEP_SECONDS = 10.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()  # the parent's first timer: no thread from here on
        self._sweeping = threading.Lock()
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    def sweep(self) -> None:
        """Forget every expired counter and moving-window entry now."""
        self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        # The parent leaves an empty list behind for a moving-window key it emptied.
        for key in [key for key, entries in self.events.items() if not entries]:
            with self.locks[key]:
                if not self.events.get(key):
                    self.events.pop(key, None)
                    self.locks.pop(key, None)

    # The parent calls this (a private hook, name-mangled) before every change to a counter;
    # tests/xephang/test_rate_limit_storage.py fails if a new `limits` renames it.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + self.SWEEP_SECONDS
            self.sweep()
        finally:
            self._sweeping.release()
