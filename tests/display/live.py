"""Plumbing for live tests: the app served on loopback by a real server in a thread, and
Socket.IO clients (python-socketio) that record what they receive."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import socketio
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server


class _OneRequestPerConnection(WSGIRequestHandler):
    # After a websocket ends, the dev server would read the client's closing frame as a new
    # HTTP request (and the client would wait 3 s for an answer): close the connection.
    protocol_version = "HTTP/1.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` (HTTP and websockets, threaded) on a free loopback port; yields its URL."""
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_OneRequestPerConnection
    )
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="live-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Listener:
    """A Socket.IO client on one namespace, keeping every event it receives in order."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client = socketio.Client(reconnection=False)
        self.received: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        self.client.on("*", self._record, namespace=namespace)

    def _record(self, event: str, data: Any = None) -> None:
        self.received.put((event, data))

    def connect(self, base: str, query: str, headers: dict[str, str] | None = None) -> Listener:
        self.client.connect(
            f"{base}?{query}",
            namespaces=[self.namespace],
            transports=["websocket"],
            headers=headers or {},
            wait_timeout=5,
        )
        return self

    def emit(self, event: str, data: Any = None) -> None:
        self.client.emit(event, data, namespace=self.namespace)

    def next(
        self, event: str, *, timeout: float = 5.0, where: Callable[[Any], bool] | None = None
    ) -> Any:
        """The next `event` (matching `where`), skipping others; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} within {timeout} s; got {self.seen}")
            try:
                name, data = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append((name, data))
            if name == event and (where is None or where(data)):
                return data

    def quiet(self, seconds: float) -> list[tuple[str, Any]]:
        """Everything received within `seconds` (an empty list when nothing came)."""
        time.sleep(seconds)
        got = []
        while not self.received.empty():
            got.append(self.received.get_nowait())
        self.seen.extend(got)
        return got

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()
        self.client.shutdown()


def refused(base: str, namespace: str, query: str, headers: dict[str, str] | None = None) -> bool:
    """Whether the server refuses this connection."""
    listener = Listener(namespace)
    try:
        listener.connect(base, query, headers)
    except socketio.exceptions.ConnectionError:
        return True
    finally:
        listener.close()
    return False
