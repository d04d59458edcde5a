"""From committed domain events to Socket.IO clients, mostly off the request's path.

A call is announced (`ticket_called`) by the thread that committed it, right after the
commit: that costs the calling request a few milliseconds per hundred boards and gets the
call to the waiting room without any hand-over. Everything else goes to one dispatcher
thread per process which, after a short quiet window that merges bursts, reads fresh
snapshots from the database and sends them to the rooms that changed (`board`, `counts`,
`ticket`, `line_moved`).

With XEPHANG_REDIS_URL set every emit is also published on Redis, so clients held by other
web processes get it. Processes that hold no clients (CLI commands, the scheduler) publish
through Flask-SocketIO's write-only emitter. Redis is only a messenger: when it is down,
local clients are still served, the outage is logged once, the listener keeps retrying
and boards resynchronise from the database on their next `snapshot`.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_socketio import SocketIO
from sqlalchemy import select

from core.common import events
from core.common.outages import Outage
from core.common.timeutil import iso
from core.floor import boards
from core.models import Centre, Counter, Service, Ticket
from display.message_queue import write_only_emitter
from web.clock import clock
from web.extensions import db, socketio
from web.presenters import ticket_public

log = logging.getLogger(__name__)

BOARD, TICKET, COUNTER = "/board", "/ticket", "/counter"
# Ticket changes that move the people behind in the line (a new ticket issued ahead of them,
# priority or transferred, says so in its event: `jumps_line`).
LINE_MOVES = {"called", "no_show", "cancelled", "transferred"}
_IDLE_SECONDS = 30.0


def board_room(centre_code: str) -> str:
    return f"board:{centre_code}"


def counter_room(centre_code: str) -> str:
    return f"counter:{centre_code}"


def ticket_room(public_id: str) -> str:
    return f"ticket:{public_id}"


def line_room(service_id: int) -> str:
    return f"line:{service_id}"


# --- the dispatcher ---------------------------------------------------------------------------


@dataclass
class _Dirty:
    """What changed in one quiet window, to refresh once each."""

    boards: set[int] = field(default_factory=set)  # centre ids
    tickets: set[str] = field(default_factory=set)  # public ids
    lines: set[int] = field(default_factory=set)  # service ids

    def __bool__(self) -> bool:
        return bool(self.boards or self.tickets or self.lines)


@dataclass
class _Drain:
    """Asks the dispatcher to send everything pending now and say when it is done."""

    done: threading.Event = field(default_factory=threading.Event)


class Bridge:
    """One per app and process: takes committed events, emits in a background thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.redis_url: str = app.config.get("REDIS_URL") or ""
        self.recent: int = app.config["BOARD_RECENT_CALLS"]
        self.debounce: float = app.config["BOARD_DEBOUNCE_MS"] / 1000
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._write_only: SocketIO | None = None
        # Static facts, read once: centre code, counter number, service prefix.
        self._centre_codes: dict[int, str] = {}
        self._counter_numbers: dict[int, int] = {}
        self._prefixes: dict[int, str] = {}
        self._db_outage = Outage(
            "Live update",
            "boards, phones and counters refresh on their next snapshot",
            log,
        )
        _bridges.add(self)

    # -- intake (the committing thread) --------------------------------------------------

    def submit(self, event: events.DomainEvent) -> None:
        if not event.name.startswith(("ticket.", "counter.")):
            return
        sent_at = time.time()
        # A call is announced from the thread that committed it, before its HTTP answer
        # goes out: boards hear it without waiting for the dispatcher, which may be busy
        # sending snapshots. Everything else (snapshots, phones) follows from the dispatcher.
        announced = event.name in ("ticket.called", "ticket.recalled") and self._announce_now(
            event, sent_at
        )
        self._queue.put((sent_at, event, announced))
        self._ensure_running()

    def _announce_now(self, event: events.DomainEvent, sent_at: float) -> bool:
        """Announce a call at once; False (the dispatcher then tries) when that failed."""
        try:
            self._announce(event.data, recall=_is_recall(event), sent_at=sent_at)
        except Exception:
            log.debug("announcing from the committing thread failed", exc_info=True)
            return False
        return True

    def drain(self, timeout: float = 5.0) -> bool:
        """Send everything handed over so far, now; False if not done within `timeout`."""
        with self._lock:
            if self._thread is None and self._queue.empty():
                return True
        request = _Drain()
        self._queue.put(request)
        self._ensure_running()
        return request.done.wait(timeout)

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="xephang-live-dispatcher", daemon=True
                )
                self._thread.start()

    # -- the dispatcher thread -----------------------------------------------------------

    def _run(self) -> None:
        with self.app.app_context():
            while True:
                try:
                    item = self._queue.get(timeout=_IDLE_SECONDS)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                self._window(item)

    def _window(self, item: Any) -> None:
        """Handle `item` and whatever follows within the debounce window, then refresh."""
        dirty = _Dirty()
        drains: list[_Drain] = []
        deadline = time.monotonic() + self.debounce
        while True:
            if isinstance(item, _Drain):
                drains.append(item)
                break
            self._guarded(self._take, item, dirty)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
        if dirty:
            self._guarded(self._refresh, dirty)
        for request in drains:
            request.done.set()

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._db_outage.failed(exc)
            log.debug("live update failed", exc_info=True)
        else:
            self._db_outage.recovered()
        finally:
            db.session.remove()

    def _take(self, item: tuple[float, events.DomainEvent, bool], dirty: _Dirty) -> None:
        sent_at, event, announced = item
        data = event.data
        kind = event.name.split(".", 1)[1]
        # Starting to serve a called ticket changes nothing a board or a counter shows: no
        # refresh, so the next call's announcement never queues behind a needless snapshot.
        if kind != "started":
            dirty.boards.add(data["centre_id"])
        if event.name.startswith("counter."):
            return
        dirty.tickets.add(data["public_id"])
        if kind in ("called", "recalled") and not announced:
            self._announce(data, recall=_is_recall(event), sent_at=sent_at)
        if kind in LINE_MOVES or (kind == "issued" and bool(data.get("jumps_line"))):
            dirty.lines.add(data["service_id"])

    def _announce(self, data: dict[str, Any], *, recall: bool, sent_at: float) -> None:
        code = self._centre_code(data["centre_id"])
        counter_id = data.get("counter_id")
        payload = {
            "label": data["label"],
            "counter": self._counter_number(counter_id) if counter_id else None,
            "service": self._prefix(data["service_id"]),
            "called_at": iso(datetime.fromisoformat(data["at"])),
            "recall": recall,
            "sent_at": sent_at,
        }
        self.emit("ticket_called", payload, BOARD, board_room(code))

    def _refresh(self, dirty: _Dirty) -> None:
        now = clock()
        for centre_id in sorted(dirty.boards):
            self._refresh_centre(centre_id, now)
        for public_id in sorted(dirty.tickets):
            if self._audience(TICKET, ticket_room(public_id)):
                ticket = db.session.scalars(
                    select(Ticket).where(Ticket.public_id == public_id)
                ).one_or_none()
                if ticket is not None:
                    body = ticket_public(db.session, ticket, now=now)
                    self.emit("ticket", body, TICKET, ticket_room(public_id))
        for service_id in sorted(dirty.lines):
            if self._audience(TICKET, line_room(service_id)):
                payload = {"service": self._prefix(service_id)}
                self.emit("line_moved", payload, TICKET, line_room(service_id))

    def _refresh_centre(self, centre_id: int, now: datetime) -> None:
        code = self._centre_code(centre_id)
        wants_board = self._audience(BOARD, board_room(code))
        wants_counts = self._audience(COUNTER, counter_room(code))
        if not (wants_board or wants_counts):
            return
        centre = db.session.get(Centre, centre_id)
        if centre is None:
            return
        if wants_board:
            snapshot = boards.board_snapshot(db.session, centre, now=now, recent=self.recent)
            self.emit("board", snapshot, BOARD, board_room(code))
        if wants_counts:
            counts = boards.queue_counts(db.session, centre, now=now)
            self.emit("counts", counts, COUNTER, counter_room(code))

    # -- sending -------------------------------------------------------------------------

    def refresh_centre(self, centre: Centre) -> None:
        """Push a fresh board and queue counts of `centre` now (CLI, scheduler)."""
        self._centre_codes[centre.id] = centre.code
        self._refresh_centre(centre.id, clock())

    def emit(self, event: str, data: Any, namespace: str, room: str) -> None:
        self._emitter().emit(event, data, namespace=namespace, to=room)

    def _emitter(self) -> Any:
        server = socketio.server
        if server is not None and (server.manager_initialized or not self.redis_url):
            return server
        # This process has never served a client (a CLI command, the scheduler, or a web
        # process before its first connection): publish for the processes that hold them.
        if self._write_only is None:
            self._write_only = write_only_emitter(self.redis_url)
        return self._write_only

    def _audience(self, namespace: str, room: str) -> bool:
        """Whether anyone may be in `room`: always with Redis (the clients may be elsewhere)."""
        server = socketio.server
        if self.redis_url or server is None:
            return bool(self.redis_url)
        rooms = server.manager.rooms.get(namespace, {})
        return bool(rooms.get(room))

    # -- static look-ups -----------------------------------------------------------------

    def _centre_code(self, centre_id: int) -> str:
        if centre_id not in self._centre_codes:
            self._centre_codes[centre_id] = db.session.scalar(
                select(Centre.code).where(Centre.id == centre_id)
            )
        return self._centre_codes[centre_id]

    def _counter_number(self, counter_id: int) -> int:
        if counter_id not in self._counter_numbers:
            self._counter_numbers[counter_id] = db.session.scalar(
                select(Counter.number).where(Counter.id == counter_id)
            )
        return self._counter_numbers[counter_id]

    def _prefix(self, service_id: int) -> str:
        if service_id not in self._prefixes:
            self._prefixes[service_id] = db.session.scalar(
                select(Service.prefix).where(Service.id == service_id)
            )
        return self._prefixes[service_id]


def _is_recall(event: events.DomainEvent) -> bool:
    return event.name == "ticket.recalled" or bool(event.data.get("recall"))


# --- wiring -----------------------------------------------------------------------------------

EXTENSION_KEY = "xephang_live_bridge"
_bridges: weakref.WeakSet[Bridge] = weakref.WeakSet()
_subscribe_lock = threading.Lock()
_subscribed = False


def bridge_of(app: Flask) -> Bridge:
    return app.extensions[EXTENSION_KEY]


def _deliver(event: events.DomainEvent) -> None:
    """Every committed event goes to the bridge of the app that committed it."""
    if not has_app_context():
        return
    bridge = current_app.extensions.get(EXTENSION_KEY)
    if bridge is not None:
        bridge.submit(event)


def _drain_all() -> None:
    """At exit (a CLI command, a stopping worker): send what is still pending."""
    for bridge in list(_bridges):
        bridge.drain(timeout=3.0)


def init_app(app: Flask) -> None:
    global _subscribed
    app.extensions[EXTENSION_KEY] = Bridge(app)
    with _subscribe_lock:
        if not _subscribed:
            # Once per process: tests build many apps, and each event must go out once.
            events.subscribe("*", _deliver)
            atexit.register(_drain_all)
            _subscribed = True
