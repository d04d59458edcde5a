"""Rate-limit counters kept in the process (no Redis): web.ratelimits counts as limits'
MemoryStorage does, forgets expired counters, and starts no thread while doing so."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from web.extensions import limiter
from web.ratelimits import SweptMemoryStorage


@contextmanager
def threads_started() -> Iterator[list[str]]:
    """Names of the threads started within the block (they still start)."""
    original = threading.Thread.start
    started: list[str] = []

    def counting(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    threading.Thread.start = counting  # type: ignore[method-assign]
    try:
        yield started
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]


def test_the_parents_private_hooks_still_exist():
    # The subclass replaces MemoryStorage.__schedule_expiry and calls __expire_events: a new
    # `limits` that renames them must fail here, not silently start timers again.
    assert callable(getattr(MemoryStorage, "_MemoryStorage__schedule_expiry", None))
    assert callable(getattr(MemoryStorage, "_MemoryStorage__expire_events", None))


def test_registered_under_its_scheme():
    assert isinstance(storage_from_string("sweptmemory://"), SweptMemoryStorage)


@pytest.mark.parametrize("strategy", [FixedWindowRateLimiter, MovingWindowRateLimiter])
def test_counts_and_expires_without_threads(strategy):
    storage = SweptMemoryStorage()
    rate = RateLimitItemPerSecond(2)
    limiter_ = strategy(storage)
    with threads_started() as started:
        assert limiter_.hit(rate, "citizen") and limiter_.hit(rate, "citizen")
        assert not limiter_.hit(rate, "citizen")  # the third within the second
        assert limiter_.hit(rate, "someone else")
        time.sleep(1.05)
        assert limiter_.hit(rate, "citizen")  # a new window
    assert started == []


def test_sweep_forgets_keys_that_stopped_coming():
    storage = SweptMemoryStorage()
    with threads_started() as started:
        storage.incr("gone-1", expiry=0.01)
        storage.incr("gone-2", expiry=0.01)
        storage.acquire_entry("gone-3", limit=5, expiry=0.01)
        time.sleep(0.02)
        storage.incr("fresh", expiry=60)  # within SWEEP_SECONDS of creation: no sweep yet
        assert "gone-1" in storage.storage and "gone-3" in storage.events
        storage._next_sweep = 0  # the sweep is due
        storage.incr("fresh", expiry=60)
    assert set(storage.storage) == {"fresh"} and storage.storage["fresh"] == 2
    assert "gone-3" not in storage.events
    assert started == []


@pytest.fixture
def app_config() -> dict:
    return {"RATE_LIMITS_ENABLED": True}


def test_the_app_counts_in_it_without_redis(app):
    assert app.config["RATELIMIT_STORAGE_URI"] == "sweptmemory://"
    assert isinstance(limiter.storage, SweptMemoryStorage)
