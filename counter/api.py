"""Counter API: open and close counters, call, serve and transfer tickets, see the queue.

For staff (officer, manager, operator, admin) with a bearer staff token or a signed-in
session, acting at their centre or the centre they are dispatched to today. Calling and
recalling happen at a counter the officer holds; a ticket at a counter is its officer's
(a manager may step in). Only these answers carry a citizen's name, for the officer's
screen; the queue overview carries labels only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, g
from sqlalchemy.orm import Session

from core.access.principals import STAFF_ROLES
from core.common.errors import Conflict, NotFound
from core.common.timeutil import iso, local_day
from core.floor import counters, floor_fast, tickets
from core.models import Centre, Counter, Service, Staff, Ticket
from core.places.directory import get_centre
from counter import schemas as s
from web.api import ApiBlueprint, Problem, json_response, secured, without_rate_limits
from web.auth import require
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.presenters import ticket_public
from web.settings import floor_rules

blp = ApiBlueprint(
    "counter_api",
    __name__,
    url_prefix="/api/v1",
    description="Counters: calling and serving tickets",
)
staff_only = require(roles=STAFF_ROLES)
without_rate_limits(blp)  # staff calls only (token or signed-in session)
# Ids are 32-bit integers in the database: a larger one can only be unknown.
_MAX_ID = 2**31 - 1
_PRIVATE = {"Cache-Control": "private, no-store"}

_AUTH_ERRORS = (
    (401, "No or unknown token, or not signed in"),
    (403, "Not staff acting at this centre today (device tokens are refused)"),
)


def _documented(*extra: tuple[int, str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the auth refusals and `extra` problem answers, and the bearer requirement."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for status, description in (*_AUTH_ERRORS, *extra):
            func = blp.alt_response(status, schema=Problem, description=description)(func)
        return blp.doc(**secured())(func)

    return decorate


def me() -> Staff:
    return g.actor.staff


def _counter_id(counter_id: int) -> int:
    if counter_id > _MAX_ID:
        raise NotFound("counter_not_found")
    return counter_id


# --- Presenting ---------------------------------------------------------------------------------


def officer_ticket(session: Session, ticket: Ticket, *, now: datetime) -> dict[str, Any]:
    """The ticket for the officer's screen: public fields, procedure, appointment, name."""
    body = ticket_public(session, ticket, now=now)
    appointment = ticket.appointment
    name = (appointment.full_name if appointment is not None else ticket.contact_name) or None
    target = session.get(Counter, ticket.target_counter_id) if ticket.target_counter_id else None
    body.update(
        procedure_name=ticket.procedure.name if ticket.procedure else None,
        started_at=iso(ticket.started_at),
        call_count=ticket.call_count,
        target_counter=target.number if target else None,
        appointment=(
            {"code": appointment.code, "starts_at": iso(appointment.starts_at)}
            if appointment is not None
            else None
        ),
        citizen={"full_name": name} if name else None,
    )
    return body


def officer_view(view: floor_fast.TicketView) -> dict[str, Any]:
    """`officer_ticket` of a ticket at a counter (called or served), from plain values."""
    return {
        "public_id": view.public_id,
        "label": view.label,
        "centre": view.centre_code,
        "centre_name": view.centre_name,
        "service": view.service_prefix,
        "service_name": view.service_name,
        "procedure": view.procedure_code,
        "source": view.source.value,
        "priority": view.priority.value,
        "status": view.status.value,
        "queue_time": iso(view.queue_time),
        "issued_at": iso(view.issued_at),
        "called_at": iso(view.called_at),
        "counter": view.counter_number,
        "position": 0,
        "eta_minutes": None,
        "procedure_name": view.procedure_name,
        "started_at": iso(view.started_at),
        "call_count": view.call_count,
        "target_counter": view.target_counter_number,
        "appointment": (
            {"code": view.appointment_code, "starts_at": iso(view.appointment_starts_at)}
            if view.appointment_code is not None
            else None
        ),
        "citizen": {"full_name": view.citizen_name} if view.citizen_name else None,
    }


def _on_postgresql() -> bool:
    """Calling and starting run from plain values there (core.floor.floor_fast.call_next_at, start_at)."""
    return db.engine.dialect.name == "postgresql"


def _envelope(session: Session, ticket: Ticket, now: datetime) -> dict[str, Any]:
    # Built inside the transaction, from what it already holds: nothing is read back after
    # commit (an error at commit still answers with a problem, not this body).
    return {"ticket": officer_ticket(session, ticket, now=now)}


def counter_state(session: Session, counter: Counter, *, now: datetime) -> dict[str, Any]:
    current = tickets.current_ticket(session, counter)
    queues = counters.waiting_at(session, counter, day=local_day(now))
    officer = counter.staff
    return {
        "id": counter.id,
        "number": counter.number,
        "name": counter.name,
        "centre": counter.centre.code,
        "is_open": counter.is_open,
        "officer": {"id": officer.id, "full_name": officer.full_name} if officer else None,
        "services": [service.prefix for service in counter.services],
        "current": officer_ticket(session, current, now=now) if current else None,
        "waiting": [
            {
                "service": q.service.prefix,
                "name": q.service.name,
                "waiting": q.waiting,
                "priority": q.priority,
                "next": [label for label, _ in q.next_labels],
            }
            for q in queues
        ],
    }


def _state(counter: Counter, now: datetime) -> Response:
    return json_response(counter_state(db.session, counter, now=now), 200, _PRIVATE)


def _queue_body(centre: Centre, snapshot: tickets.QueueSnapshot, now: datetime) -> dict[str, Any]:
    numbers = {c.id: c.number for c in centre.counters}
    open_for: dict[int, int] = {}
    for c in centre.counters:
        for service in c.services if c.is_open and c.active else ():
            open_for[service.id] = open_for.get(service.id, 0) + 1
    services = [
        {
            "service": service.prefix,
            "name": service.name,
            "waiting": len(snapshot.waiting.get(service.id, [])),
            "counters_open": open_for.get(service.id, 0),
            "tickets": [
                {
                    "label": t.label,
                    "priority": t.priority.value,
                    "source": t.source.value,
                    "queue_time": iso(t.queue_time),
                    "target_counter": numbers.get(t.target_counter_id or 0),
                }
                for t in snapshot.waiting.get(service.id, [])
            ],
        }
        for service in centre.services
        if service.active
    ]
    at = snapshot.at_counters
    counter_rows = [
        {
            "number": c.number,
            "is_open": c.is_open,
            "label": at[c.id].label if c.id in at else None,
            "status": at[c.id].status.value if c.id in at else None,
        }
        for c in centre.counters
        if c.active
    ]
    return {
        "centre": centre.code,
        "generated_at": iso(now),
        "services": services,
        "counters": counter_rows,
    }


# --- Counters -----------------------------------------------------------------------------------


@blp.route("/counters/<int:counter_id>")
@staff_only
@blp.response(200, s.CounterState)
@_documented((404, "Unknown counter"))
def get_counter(counter_id: int):
    """The counter: who holds it, the ticket at it (with the citizen's name), the waiting lines."""
    now = clock()
    counter = counters.counter_for(db.session, _counter_id(counter_id), me(), day=local_day(now))
    return _state(counter, now)


@blp.route("/counters/<int:counter_id>/open", methods=["POST"])
@staff_only
@blp.response(200, s.CounterState, description="Open, held by the caller")
@_documented(
    (404, "Unknown counter"),
    (409, "counter_taken (another officer holds it), busy_elsewhere (a ticket in hand there)"),
)
def open_counter(counter_id: int):
    """Sit at a counter: it opens under the caller's name (their other counters close)."""
    now, staff = clock(), me()
    with transaction() as session:
        counter = counters.counter_for(session, _counter_id(counter_id), staff, day=local_day(now))
        counters.open_counter(session, counter, staff, now=now)
    return _state(counter, now)


@blp.route("/counters/<int:counter_id>/close", methods=["POST"])
@staff_only
@blp.response(200, s.CounterState, description="Closed")
@_documented(
    (404, "Unknown counter"),
    (409, "counter_not_yours (an officer may close only their own), counter_has_ticket"),
)
def close_counter(counter_id: int):
    """Close a counter: its officer may, and so may a manager, operator or admin."""
    now, staff = clock(), me()
    with transaction() as session:
        counter = counters.counter_for(session, _counter_id(counter_id), staff, day=local_day(now))
        counters.close_counter(session, counter, staff, now=now)
    return _state(counter, now)


@blp.route("/counters/<int:counter_id>/call-next", methods=["POST"])
@staff_only
@blp.response(200, s.TicketEnvelope, description="The ticket called to this counter")
@blp.alt_response(204, description="Nobody waits for this counter's services")
@_documented(
    (404, "Unknown counter"),
    (
        409,
        "counter_closed, counter_not_yours, counter_busy (a called ticket is not started, "
        "recalled or marked no-show yet)",
    ),
)
def call_next(counter_id: int):
    """Call the next ticket of the merged queue to the caller's counter.

    Priority tickets first (interleaved so others move too), then the earliest queue time.
    A ticket still being served here is completed first.
    """
    now = clock()
    if _on_postgresql():
        actor = g.actor.principal
        with transaction() as session:
            held = floor_fast.lock_held_counter(
                session, _counter_id(counter_id), actor, day=local_day(now)
            )
            view = floor_fast.call_next_at(
                session, held, now=now, rules=floor_rules(), staff_id=actor.id
            )
            body = {"ticket": officer_view(view)} if view is not None else None
    else:
        staff = me()
        with transaction() as session:
            counter = counters.held_counter(
                session, _counter_id(counter_id), staff, day=local_day(now), lock=True
            )
            ticket = tickets.call_next(
                session, counter, now=now, rules=floor_rules(), staff_id=staff.id
            )
            body = _envelope(session, ticket, now) if ticket is not None else None
    if body is None:
        return Response(status=204, headers=_PRIVATE)
    return json_response(body, 200, _PRIVATE)


@blp.route("/counters/<int:counter_id>/recall", methods=["POST"])
@staff_only
@blp.response(200, s.TicketEnvelope, description="Called again (no-show after the last call)")
@_documented(
    (404, "Unknown counter"),
    (409, "counter_closed, counter_not_yours, nothing_to_recall"),
)
def recall(counter_id: int):
    """Call the counter's ticket once more; past the configured calls it becomes a no-show."""
    now, staff = clock(), me()
    with transaction() as session:
        counter = counters.held_counter(session, _counter_id(counter_id), staff, day=local_day(now))
        ticket = tickets.recall(session, counter, now=now, rules=floor_rules(), staff_id=staff.id)
        body = _envelope(session, ticket, now)
    return json_response(body, 200, _PRIVATE)


# --- Tickets ------------------------------------------------------------------------------------


def _act(public_id: str, action: Callable[..., None]) -> Response:
    now, staff = clock(), me()
    with transaction() as session:
        ticket = tickets.ticket_for_staff(session, public_id, staff, now=now)
        action(session, ticket, now=now, staff_id=staff.id)
        body = _envelope(session, ticket, now)
    return json_response(body, 200, _PRIVATE)


_TICKET_ERRORS = (
    (404, "Unknown ticket"),
    (409, "ticket_wrong_state (with status), counter_not_yours (another officer's counter)"),
)


@blp.route("/tickets/<public_id>/start", methods=["POST"])
@staff_only
@blp.response(200, s.TicketEnvelope, description="Serving")
@_documented(*_TICKET_ERRORS)
def start_ticket(public_id: str):
    """The citizen came to the counter: called → serving."""
    if not _on_postgresql():
        return _act(public_id, tickets.start)
    now = clock()
    # One statement (or a read and one conditional write): see floor_fast.start_at.
    with transaction(single_write=True) as session:
        view = floor_fast.start_at(session, public_id, g.actor.principal, now=now)
        body = {"ticket": officer_view(view)}
    return json_response(body, 200, _PRIVATE)


@blp.route("/tickets/<public_id>/complete", methods=["POST"])
@staff_only
@blp.response(200, s.TicketEnvelope, description="Done")
@_documented(*_TICKET_ERRORS)
def complete_ticket(public_id: str):
    """Serving → done (its appointment too)."""
    return _act(public_id, tickets.complete)


@blp.route("/tickets/<public_id>/no-show", methods=["POST"])
@staff_only
@blp.response(200, s.TicketEnvelope, description="No-show")
@_documented(*_TICKET_ERRORS)
def no_show_ticket(public_id: str):
    """Called (or waiting) but never came: no-show (its appointment too)."""
    return _act(public_id, tickets.no_show)


def _transfer_target(session: Session, ticket: Ticket, body: dict[str, Any]) -> dict[str, Any]:
    """{to_service | to_counter | to_centre: object} from a prefix, a number or a code."""
    home = ticket.centre
    if body.get("service"):
        wanted = body["service"].strip().upper()
        service: Service | None = next(
            (x for x in home.services if x.prefix == wanted and x.active), None
        )
        if service is None:
            raise Conflict("transfer_target_not_found", field="service")
        return {"to_service": service}
    if body.get("counter") is not None:
        found = next((c for c in home.counters if c.number == body["counter"] and c.active), None)
        if found is None:
            raise Conflict("transfer_target_not_found", field="counter")
        if found.id == ticket.counter_id:
            raise Conflict("transfer_same_counter", field="counter")
        return {"to_counter": found}
    centre = get_centre(session, body["centre"]) if len(body["centre"]) <= 16 else None
    if centre is None or not centre.active:
        raise Conflict("transfer_target_not_found", field="centre")
    return {"to_centre": centre}


@blp.route("/tickets/<public_id>/transfer", methods=["POST"])
@staff_only
@blp.arguments(s.TransferBody)
@blp.response(200, s.TicketEnvelope, description="The new ticket, keeping the queue time")
@_documented(
    (404, "Unknown ticket"),
    (
        409,
        "ticket_wrong_state, counter_not_yours, transfer_target_not_found, "
        "transfer_same_counter, procedure_not_taken (at the other centre)",
    ),
    (422, "Not exactly one of service, counter, centre"),
)
def transfer_ticket(body: dict[str, Any], public_id: str):
    """Send the citizen to another line, counter or centre without losing their place.

    The ticket is closed as transferred and a new one (new label) keeps its queue time and
    priority; sent to a counter, only that counter will call it.
    """
    now, staff = clock(), me()
    with transaction() as session:
        ticket = tickets.ticket_for_staff(session, public_id, staff, now=now)
        target = _transfer_target(session, ticket, body)
        moved = tickets.transfer(session, ticket, now=now, staff_id=staff.id, **target)
        body = _envelope(session, moved, now)
    return json_response(body, 200, _PRIVATE)


# --- Centre queue -------------------------------------------------------------------------------


@blp.route("/centres/<code>/queue")
@staff_only
@blp.response(200, s.CentreQueue)
@_documented((404, "Unknown centre"))
def centre_queue(code: str):
    """Who waits in each line of the centre (labels only) and what each counter is doing."""
    centre = get_centre(db.session, code) if len(code) <= 16 else None
    if centre is None or not centre.active:
        raise NotFound("centre_not_found", field="code")
    g.actor.require_centre(centre.id)
    now = clock()
    snapshot = tickets.queue_snapshot(db.session, centre, now=now)
    return json_response(_queue_body(centre, snapshot, now), 200, _PRIVATE)
