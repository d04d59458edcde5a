"""Who may call which ticket endpoint: every endpoint × every kind of caller.

Kiosk tokens act only for their own centre; staff act at their centre, or where they are
dispatched today (a dispatch on another day counts for nothing); display tokens write
nothing; public endpoints answer anyone. Refusals are 401 without usable credentials and
403 with the wrong ones, always problem+json, and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.common.timeutil import local_day
from core.floor import tickets
from core.models import Appointment, Counter, Ticket, TicketSequence
from tests.conftest import both_databases
from tests.factories import (
    CCCD,
    PHONE,
    make_appointment,
    make_assignment,
    make_centre,
    make_device,
    make_field,
    make_procedure,
    make_service,
    make_staff,
    make_ticket,
    staff_token,
)
from web.db import transaction
from web.extensions import db
from web.settings import floor_rules

API = "/api/v1"

ACTORS = (
    "anonymous",
    "unknown_token",
    "kiosk_here",
    "kiosk_there",
    "display_here",
    "officer_here",
    "officer_there",
    "officer_dispatched_here",
    "manager_here",
    "operator",
)
UNAUTHENTICATED = {"anonymous", "unknown_token"}
EVERYONE = set(ACTORS)
KIOSK = {"kiosk_here"}
STAFF = {"officer_here", "officer_dispatched_here", "manager_here", "operator"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[SimpleNamespace], str]
    allowed: set[str]
    status: int  # the answer to an allowed caller, given `prepare`
    prepare: Callable[[SimpleNamespace], None] = lambda w: None
    body: Callable[[SimpleNamespace], dict] | None = None
    tags: tuple[str, ...] = field(default=())


# --- The world: two centres, their devices and staff -------------------------------------------


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


@pytest.fixture
def world(session, now):
    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    here = make_centre("26734", "Phường Bến Thành")
    there = make_centre("26740", "Phường Sài Gòn")
    w = SimpleNamespace(here=here, there=there, now=now)
    w.birth = make_procedure("1.001193", "Đăng ký khai sinh", field=civil)
    w.a = make_service(here, "A", fields=[civil], counters=1)
    w.b = make_service(here, "B", fields=[land], counters=1, name="Đất đai")
    make_service(there, "A", fields=[civil], counters=1)
    w.counter = here.counters[0]
    staff = {
        "officer_here": make_staff(here, role="officer"),
        "officer_there": make_staff(there, role="officer"),
        "officer_dispatched_here": make_staff(there, role="officer"),
        "manager_here": make_staff(here, role="manager"),
        "operator": make_staff(None, role="operator"),
    }
    make_assignment(staff["officer_dispatched_here"], here, local_day(now))
    # Dispatched here yesterday and tomorrow, not today: no right to act here today.
    make_assignment(staff["officer_there"], here, local_day(now) - timedelta(days=1))
    make_assignment(staff["officer_there"], here, local_day(now) + timedelta(days=1))
    w.staff = staff
    w.tokens = {name: staff_token(person) for name, person in staff.items()}
    w.tokens["kiosk_here"] = make_device(here)[1]
    w.tokens["kiosk_there"] = make_device(there)[1]
    w.tokens["display_here"] = make_device(here, "display")[1]
    w.tokens["unknown_token"] = "not-a-token-anyone-was-given"
    w.appointment = make_appointment(w.a, w.birth, now, phone="0987654321")
    w.ticket = make_ticket(here, now, service=w.a)
    session.commit()
    w.ticket_id = w.ticket.public_id
    return w


def hold(w, holder) -> None:
    """Seat `holder` at the counter (bypassing the checks the API makes)."""
    counter = db.session.get(Counter, w.counter.id)
    counter.is_open, counter.staff_id = True, holder.id
    db.session.commit()


def call_ticket(w, holder) -> None:
    hold(w, holder)
    with transaction():
        counter = db.session.get(Counter, w.counter.id)
        tickets.call_next(db.session, counter, now=w.now, rules=floor_rules(), staff_id=holder.id)


def serve_ticket(w, holder) -> None:
    call_ticket(w, holder)
    with transaction():
        ticket = tickets.ticket_by_public_id(db.session, w.ticket_id)
        tickets.start(db.session, ticket, now=w.now)


def with_holder(step: Callable) -> Callable[[SimpleNamespace], None]:
    """Prepare with the caller (when staff) at the counter, else the centre's own officer."""
    return lambda w: step(w, w.staff.get(w.actor) or w.staff["officer_here"])


ENDPOINTS = (
    Endpoint(
        "check-in",
        "POST",
        lambda w: f"/centres/{w.here.code}/check-ins",
        KIOSK,
        201,
        body=lambda w: {"code": w.appointment.code, "phone_last4": "4321"},
    ),
    Endpoint(
        "walk-in",
        "POST",
        lambda w: f"/centres/{w.here.code}/tickets",
        KIOSK,
        201,
        body=lambda w: {"service": "A", "priority": "elderly"},
    ),
    Endpoint("follow ticket", "GET", lambda w: f"/tickets/{w.ticket_id}", EVERYONE, 200),
    Endpoint(
        "remote ticket",
        "POST",
        lambda w: f"/centres/{w.here.code}/remote-tickets",
        EVERYONE,
        201,
        body=lambda w: {
            "procedure": w.birth.code,
            "full_name": "Nguyễn Văn An",
            "phone": PHONE,
            "citizen_id": CCCD,
            "consent": True,
        },
    ),
    Endpoint("counter", "GET", lambda w: f"/counters/{w.counter.id}", STAFF, 200),
    Endpoint("open", "POST", lambda w: f"/counters/{w.counter.id}/open", STAFF, 200),
    Endpoint(
        "close",
        "POST",
        lambda w: f"/counters/{w.counter.id}/close",
        STAFF,
        200,
        prepare=with_holder(hold),
    ),
    Endpoint(
        "call-next",
        "POST",
        lambda w: f"/counters/{w.counter.id}/call-next",
        STAFF,
        200,
        prepare=with_holder(hold),
    ),
    Endpoint(
        "recall",
        "POST",
        lambda w: f"/counters/{w.counter.id}/recall",
        STAFF,
        200,
        prepare=with_holder(call_ticket),
    ),
    Endpoint(
        "start",
        "POST",
        lambda w: f"/tickets/{w.ticket_id}/start",
        STAFF,
        200,
        prepare=with_holder(call_ticket),
    ),
    Endpoint(
        "complete",
        "POST",
        lambda w: f"/tickets/{w.ticket_id}/complete",
        STAFF,
        200,
        prepare=with_holder(serve_ticket),
    ),
    Endpoint(
        "no-show",
        "POST",
        lambda w: f"/tickets/{w.ticket_id}/no-show",
        STAFF,
        200,
        prepare=with_holder(call_ticket),
    ),
    Endpoint(
        "transfer",
        "POST",
        lambda w: f"/tickets/{w.ticket_id}/transfer",
        STAFF,
        200,
        prepare=with_holder(call_ticket),
        body=lambda w: {"service": "B"},
    ),
    Endpoint("queue", "GET", lambda w: f"/centres/{w.here.code}/queue", STAFF, 200),
)


def floor_state(session) -> tuple:
    state = tuple(
        tuple(map(tuple, session.execute(query).all()))
        for query in (
            select(Ticket.id, Ticket.status, Ticket.counter_id, Ticket.call_count),
            select(Counter.id, Counter.is_open, Counter.staff_id),
            select(Appointment.id, Appointment.status),
            select(TicketSequence.service_id, TicketSequence.last_number),
        )
    )
    session.rollback()
    return state


def expected(endpoint: Endpoint, actor: str) -> int:
    if actor in endpoint.allowed:
        return endpoint.status
    return 401 if actor in UNAUTHENTICATED else 403


def request(client, w, endpoint: Endpoint, actor: str):
    token = w.tokens.get(actor)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = endpoint.body(w) if endpoint.body else None
    return client.open(
        f"{API}{endpoint.path(w)}", method=endpoint.method, json=body, headers=headers
    )


CASES = [
    pytest.param(endpoint, actor, id=f"{endpoint.name}-{actor}")
    for endpoint in ENDPOINTS
    for actor in ACTORS
]


@pytest.mark.parametrize(("endpoint", "actor"), CASES)
def test_role_matrix(client, session, world, endpoint, actor):
    world.actor = actor
    endpoint.prepare(world)
    before = floor_state(session)
    response = request(client, world, endpoint, actor)
    want = expected(endpoint, actor)
    assert response.status_code == want, response.get_data(as_text=True)
    if want >= 400:
        body = response.get_json(force=True)
        assert response.mimetype == "application/problem+json"
        assert body["code"] == ("unauthorized" if want == 401 else "forbidden")
        assert floor_state(session) == before
    elif endpoint.method == "POST":
        assert floor_state(session) != before  # an allowed write did something


@both_databases
@pytest.mark.parametrize(
    "actor", ["officer_dispatched_here", "officer_there", "manager_here", "kiosk_there"]
)
def test_dispatch_and_centre_checks_on_both_databases(client, session, world, actor):
    """The dispatch lookup is SQL: the same answers on PostgreSQL."""
    world.actor = actor
    for name in ("call-next", "walk-in", "queue"):
        endpoint = next(e for e in ENDPOINTS if e.name == name)
        endpoint.prepare(world)
        response = request(client, world, endpoint, actor)
        assert response.status_code == expected(endpoint, actor), (name, response.get_json())


def test_the_matrix_covers_every_ticket_endpoint_in_the_openapi_document(client):
    paths = client.get(f"{API}/openapi.json").get_json()["paths"]
    ours = {
        (method.upper(), path.removeprefix(API))
        for path, operations in paths.items()
        for method in operations
        if method in {"get", "post"}
        and any(part in path for part in ("/tickets", "/counters", "/check-ins", "/queue"))
    }
    covered = {
        (e.method, e.path(_placeholders()).replace("{id}", "{counter_id}")) for e in ENDPOINTS
    }
    assert ours <= covered, ours - covered


def _placeholders() -> SimpleNamespace:
    return SimpleNamespace(
        here=SimpleNamespace(code="{code}"),
        counter=SimpleNamespace(id="{counter_id}"),
        ticket_id="{public_id}",
    )


def test_an_inactive_device_or_staff_token_is_unauthorized(client, session, world):
    from core.models import Device, Staff

    for device in session.scalars(select(Device)):
        device.active = False
    session.get(Staff, world.staff["officer_here"].id).active = False
    session.commit()
    walk_in = next(e for e in ENDPOINTS if e.name == "walk-in")
    assert request(client, world, walk_in, "kiosk_here").status_code == 401
    queue = next(e for e in ENDPOINTS if e.name == "queue")
    assert request(client, world, queue, "officer_here").status_code == 401
