"""Token revocations across web processes, over Redis pub/sub (with XEPHANG_REDIS_URL).

Every process keeps the bearer tokens it looked up for a few seconds (core.access.principals). A committed
change that may revoke one (a staff token deleted, an account switched off or given a new
password, a device switched off) empties that process's cache at once, and core.access.principals then
runs its `revocation_hooks`: here, one that publishes on a channel. Every web process
listens on it from its first request on and empties its own cache on each message, so a
revoked token is refused everywhere within a Redis round trip rather than
`core.access.principals.TOKEN_CACHE_SECONDS`. Processes that serve no requests (CLI commands, the
scheduler) publish but do not listen.

Redis is only a messenger, as for live updates: when it is down, each outage is logged once
and its end too, publishing is not tried again for a second after a failure, and the
listener retries every 0.5-2 s. Messages sent meanwhile are lost, so the listener empties
the cache whenever it subscribes again; until then another process's revocation bites
within the cache time, as without Redis.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from urllib.parse import urlsplit

import redis
from flask import Flask, current_app, has_app_context
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.access import principals as auth
from core.common.outages import Outage, safe_url

log = logging.getLogger(__name__)

CHANNEL = "xephang-revocations"
EXTENSION = "xephang.revocations"


def channel_for(url: str) -> str:
    """The channel of a Redis URL. Pub/sub ignores database numbers, so the number is in
    the name: deployments (and test runs) on different databases never hear each other."""
    database = urlsplit(url).path.strip("/") or "0"
    return f"{CHANNEL}-{database}"


class Revocations:
    """One per app: publishes this process's revocations, listens for the others'."""

    PAUSE_AFTER_FAILURE = 1.0
    LISTEN_RETRY_MAX = 2.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.channel = channel_for(url)
        # Our own messages come back to us: this process has forgotten already.
        self.sender = uuid.uuid4().hex.encode()
        # Fail fast: a revocation is committed already, Redis only spreads the news.
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        self._pause_until = 0.0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self.listening = threading.Event()  # subscribed now (tests wait on it)
        where = safe_url(url)
        self._publishing = Outage(
            f"Publishing token revocations to Redis at {where}",
            "other web processes refuse revoked tokens only once their cache expires "
            f"(within {auth.TOKEN_CACHE_SECONDS:g} s) until it returns",
            log,
        )
        self._listening = Outage(
            f"Listening for token revocations on Redis at {where}",
            "tokens revoked by other processes are refused here only once the cache expires "
            f"(within {auth.TOKEN_CACHE_SECONDS:g} s) until it returns; retrying every 2 s",
            log,
        )

    def publish(self) -> None:
        """Tell the other processes to forget their cached tokens; never raises."""
        if time.monotonic() < self._pause_until:
            return
        try:
            self._client.publish(self.channel, self.sender)
        except Exception as exc:
            self._pause_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            self._publishing.failed(exc)
            return
        self._publishing.recovered()

    def start(self) -> None:
        """Start listening in a daemon thread, once."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="xephang-revocations", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _listen(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=1.0,
                socket_timeout=5.0,
                socket_keepalive=True,
                health_check_interval=10,
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    # A timeout, so that `stop()` is heard within a second.
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # What was published while we did not listen is lost: start afresh.
                        auth.forget_tokens(announce=False)
                        self._listening.recovered()
                        self.listening.set()
                        pause = 0.5
                    elif message["type"] == "message" and message["data"] != self.sender:
                        auth.forget_tokens(announce=False)
            except Exception as exc:
                self.listening.clear()
                self._listening.failed(exc)
                self._stop.wait(pause)
                pause = min(pause * 2, self.LISTEN_RETRY_MAX)
            finally:
                pubsub.close()
                client.close()
        self.listening.clear()


def _announce() -> None:
    """core.access.principals's revocation hook: publish through the current app's Redis, if it has one."""
    if not has_app_context():
        return
    revocations = current_app.extensions.get(EXTENSION)
    if revocations is not None:
        revocations.publish()


def revocations_of(app: Flask) -> Revocations | None:
    return app.extensions.get(EXTENSION)


def init_app(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    if not url:
        return  # one process: core.access.principals's own cache is all there is to empty
    revocations = Revocations(url)
    app.extensions[EXTENSION] = revocations
    if _announce not in auth.revocation_hooks:
        auth.revocation_hooks.append(_announce)

    # From the first request on (as the embedded scheduler): CLI commands and the reloader's
    # watcher cache no tokens, so they need not listen. The subscription empties the cache,
    # so a token cached before it cannot outlive a revocation it did not hear.
    @app.before_request
    def _listen_for_revocations() -> None:
        revocations.start()
