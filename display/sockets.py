"""Socket.IO namespaces: `/board` (a room per centre), `/ticket` (a room per ticket and per
line, for the citizen's phone) and `/counter` (live queue counts for signed-in staff).

Every connection gets the full current state at once, and may ask for it again at any time
(`snapshot` on boards, `refresh` on phones and counters): a client that lost its network,
or slept, shows the truth again within seconds. Pushes after changes come from
display.bridge. Connection parameters go in the query string (or the `auth` payload);
a refused connection gets a short code: unknown_centre, unknown_ticket, unauthorized,
forbidden.

/board?centre=<code>
  server → `board` (core.floor.boards.board_snapshot) on connect, on `snapshot`, and (debounced)
           after any ticket change of the centre;
           `ticket_called` {label, counter, service, called_at, recall, sent_at} at once on
           every call and recall (`sent_at`: Unix seconds when the change was committed)
  client → `snapshot`; `ack` {sent_at} after a `ticket_called` (delivery-lag metric)
/ticket?ticket=<public_id>
  server → `ticket` (web.presenters.ticket_public) on connect, on `refresh`, and after any
           change of that ticket; `line_moved` {service} when its line moves (a ticket of the
           line called, no-show, cancelled, transferred away, or one issued ahead)
  client → `refresh` (after `line_moved`, with 0–2 s of random jitter; or on waking up)
/counter?centre=<code>   (a signed-in staff member who may act at the centre)
  server → `counts` {waiting: [{service_id, service, service_name, count}], generated_at}
           on connect, on `refresh`, and (debounced) after any ticket change of the centre
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room

from core.access.principals import STAFF_ROLES, may_act_at
from core.common.errors import NotFound
from core.common.text import has_controls
from core.common.timeutil import local_day
from core.floor import boards, tickets
from core.models import Centre
from core.places.directory import get_centre
from display.bridge import (
    BOARD,
    COUNTER,
    TICKET,
    board_room,
    bridge_of,
    counter_room,
    line_room,
    ticket_room,
)
from web.clock import clock
from web.extensions import db, socketio
from web.metrics import EVENT_LAG, SOCKET_CLIENTS
from web.presenters import ticket_public

# A lost client's `ack` may arrive late; beyond this it says nothing about delivery.
_MAX_LAG_SECONDS = 600.0


def _param(name: str, auth: Any) -> str:
    """A connection parameter from the query string (`?centre=…`), else the auth payload."""
    value = request.args.get(name)
    if value is None and isinstance(auth, dict):
        value = auth.get(name)
    # Socket.IO's handshake passes no Flask request guard: no code or id has a control character.
    if not isinstance(value, str) or has_controls(value):
        return ""
    return value.strip()


def _centre(code: str) -> Centre | None:
    return get_centre(db.session, code) if 0 < len(code) <= 16 else None


class _Throttle:
    """Per client: bursts of `burst` requests, then one per `interval` seconds; a client
    cannot make the server rebuild snapshots in a loop."""

    def __init__(self, burst: int = 5, interval: float = 1.0) -> None:
        self.burst, self.interval = burst, interval
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, sid: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._tokens.get(sid, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) / self.interval)
            allowed = tokens >= 1
            self._tokens[sid] = (tokens - 1 if allowed else tokens, now)
        return allowed

    def forget(self, sid: str) -> None:
        with self._lock:
            self._tokens.pop(sid, None)


class _LiveNamespace(Namespace):
    """Keeps the connected-clients gauge and what each client follows (sid → key)."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.following: dict[str, Any] = {}
        self.throttle = _Throttle()

    def _joined(self, key: Any) -> None:
        self.following[request.sid] = key  # type: ignore[attr-defined]
        SOCKET_CLIENTS.labels(namespace=self.namespace).inc()

    def on_disconnect(self, reason: Any = None) -> None:
        sid = request.sid  # type: ignore[attr-defined]
        self.throttle.forget(sid)
        if self.following.pop(sid, None) is not None:
            SOCKET_CLIENTS.labels(namespace=self.namespace).dec()

    def _followed(self) -> Any:
        """What this client follows, if it may ask again now."""
        sid = request.sid  # type: ignore[attr-defined]
        key = self.following.get(sid)
        return key if key is not None and self.throttle.allow(sid) else None


class BoardNamespace(_LiveNamespace):
    """A waiting-room board of one centre: `?centre=<code>`."""

    def on_connect(self, auth: Any = None) -> None:
        centre = _centre(_param("centre", auth))
        if centre is None:
            raise ConnectionRefusedError("unknown_centre")
        join_room(board_room(centre.code))
        self._joined(centre.id)
        self._send_board(centre)

    def on_snapshot(self, data: Any = None) -> None:
        centre_id = self._followed()
        centre = db.session.get(Centre, centre_id) if centre_id is not None else None
        if centre is not None:
            self._send_board(centre)

    def on_ack(self, data: Any = None) -> None:
        """The board got a `ticket_called`: how long it took from the commit."""
        sent_at = data.get("sent_at") if isinstance(data, dict) else None
        if isinstance(sent_at, int | float) and not isinstance(sent_at, bool):
            lag = time.time() - float(sent_at)
            if 0 <= lag <= _MAX_LAG_SECONDS:
                EVENT_LAG.labels(namespace=BOARD).observe(lag)

    def _send_board(self, centre: Centre) -> None:
        recent = bridge_of(current_app).recent
        emit("board", boards.board_snapshot(db.session, centre, now=clock(), recent=recent))


class TicketNamespace(_LiveNamespace):
    """A citizen's phone following one ticket: `?ticket=<public_id>`."""

    def on_connect(self, auth: Any = None) -> None:
        try:
            ticket = tickets.ticket_by_public_id(db.session, _param("ticket", auth))
        except NotFound:
            raise ConnectionRefusedError("unknown_ticket") from None
        join_room(ticket_room(ticket.public_id))
        join_room(line_room(ticket.service_id))
        self._joined(ticket.public_id)
        emit("ticket", ticket_public(db.session, ticket, now=clock()))

    def on_refresh(self, data: Any = None) -> None:
        public_id = self._followed()
        if public_id is None:
            return
        try:
            ticket = tickets.ticket_by_public_id(db.session, public_id)
        except NotFound:
            return
        emit("ticket", ticket_public(db.session, ticket, now=clock()))


class CounterNamespace(_LiveNamespace):
    """Live queue counts for a signed-in staff member at one centre: `?centre=<code>`."""

    def on_connect(self, auth: Any = None) -> None:
        if not current_user.is_authenticated or current_user.role not in STAFF_ROLES:
            raise ConnectionRefusedError("unauthorized")
        centre = _centre(_param("centre", auth))
        if centre is None:
            raise ConnectionRefusedError("unknown_centre")
        if not may_act_at(db.session, current_user, centre.id, local_day(clock())):
            raise ConnectionRefusedError("forbidden")
        join_room(counter_room(centre.code))
        self._joined(centre.id)
        emit("counts", boards.queue_counts(db.session, centre, now=clock()))

    def on_refresh(self, data: Any = None) -> None:
        centre_id = self._followed()
        centre = db.session.get(Centre, centre_id) if centre_id is not None else None
        if centre is not None:
            emit("counts", boards.queue_counts(db.session, centre, now=clock()))


def init_app(app: Flask) -> None:
    for namespace in (BoardNamespace(BOARD), TicketNamespace(TICKET), CounterNamespace(COUNTER)):
        SOCKET_CLIENTS.labels(namespace=namespace.namespace)
        socketio.on_namespace(namespace)
