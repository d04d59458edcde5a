"""The Socket.IO message queue on Redis: emits of any process reach the clients of every
web process, and an outage of Redis is survived quietly (logged once, retried fast)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import socketio as socketio_lib
from flask_socketio import SocketIO
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.common.outages import Outage, safe_url

log = logging.getLogger(__name__)

CHANNEL = "xephang-socketio"


def channel_for(url: str) -> str:
    """The pub/sub channel of a Redis URL. Pub/sub ignores database numbers, so the number
    goes into the name: deployments (or test runs) on different databases of one Redis
    never hear each other's boards."""
    database = urlsplit(url).path.strip("/") or "0"
    return f"{CHANNEL}-{database}"


class MessageQueue(socketio_lib.RedisManager):
    """python-socketio's Redis manager, made calm for an outage.

    Upstream tries every publish twice and logs an error each time, and its listener backs
    off up to 60 s, so boards would wait up to a minute after Redis returns. Here a publish
    fails fast (no redis-py retries, short connect timeout), Redis is not tried again for a
    second after a failure, each outage is logged once with its recovery, and the listener
    retries every 0.5–2 s.
    """

    PAUSE_AFTER_FAILURE = 1.0
    LISTEN_RETRY_MAX = 2.0

    def __init__(self, url: str, *, write_only: bool = False) -> None:
        super().__init__(
            url,
            channel=channel_for(url),
            write_only=write_only,
            redis_options={
                "socket_connect_timeout": 1.0,
                "socket_keepalive": True,
                "retry": Retry(NoBackoff(), 0),
                "health_check_interval": 10,
            },
        )
        where = safe_url(url)
        self._publish_outage = Outage(
            f"Publishing to the Socket.IO message queue at {where}",
            "live updates reach only this process's clients until it returns (boards "
            "resynchronise from the database on their next snapshot)",
            log,
        )
        self._listen_outage = Outage(
            f"Listening to the Socket.IO message queue at {where}",
            "this process's clients miss updates from other processes until it returns; "
            "retrying every 2 s",
            log,
        )
        self._pause_until = 0.0

    def _publish(self, data: Any) -> Any:
        if time.monotonic() < self._pause_until:
            return None
        try:
            if not self.connected:
                self._redis_connect()
            result = self.redis.publish(self.channel, self.json.dumps(data))
        except Exception as exc:
            self.connected = False
            self._pause_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            self._publish_outage.failed(exc)
            return None
        self._publish_outage.recovered()
        return result

    def _redis_listen_with_retries(self) -> Iterator[Any]:
        pause = 0.5
        while True:
            try:
                self._redis_connect()
                self.pubsub.subscribe(self.channel)
                self._listen_outage.recovered()
                pause = 0.5
                yield from self.pubsub.listen()
            except Exception as exc:
                self._listen_outage.failed(exc)
                time.sleep(pause)
                pause = min(pause * 2, self.LISTEN_RETRY_MAX)


def client_manager(url: str) -> socketio_lib.Manager:
    """The Socket.IO client manager of a web process: Redis-backed when a URL is given."""
    return MessageQueue(url) if url else socketio_lib.Manager()


def write_only_emitter(url: str) -> SocketIO:
    """Flask-SocketIO's emitter for a process that holds no clients."""
    return SocketIO(
        message_queue=url,
        client_manager=MessageQueue(url, write_only=True),
        async_mode="threading",
    )
