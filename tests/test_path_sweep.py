"""Every route, every method it allows, with control characters in each path parameter and in
the query string: never a 5xx, a problem+json under /api, the error page elsewhere, and the
database unchanged.

The routes come from `app.url_map`, so a route added later is swept without a word here.
Requests carry credentials (an admin's session for pages, the right bearer token for the
API), so they get as far as the code behind authentication would let a real caller get.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.routing import Rule

from core.models import Appointment, Procedure, Slot, Ticket
from tests.conftest import both_databases
from tests.factories import (
    STAFF_PASSWORD,
    make_appointment,
    make_demo_city,
    make_device,
    make_staff,
    make_ticket,
    staff_token,
)

pytestmark = both_databases

PROBLEM = "application/problem+json"
CONTROLS = ("\x00", "\x01", "\n", "\r", "\x1b", "\x7f")
# Percent-encoded, as any client sends them, and raw where a client passes them on (urllib,
# and so the test client, drops a raw tab, CR or LF from a URL before it is sent).
BAD = (
    *(f"a{quote(ch, safe='')}b" for ch in CONTROLS),
    *(f"a{ch}b" for ch in CONTROLS if ch not in "\n\r"),
    "%00",
)
QUERY_BAD = BAD


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


@pytest.fixture
def city(session, now):
    centres = make_demo_city(now, days=2)
    here = centres[0]
    service = here.services[0]
    procedure = session.scalars(select(Procedure).order_by(Procedure.id)).first()
    admin = make_staff(None, role="admin")
    _, kiosk = make_device(here)
    ticket = make_ticket(here, now, service=service)
    appointment = make_appointment(service, procedure, now + timedelta(days=5))
    session.commit()
    slot = session.scalars(select(Slot).where(Slot.centre_id == here.id)).first()
    return SimpleNamespace(
        centre=here.code,
        procedure=procedure.code,
        counter=here.counters[0].id,
        field=procedure.field_id,
        slot=slot.id,
        ticket=ticket.public_id,
        booking=appointment.code,
        admin=admin,
        staff_token=staff_token(admin),
        kiosk_token=kiosk,
    )


def _real_value(rule: Rule, name: str, city) -> str:
    """A value of path parameter `name` that exists, so the other parameter is what fails."""
    path = rule.rule
    if name == "code":
        if "/appointments" in path or path.startswith("/api/v1/appointments"):
            return city.booking
        if path.startswith(("/procedures", "/api/v1/procedures")):
            return city.procedure
        return city.centre
    return {
        "centre_code": city.centre,
        "public_id": city.ticket,
        "counter_id": str(city.counter),
        "slot_id": str(city.slot),
        "field_id": str(city.field),
        "plan_id": "abc123",
        "name": "manifest.json",
        "filename": "app.css",
    }.get(name, "x")


def _url(rule: Rule, values: dict[str, str]) -> str:
    """The rule's path with `values` written in as they are (not escaped: the sweep's values
    are what the server must cope with)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], rule.rule)


_PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _parameters(rule: Rule) -> list[str]:
    """The rule's path parameters (not the defaults some endpoints pass their view)."""
    return _PLACEHOLDER.findall(rule.rule)


def requests_for(app: Flask, city) -> list[tuple[str, str]]:
    """(method, url) for every rule and method, each path parameter bad in turn, and the
    query string bad with every parameter real."""
    out = []
    for rule in app.url_map.iter_rules():
        names = _parameters(rule)
        real = {name: quote(_real_value(rule, name, city), safe="") for name in names}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for bad in BAD:
                for name in names:
                    out.append((method, _url(rule, {**real, name: bad})))
            for bad in QUERY_BAD:
                out.append((method, _url(rule, real) + f"?q={bad}&date=2026-12-0{bad}"))
    return out


def state(session) -> tuple:
    counts = tuple(
        session.scalar(select(func.count()).select_from(model)) for model in (Appointment, Ticket)
    )
    seats = session.scalar(select(func.coalesce(func.sum(Slot.booked), 0)))
    session.rollback()
    return (*counts, seats)


def _headers(url: str, city) -> dict[str, str]:
    if not url.startswith("/api/"):
        return {}
    kiosk = "/check-ins" in url or (url.endswith("/tickets") and "/centres/" in url)
    return {"Authorization": f"Bearer {city.kiosk_token if kiosk else city.staff_token}"}


def test_every_route_refuses_control_characters(app, client, session, city):
    signed_in = client.post(
        "/counter/login", data={"username": city.admin.username, "password": STAFF_PASSWORD}
    )
    assert signed_in.status_code == 303
    before = state(session)
    sweep = requests_for(app, city)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert len(rules) > 80 and len(sweep) > 1000  # the url_map, not a hand-made list
    failures = []
    for method, url in sweep:
        response = client.open(url, method=method, headers=_headers(url, city), data={})
        problem = response.mimetype == PROBLEM
        if not 400 <= response.status_code < 500 or url.startswith("/api/") != problem:
            failures.append(f"{method} {url!r}: {response.status_code} {response.mimetype}")
    assert not failures, "\n".join(failures[:40])
    assert state(session) == before
