"""The lean hot paths (walk-in, call-next, start, booking) keep every rule of the paths they
replace: tokens are looked up once per few seconds yet revocation still bites, bodies read by
hand refuse exactly what the documented schemas refuse, and calling or starting on
PostgreSQL (one statement each) leaves the same tickets, audit rows and streaks as the
model-based path on SQLite.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import marshmallow as ma
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from booking import schemas as booking_schemas
from core.access import principals as auth
from core.access import staff_tokens
from core.common.errors import InvalidInput
from core.floor import floor_fast, tickets
from core.models import (
    Appointment,
    Counter,
    Device,
    Staff,
    Ticket,
    TicketEvent,
)
from kiosk import schemas as kiosk_schemas
from tests.conftest import both_databases
from tests.factories import (
    make_appointment,
    make_centre,
    make_device,
    make_field,
    make_procedure,
    make_service,
    make_staff,
    staff_token,
)
from web.api import field_codes
from web.db import transaction
from web.extensions import db
from web.settings import floor_rules

API = "/api/v1"


@pytest.fixture
def clock(now):
    return SimpleNamespace(now=now)


@pytest.fixture
def app_config(clock):
    return {"CLOCK": lambda: clock.now, "PRIORITY_INTERLEAVE": 2}


@pytest.fixture
def floor(session, now):
    civil = make_field("Hộ tịch")
    centre = make_centre("26734", "Phường Bến Thành")
    floor = SimpleNamespace(
        centre=centre,
        birth=make_procedure("1.001193", "Đăng ký khai sinh", field=civil),
        a=make_service(centre, "A", fields=[civil], counters=2),
    )
    floor.c1, floor.c2 = centre.counters
    floor.officer_row = make_staff(centre, "officer", full_name="Phạm Thị Quầy")
    floor.officer = staff_token(floor.officer_row)
    floor.kiosk_row, floor.kiosk = make_device(centre)
    session.commit()
    return floor


def post(client, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"{API}{path}", json=body, headers=headers)


def walk_in(client, floor, body):
    return post(client, f"/centres/{floor.centre.code}/tickets", floor.kiosk, body)


# --- Bearer tokens: cached for seconds, revoked at once --------------------------------------


@both_databases
def test_a_device_switched_off_in_this_process_is_refused_at_once(client, session, floor):
    assert walk_in(client, floor, {"service": "A"}).status_code == 201  # token now cached
    session.get(Device, floor.kiosk_row.id).active = False
    session.commit()
    assert walk_in(client, floor, {"service": "A"}).status_code == 401


@both_databases
def test_a_token_revoked_by_another_process_bites_within_the_cache_time(
    app, client, session, floor, monkeypatch
):
    monkeypatch.setattr(auth._principals, "ttl", 0.3)
    assert walk_in(client, floor, {"service": "A"}).status_code == 201
    # Another process (the CLI, another web instance) switches the kiosk off: this process's
    # ORM never sees the change.
    other = sa.create_engine(db.engine.url)
    with other.begin() as conn:
        conn.execute(sa.update(Device.__table__).values(active=False))
    other.dispose()
    assert walk_in(client, floor, {"service": "A"}).status_code == 201  # still cached
    time.sleep(0.35)
    assert walk_in(client, floor, {"service": "A"}).status_code == 401


def test_a_revoked_staff_token_is_refused_at_once_and_the_others_stay(client, session, floor, now):
    path = f"/counters/{floor.c1.id}/open"
    with transaction() as s:
        second, _ = staff_tokens.issue_staff_token(
            s, s.get(Staff, floor.officer_row.id), now=now, days=1
        )
    assert post(client, path, floor.officer).status_code == 200  # both cached now
    assert post(client, path, second).status_code == 200
    with transaction() as s:
        assert staff_tokens.revoke_staff_token(s, floor.officer)
    assert post(client, path, floor.officer).status_code == 401
    assert post(client, path, second).status_code == 200


def test_unknown_tokens_are_not_remembered(client, floor):
    before = len(auth._principals._entries)
    for n in range(50):
        assert walk_in_with(client, floor, f"guess-{n}").status_code == 401
    assert len(auth._principals._entries) == before


def walk_in_with(client, floor, token):
    return post(client, f"/centres/{floor.centre.code}/tickets", token, {"service": "A"})


def test_the_token_cache_is_bounded(app, session, floor):
    cache = auth._TokenCache(ttl=60.0, limit=10)
    principal = auth.Principal(1, None)
    for n in range(25):
        cache.lookup(session, n, lambda: principal)
        assert len(cache._entries) <= 10
    assert cache.lookup(session, 24, lambda: None) is principal  # kept while fresh


# --- Bodies read by hand refuse what the documented schemas refuse ---------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "A", "a", " b", "AB", "ABC", "none", "elderly", "x\x00", "\ud800"]),
    # Each length limit of the two bodies, and one past it.
    st.sampled_from([2, 3, 20, 21, 32, 33, 120, 121, 254, 255]).map(lambda n: "7" * n),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=2), st.just({}))


def _bodies(fields: list[str]):
    return st.dictionaries(st.sampled_from([*fields, "other"]), _values, max_size=len(fields))


def _schema_outcome(schema: ma.Schema, data: dict):
    try:
        return "ok", schema.load(data)
    except ma.ValidationError as err:
        return "invalid", field_codes({"json": err.messages})


def _reader_outcome(read, data: dict):
    try:
        return "ok", read(data)
    except InvalidInput as err:
        return "invalid", err.errors


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(data=_bodies(["procedure", "service", "priority"]))
def test_walk_in_body_reader_agrees_with_its_schema(data):
    kind, expected = _schema_outcome(kiosk_schemas.WalkInBody(), data)
    got_kind, got = _reader_outcome(kiosk_schemas.read_walk_in, data)
    assert got_kind == kind
    if kind == "ok":
        assert (got.procedure, got.service, got.priority.value) == (
            expected.get("procedure") or None,
            expected.get("service") or None,
            expected["priority"],
        )
    else:
        assert got == expected


BOOKING_FIELDS = ["slot_id", "procedure", "full_name", "phone", "citizen_id", "email", "consent"]
_valid_booking = {
    "slot_id": 7,
    "procedure": "1.001193",
    "full_name": "Nguyễn Thị Lan",
    "phone": "0912345678",
    "citizen_id": "079185000001",
    "consent": True,
}


@FUZZ
@given(data=_bodies(BOOKING_FIELDS), keep=st.sets(st.sampled_from(BOOKING_FIELDS)))
def test_booking_body_reader_agrees_with_its_schema(data, keep):
    # Mostly valid bodies with a few fields fuzzed, and wholly fuzzed ones.
    body = {**{k: v for k, v in _valid_booking.items() if k in keep}, **data}
    kind, expected = _schema_outcome(booking_schemas.BookingBody(), body)
    got_kind, got = _reader_outcome(booking_schemas.read_booking, body)
    assert got_kind == kind
    if kind == "ok":
        assert {k: v for k, v in got.items() if k in expected or v is not None} == expected
    else:
        assert got == expected


@pytest.mark.parametrize("raw", [b"null", b"[]", b'"A"', b"3", b"{", b"\xff", b"[[[[", b""])
def test_a_body_that_is_no_object_gets_the_answer_the_schema_path_gives(client, floor, raw):
    """Walk-ins read by hand, check-ins still through the schema: the same answers."""
    headers = {"Authorization": f"Bearer {floor.kiosk}", "Content-Type": "application/json"}
    by_hand = client.post(f"{API}/centres/26734/tickets", data=raw, headers=headers)
    by_schema = client.post(f"{API}/centres/26734/check-ins", data=raw, headers=headers)
    assert by_hand.status_code == by_schema.status_code
    hand, schema = by_hand.get_json(), by_schema.get_json()
    assert hand["code"] == schema["code"]
    if raw:  # an empty body lacks each endpoint's own required fields
        assert hand.get("errors") == schema.get("errors")


def test_hand_read_bodies_are_still_documented(client):
    paths = client.get(f"{API}/openapi.json").get_json()["paths"]
    for path, schema in (
        ("/api/v1/centres/{code}/tickets", "WalkInBody"),
        ("/api/v1/appointments", "BookingBody"),
    ):
        assert paths[path]["post"]["requestBody"] == {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }


# --- The same floor, either path ------------------------------------------------------------


def _floor_record(session) -> dict:
    """Tickets, audit rows, appointments and counters, without ids or random values."""
    session.expire_all()
    labels = {t.id: t.label for t in session.scalars(select(Ticket))}
    return {
        "tickets": sorted(
            (t.label, t.status.value, t.call_count, t.counter_id is not None, t.eta_low_minutes)
            for t in session.scalars(select(Ticket))
        ),
        "events": sorted(
            (labels[e.ticket_id], e.kind, e.staff_id is not None, e.counter_id, json.dumps(e.data))
            for e in session.scalars(select(TicketEvent))
        ),
        "appointments": sorted(a.status.value for a in session.scalars(select(Appointment))),
        "streaks": sorted((c.number, c.priority_streak) for c in session.scalars(select(Counter))),
    }


@both_databases
def test_a_morning_at_the_counter_leaves_the_same_record_on_either_path(
    client, session, floor, clock, now
):
    appointment = make_appointment(floor.a, floor.birth, now + timedelta(minutes=5))
    session.commit()
    issued = [
        walk_in(client, floor, body).get_json()
        for body in (
            {"service": "A"},
            {"service": "A", "priority": "elderly"},
            {"procedure": floor.birth.code, "priority": "pregnant"},
            {"service": "a", "priority": "disability"},
            {"service": "A"},
        )
    ]
    assert [t["label"] for t in issued] == ["A001", "A002", "A003", "A004", "A005"]
    assert [t["position"] for t in issued] == [0, 0, 1, 2, 4]
    with transaction() as s:  # the appointment checks in: queued at 08:05
        tickets.check_in(
            s,
            s.get(Appointment, appointment.id),
            s.merge(floor.centre),
            now=now,
            rules=floor_rules(),
        )
    clock.now = now + timedelta(minutes=10)
    c1 = f"/counters/{floor.c1.id}"
    assert post(client, f"{c1}/open", floor.officer).status_code == 200
    called = []
    while (response := post(client, f"{c1}/call-next", floor.officer)).status_code == 200:
        ticket = response.get_json()["ticket"]
        called.append((ticket["label"], ticket["citizen"], ticket["counter"]))
        started = post(client, f"/tickets/{ticket['public_id']}/start", floor.officer)
        assert started.get_json()["ticket"]["status"] == "serving"
        assert started.get_json()["ticket"]["started_at"] == "2026-12-07T08:10:00+07:00"
    assert response.status_code == 204
    # Priority twice in a row, then a regular ticket's turn (interleave 2).
    assert called == [
        ("A002", None, 1),
        ("A003", None, 1),
        ("A001", None, 1),
        ("A004", None, 1),
        ("A005", None, 1),
        ("A006", {"full_name": "Trần Thị Bình"}, 1),
    ]
    record = _floor_record(session)
    assert record["tickets"] == [
        ("A001", "done", 1, True, 0),
        ("A002", "done", 1, True, 0),
        ("A003", "done", 1, True, 4),
        ("A004", "done", 1, True, 10),
        ("A005", "done", 1, True, 23),
        ("A006", "done", 1, True, 29),
    ]
    assert record["appointments"] == ["done"]
    assert record["streaks"] == [(1, 0), (2, 0)]
    kinds = [(label, kind) for label, kind, *_ in record["events"]]
    assert kinds == sorted(
        [(f"A00{n}", kind) for n in range(1, 7) for kind in ("issued", "called", "started")]
        + [(f"A00{n}", "completed") for n in range(1, 7)]
    )
    for label, kind, by_staff, counter_id, data in record["events"]:
        assert by_staff == (kind != "issued"), (label, kind)
        assert counter_id == (None if kind == "issued" else floor.c1.id), (label, kind)
        if kind == "called":
            assert json.loads(data) == {"recall": False}
        elif kind in ("started", "completed"):
            assert json.loads(data) == {}


@both_databases
def test_a_walk_in_stores_the_wait_it_announced(client, session, floor, now):
    assert post(client, f"/counters/{floor.c1.id}/open", floor.officer).status_code == 200
    answers = [walk_in(client, floor, {"service": "A"}).get_json() for _ in range(4)]
    session.expire_all()
    stored = {t.public_id: t for t in session.scalars(select(Ticket))}
    for answer in answers:
        ticket = stored[answer["public_id"]]
        assert answer["eta_minutes"] == {
            "low": ticket.eta_low_minutes,
            "high": ticket.eta_high_minutes,
        }
        assert answer["queue_time"] == answer["issued_at"] == "2026-12-07T08:00:00+07:00"
    assert [a["position"] for a in answers] == [0, 1, 2, 3]
    issued = session.scalars(select(TicketEvent).where(TicketEvent.kind == "issued")).all()
    assert [e.data for e in issued] == [{"source": "walk_in"}] * 4


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_officer_starts_at_their_counter_in_one_statement(client, session, floor):
    walk_in(client, floor, {"service": "A"})
    walk_in(client, floor, {"service": "A"})
    other = staff_token(make_staff(floor.centre, "other", full_name="Lê Văn Khác"))
    session.commit()
    assert post(client, f"/counters/{floor.c1.id}/open", floor.officer).status_code == 200
    assert post(client, f"/counters/{floor.c2.id}/open", other).status_code == 200
    first = post(client, f"/counters/{floor.c1.id}/call-next", floor.officer).get_json()["ticket"]
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        started = post(client, f"/tickets/{first['public_id']}/start", floor.officer)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert started.status_code == 200
    assert len(statements) == 1 and statements[0].lstrip().startswith("WITH started AS")
    body = started.get_json()["ticket"]
    assert (body["status"], body["label"], body["counter"]) == ("serving", "A001", 1)
    # Not at one's own counter, or not called: refused as before, nothing written.
    second = post(client, f"/counters/{floor.c2.id}/call-next", other).get_json()["ticket"]
    refused = post(client, f"/tickets/{second['public_id']}/start", floor.officer)
    assert refused.status_code == 409 and refused.get_json()["code"] == "counter_not_yours"
    again = post(client, f"/tickets/{first['public_id']}/start", floor.officer)
    assert again.status_code == 409 and again.get_json()["code"] == "ticket_wrong_state"
    session.expire_all()
    kinds = session.scalars(select(TicketEvent.kind).order_by(TicketEvent.id)).all()
    assert kinds == ["issued", "issued", "called", "started", "called"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_ticket_changed_between_read_and_start_is_refused_not_overwritten(
    client, session, floor, monkeypatch
):
    # The centre's manager starts it (not the counter's holder): the checked path, which
    # reads the ticket first and then changes it only if it is still called.
    manager = staff_token(make_staff(floor.centre, "manager", role="manager"))
    session.commit()
    walk_in(client, floor, {"service": "A"})
    assert post(client, f"/counters/{floor.c1.id}/open", floor.officer).status_code == 200
    called = post(client, f"/counters/{floor.c1.id}/call-next", floor.officer).get_json()
    read = floor_fast._ticket_for_action

    def read_then_someone_else_acts(s, public_id):
        row = read(s, public_id)
        # Another request marks the citizen a no-show after this one read the ticket.
        other = sa.create_engine(db.engine.url)
        with other.begin() as conn:
            conn.execute(
                sa.update(Ticket.__table__)
                .where(Ticket.__table__.c.public_id == public_id)
                .values(status="no_show")
            )
        other.dispose()
        monkeypatch.setattr(floor_fast, "_ticket_for_action", read)
        return row

    monkeypatch.setattr(floor_fast, "_ticket_for_action", read_then_someone_else_acts)
    response = post(client, f"/tickets/{called['ticket']['public_id']}/start", manager)
    assert response.status_code == 409
    assert response.get_json()["code"] == "ticket_wrong_state"
    session.expire_all()
    ticket = session.scalars(select(Ticket)).one()
    assert ticket.status.value == "no_show" and ticket.started_at is None
    assert [e.kind for e in ticket.events] == ["issued", "called"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_walk_in_and_start_run_in_autocommit_and_leave_the_pool_transactional(
    client, session, floor
):
    """Their single write needs no BEGIN/COMMIT round trips (transaction(single_write=True));
    the connection goes back to the pool transactional, so the next unit of work (an
    officer's call-next: a lock, then its statement) is one transaction again."""
    code, counter_id, officer, kiosk = floor.centre.code, floor.c1.id, floor.officer, floor.kiosk
    kiosk_auth = {"Authorization": f"Bearer {kiosk}"}
    assert post(client, f"/counters/{counter_id}/open", officer).status_code == 200
    # The kiosk's first call looks its token up (a read that opens a transaction): an
    # ordinary transaction then. Its next calls find the token cached.
    url = f"{API}/centres/{code}/tickets"
    assert client.post(url, json={"service": "A"}, headers=kiosk_auth).status_code == 201
    session.rollback()  # the test shares the request's session: leave it outside a transaction
    here = threading.get_ident()
    seen: list[bool] = []

    def spy(conn, *_args) -> None:
        if threading.get_ident() == here:  # not the live-update dispatcher
            seen.append(conn.connection.dbapi_connection.autocommit)

    sa.event.listen(db.engine, "before_cursor_execute", spy)
    try:
        assert client.post(url, json={"service": "A"}, headers=kiosk_auth).status_code == 201
        issuing = list(seen)
        # Every pooled connection is back in transactional mode (the walk-in's included).
        idle = [db.engine.connect() for _ in range(db.engine.pool.checkedin())]
        try:
            assert idle and not any(c.connection.dbapi_connection.autocommit for c in idle)
        finally:
            for connection in idle:
                connection.close()
        called = post(client, f"/counters/{counter_id}/call-next", officer)
        # The call's two statements; its announcement then reads static names, after the
        # commit, with the request's session, which a real request ends with itself. The
        # test shares that session: it ends it here.
        calling = seen[len(issuing) : len(issuing) + 2]
        session.rollback()
        public_id = called.get_json()["ticket"]["public_id"]
        before_start = len(seen)
        assert post(client, f"/tickets/{public_id}/start", officer).status_code == 200
        starting = seen[before_start:]
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", spy)
    assert issuing == [True, True]  # the floor read, then the ticket with its number
    assert calling == [False, False]  # the counter's lock, then the call: one transaction
    assert starting == [True]
    labels = session.execute(select(Ticket.label, Ticket.status).order_by(Ticket.id)).all()
    assert [(label, status.value) for label, status in labels] == [
        ("A001", "serving"),
        ("A002", "waiting"),
    ]
