"""Small in-process caches of slow-changing facts, each entry for a few seconds at most.

The database stays the truth: a cache here only saves re-reading, on every ticket, what
changes a few times a day (a line's name, its pace). Keys include the database URL, so
two apps in one process (tests, tools) never see each other's rows; `clear_all()` empties
every cache (the app factory calls it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

V = TypeVar("V")
_caches: list[TTLCache] = []


class TTLCache(Generic[V]):
    """Values by (database URL, key), each kept for `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, Hashable], tuple[float, V]] = {}
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, session: Session, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value, or `load()` stored for the next `ttl` seconds."""
        full = (str(session.get_bind().url), key)
        entry = self._entries.get(full)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value = load()
        with self._lock:
            self._entries[full] = (time.monotonic() + self.ttl, value)
        return value

    def forget(self, match: Callable[[Hashable], bool] | None = None) -> None:
        """Drop the entries whose key matches (all when `match` is None)."""
        with self._lock:
            if match is None:
                self._entries.clear()
                return
            for full in [k for k in self._entries if match(k[1])]:
                del self._entries[full]


def clear_all() -> None:
    for cache in _caches:
        cache.forget()
