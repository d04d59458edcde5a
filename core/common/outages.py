"""Outages of a helper service (Redis, a database seen by a background thread) logged once
when they begin and once when they end, never on every retry."""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit


def safe_url(url: str) -> str:
    """`url` without its user and password, for logs."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class Outage:
    """Logs the first failure of an outage and the recovery, once each, on `log`."""

    def __init__(self, what: str, meaning: str, log: logging.Logger) -> None:
        self.what, self.meaning, self.log = what, meaning, log
        self.down_since: float | None = None
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
        if first:
            self.log.warning(
                "%s failed (%s: %s): %s", self.what, type(exc).__name__, exc, self.meaning
            )

    def recovered(self) -> None:
        with self._lock:
            since, self.down_since = self.down_since, None
        if since is not None:
            self.log.info("%s works again after %.1f s", self.what, time.monotonic() - since)
