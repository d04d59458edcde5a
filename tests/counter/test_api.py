"""The counter API end to end: open and close, call in merged-queue order, serve, transfer."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from core.floor import tickets
from core.models import Counter, CounterService, Staff, Ticket, TicketEvent, TicketStatus
from tests.conftest import both_databases
from tests.factories import (
    make_appointment,
    make_centre,
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
PROBLEM = "application/problem+json"


@pytest.fixture
def clock(now):
    return SimpleNamespace(now=now)


@pytest.fixture
def app_config(clock):
    return {"CLOCK": lambda: clock.now}


@pytest.fixture
def floor(session, now):
    """Bến Thành: line A (counters 1, 2), line B (counter 3); Sài Gòn: line A (counter 1)."""
    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    here = make_centre("26734", "Phường Bến Thành")
    there = make_centre("26740", "Phường Sài Gòn")
    floor = SimpleNamespace(
        here=here,
        there=there,
        birth=make_procedure("1.001193", "Đăng ký khai sinh", field=civil),
        a=make_service(here, "A", fields=[civil], counters=2),
        b=make_service(here, "B", fields=[land], counters=1, name="Đất đai"),
        there_a=make_service(there, "A", fields=[civil], counters=1),
    )
    floor.c1, floor.c2, floor.c3 = here.counters
    officer = make_staff(here, "officer", full_name="Phạm Thị Quầy")
    other = make_staff(here, "officer2", full_name="Võ Văn Bên")
    manager = make_staff(here, "manager", role="manager")
    floor.officer, floor.other, floor.manager = (
        staff_token(officer),
        staff_token(other),
        staff_token(manager),
    )
    session.commit()
    return floor


def call(client, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.open(f"{API}{path}", method=method, json=body, headers=headers)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["code"] == code and body["detail"]
    return body


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def open_at(client, counter, token) -> dict:
    return ok(call(client, "POST", f"/counters/{counter.id}/open", token))


def call_next(client, counter, token):
    return call(client, "POST", f"/counters/{counter.id}/call-next", token)


def act(client, ticket: dict | str, action: str, token, body=None):
    public_id = ticket if isinstance(ticket, str) else ticket["public_id"]
    return call(client, "POST", f"/tickets/{public_id}/{action}", token, body)


def issue(session, floor, now, **kw) -> Ticket:
    ticket = make_ticket(floor.here, now, **kw)
    session.commit()
    return ticket


# --- Opening and closing -----------------------------------------------------------------------


def test_open_and_close_a_counter(client, floor):
    opened = open_at(client, floor.c1, floor.officer)
    assert opened["is_open"] and opened["number"] == 1 and opened["centre"] == "26734"
    assert opened["officer"]["full_name"] == "Phạm Thị Quầy"
    assert opened["services"] == ["A"] and opened["current"] is None
    assert open_at(client, floor.c1, floor.officer)["is_open"]  # opening again: no change

    taken = call(client, "POST", f"/counters/{floor.c1.id}/open", floor.other)
    assert_problem(taken, 409, "counter_taken")
    not_yours = call(client, "POST", f"/counters/{floor.c1.id}/close", floor.other)
    assert_problem(not_yours, 409, "counter_not_yours")

    closed = ok(call(client, "POST", f"/counters/{floor.c1.id}/close", floor.officer))
    assert not closed["is_open"] and closed["officer"] is None
    assert open_at(client, floor.c1, floor.other)["officer"]["full_name"] == "Võ Văn Bên"


def test_a_manager_may_close_an_officers_counter_but_not_one_with_a_ticket(
    client, session, floor, now
):
    open_at(client, floor.c1, floor.officer)
    issue(session, floor, now, service=floor.a)
    ok(call_next(client, floor.c1, floor.officer))
    busy = call(client, "POST", f"/counters/{floor.c1.id}/close", floor.manager)
    assert_problem(busy, 409, "counter_has_ticket")
    assert_problem(
        call(client, "POST", f"/counters/{floor.c1.id}/close", floor.officer),
        409,
        "counter_has_ticket",
    )


def test_a_closed_or_someone_elses_counter_calls_nobody(client, session, floor, now):
    issue(session, floor, now, service=floor.a)
    assert_problem(call_next(client, floor.c1, floor.officer), 409, "counter_closed")
    open_at(client, floor.c1, floor.officer)
    assert_problem(call_next(client, floor.c1, floor.other), 409, "counter_not_yours")
    assert_problem(call_next(client, floor.c1, floor.manager), 409, "counter_not_yours")
    assert session.scalar(select(Ticket.status)) is TicketStatus.WAITING


def test_unknown_counter_and_ticket(client, floor):
    assert_problem(
        call(client, "POST", "/counters/999999/open", floor.officer), 404, "counter_not_found"
    )
    # Beyond PostgreSQL's integer the URL matches no route (xephang.guards): a plain 404.
    assert_problem(call(client, "POST", f"/counters/{2**40}/open", floor.officer), 404, "not_found")
    assert_problem(act(client, "nosuch", "start", floor.officer), 404, "ticket_not_found")


# --- Calling in merged-queue order -------------------------------------------------------------


def test_call_next_follows_the_merged_queue(client, session, floor, clock, now):
    # Counter 1 serves A first, then B.
    session.add(CounterService(counter_id=floor.c1.id, service_id=floor.b.id, rank=1))
    first = issue(session, floor, now, service=floor.a)  # 08:00
    appt = make_appointment(
        floor.a, floor.birth, now + timedelta(minutes=30), full_name="Trần Thị Bình"
    )
    session.commit()
    with transaction():  # checked in early at 08:05: queues at 08:30
        booked, _ = tickets.check_in(
            db.session,
            db.session.merge(appt),
            db.session.merge(floor.here),
            now=now + timedelta(minutes=5),
            rules=floor_rules(),
        )
    second = issue(session, floor, now + timedelta(minutes=10), service=floor.a)
    land = issue(session, floor, now + timedelta(minutes=15), service=floor.b)
    elderly = issue(
        session, floor, now + timedelta(minutes=20), service=floor.a, priority="elderly"
    )
    clock.now = now + timedelta(minutes=40)
    open_at(client, floor.c1, floor.officer)

    called = []
    while (response := call_next(client, floor.c1, floor.officer)).status_code == 200:
        ticket = response.get_json()["ticket"]
        assert ticket["status"] == "called" and ticket["counter"] == 1
        called.append(ticket)
        ok(act(client, ticket, "start", floor.officer))
    assert response.status_code == 204 and not response.data
    labels = [t["label"] for t in called]
    assert labels == [elderly.label, first.label, second.label, land.label, booked.label]
    appointment_ticket = called[-1]
    assert appointment_ticket["source"] == "appointment"
    assert appointment_ticket["citizen"] == {"full_name": "Trần Thị Bình"}
    assert appointment_ticket["appointment"]["code"] == appt.code
    assert appointment_ticket["procedure_name"] == "Đăng ký khai sinh"
    assert all(t["citizen"] is None for t in called[:-1])  # walk-ins: nobody's name
    # Each call completed the ticket being served, the last (empty) one too.
    done = session.scalars(select(Ticket).where(Ticket.status == TicketStatus.DONE)).all()
    assert len(done) == 5


def test_nobody_waiting_is_204(client, floor):
    open_at(client, floor.c1, floor.officer)
    response = call_next(client, floor.c1, floor.officer)
    assert response.status_code == 204 and response.data == b""


def test_a_called_ticket_must_be_dealt_with_before_the_next(client, session, floor, now):
    issue(session, floor, now, service=floor.a)
    issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    assert_problem(call_next(client, floor.c1, floor.officer), 409, "counter_busy")
    state = ok(call(client, "GET", f"/counters/{floor.c1.id}", floor.officer))
    assert state["current"]["label"] == ticket["label"]
    assert state["waiting"] == [
        {"service": "A", "name": floor.a.name, "waiting": 1, "priority": 0, "next": ["A002"]}
    ]


def test_recall_then_no_show_after_the_last_call(client, session, floor, now):
    issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    assert_problem(
        call(client, "POST", f"/counters/{floor.c1.id}/recall", floor.officer),
        409,
        "nothing_to_recall",
    )
    ok(call_next(client, floor.c1, floor.officer))
    recalled = ok(call(client, "POST", f"/counters/{floor.c1.id}/recall", floor.officer))
    assert recalled["ticket"]["call_count"] == 2 and recalled["ticket"]["status"] == "called"
    ok(call(client, "POST", f"/counters/{floor.c1.id}/recall", floor.officer))  # 3rd call
    last = ok(call(client, "POST", f"/counters/{floor.c1.id}/recall", floor.officer))
    assert last["ticket"]["status"] == "no_show"
    kinds = session.scalars(select(TicketEvent.kind).order_by(TicketEvent.id)).all()
    assert kinds == ["issued", "called", "recalled", "recalled", "no_show"]


# --- Serving ---------------------------------------------------------------------------------


def test_start_complete_and_no_show(client, session, floor, now, clock):
    issue(session, floor, now, service=floor.a)
    issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    clock.now = now + timedelta(minutes=1)
    started = ok(act(client, ticket, "start", floor.officer))["ticket"]
    assert started["status"] == "serving" and started["started_at"] == "2026-12-07T08:01:00+07:00"
    clock.now = now + timedelta(minutes=9)
    assert ok(act(client, ticket, "complete", floor.officer))["ticket"]["status"] == "done"
    absent = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    assert ok(act(client, absent, "no-show", floor.officer))["ticket"]["status"] == "no_show"
    events = session.execute(
        select(TicketEvent.kind, TicketEvent.staff_id).order_by(TicketEvent.id)
    ).all()
    assert [kind for kind, _ in events if kind != "issued"] == [
        "called",
        "started",
        "completed",
        "called",
        "no_show",
    ]
    assert all(staff_id is not None for kind, staff_id in events if kind != "issued")


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ("waiting", "start"),
        ("waiting", "complete"),
        ("called", "complete"),
        ("serving", "start"),
        ("serving", "no-show"),
        ("done", "complete"),
        ("done", "no-show"),
        ("done", "transfer"),
    ],
)
def test_a_wrong_state_is_409_and_changes_nothing(client, session, floor, now, setup, action):
    waiting = issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    if setup != "waiting":
        ok(call_next(client, floor.c1, floor.officer))
    if setup in ("serving", "done"):
        ok(act(client, waiting.public_id, "start", floor.officer))
    if setup == "done":
        ok(act(client, waiting.public_id, "complete", floor.officer))
    before = session.execute(select(Ticket.id, Ticket.status, Ticket.counter_id)).all()
    session.rollback()
    body = {"service": "B"} if action == "transfer" else None
    problem = assert_problem(
        act(client, waiting.public_id, action, floor.officer, body), 409, "ticket_wrong_state"
    )
    assert problem["label"] == "A001"
    assert session.execute(select(Ticket.id, Ticket.status, Ticket.counter_id)).all() == before


def test_another_officer_may_not_act_on_my_ticket_but_a_manager_may(client, session, floor, now):
    issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    assert_problem(act(client, ticket, "start", floor.other), 409, "counter_not_yours")
    assert ok(act(client, ticket, "no-show", floor.manager))["ticket"]["status"] == "no_show"


# --- Transfers ---------------------------------------------------------------------------------


def test_transfer_to_a_service_keeps_the_queue_time(client, session, floor, now, clock):
    issue(session, floor, now, service=floor.a)
    issue(session, floor, now + timedelta(minutes=5), service=floor.b)  # B001, later
    clock.now = now + timedelta(minutes=20)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    moved = ok(act(client, ticket, "transfer", floor.officer, {"service": "b"}))["ticket"]
    assert moved["label"] == "B002" and moved["service"] == "B" and moved["status"] == "waiting"
    assert moved["queue_time"] == ticket["queue_time"] == "2026-12-07T08:00:00+07:00"
    assert moved["position"] == 0  # ahead of B001, who came later
    old = ok(call(client, "GET", f"/tickets/{ticket['public_id']}", None))
    assert old["status"] == "transferred"
    open_at(client, floor.c3, floor.other)
    assert ok(call_next(client, floor.c3, floor.other))["ticket"]["label"] == "B002"


def test_transfer_to_a_counter_is_called_only_there(client, session, floor, now):
    issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    moved = ok(act(client, ticket, "transfer", floor.officer, {"counter": 2}))["ticket"]
    assert moved["target_counter"] == 2 and moved["queue_time"] == ticket["queue_time"]
    assert call_next(client, floor.c1, floor.officer).status_code == 204
    open_at(client, floor.c2, floor.other)
    assert ok(call_next(client, floor.c2, floor.other))["ticket"]["public_id"] == moved["public_id"]


def test_transfer_to_another_centre_keeps_the_queue_time(client, session, floor, now, clock):
    issue(session, floor, now, procedure=floor.birth)
    clock.now = now + timedelta(minutes=30)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    moved = ok(act(client, ticket, "transfer", floor.officer, {"centre": "26740"}))["ticket"]
    assert moved["centre"] == "26740" and moved["label"] == "A001"
    assert moved["queue_time"] == "2026-12-07T08:00:00+07:00"
    assert moved["procedure"] == floor.birth.code
    # The citizen's page, following the old ticket, learns where it went.
    followed = ok(call(client, "GET", f"/tickets/{ticket['public_id']}", None))
    assert followed["status"] == "transferred"
    assert followed["transferred_to"] == {
        "public_id": moved["public_id"],
        "label": "A001",
        "centre": "26740",
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "invalid"),
        ({"service": "B", "counter": 3}, 422, "invalid"),
        ({"counter": "3"}, 422, "invalid"),
        ({"service": "Z"}, 409, "transfer_target_not_found"),
        ({"counter": 9}, 409, "transfer_target_not_found"),
        ({"counter": 1}, 409, "transfer_same_counter"),
        ({"centre": "00000"}, 409, "transfer_target_not_found"),
    ],
)
def test_transfer_refusals_change_nothing(client, session, floor, now, body, status, code):
    issue(session, floor, now, service=floor.a)
    open_at(client, floor.c1, floor.officer)
    ticket = ok(call_next(client, floor.c1, floor.officer))["ticket"]
    assert_problem(act(client, ticket, "transfer", floor.officer, body), status, code)
    assert session.scalar(select(Ticket.status)) is TicketStatus.CALLED
    assert session.query(Ticket).count() == 1


# --- The centre's queue ------------------------------------------------------------------------


@both_databases
def test_queue_lists_labels_per_line_in_calling_order_and_nothing_personal(
    client, session, floor, now
):
    issue(session, floor, now, service=floor.a)  # A001
    issue(session, floor, now + timedelta(minutes=1), service=floor.a, priority="pregnant")
    issue(session, floor, now + timedelta(minutes=2), service=floor.b)  # B001
    with transaction():
        tickets.issue_remote(
            db.session,
            db.session.merge(floor.here),
            db.session.merge(floor.birth),
            citizen_hash="c" * 64,
            full_name="Nguyễn Văn An",
            phone="0912345678",
            now=now + timedelta(minutes=3),
            rules=floor_rules(),
        )
    open_at(client, floor.c2, floor.officer)
    ok(call_next(client, floor.c2, floor.officer))  # A002 (priority) to counter 2

    queue = ok(call(client, "GET", "/centres/26734/queue", floor.manager))
    assert queue["centre"] == "26734"
    lines = {line["service"]: line for line in queue["services"]}
    assert [t["label"] for t in lines["A"]["tickets"]] == ["A001", "A003"]
    assert lines["A"]["waiting"] == 2 and lines["A"]["counters_open"] == 1
    assert [t["source"] for t in lines["A"]["tickets"]] == ["walk_in", "remote"]
    assert [t["label"] for t in lines["B"]["tickets"]] == ["B001"]
    assert queue["counters"] == [
        {"number": 1, "is_open": False, "label": None, "status": None},
        {"number": 2, "is_open": True, "label": "A002", "status": "called"},
        {"number": 3, "is_open": False, "label": None, "status": None},
    ]
    text = json.dumps(queue, ensure_ascii=False)
    for personal in ("Nguyễn Văn An", "0912345678", "full_name", "citizen"):
        assert personal not in text
    assert_problem(
        call(client, "GET", "/centres/00000/queue", floor.manager), 404, "centre_not_found"
    )


def test_a_counter_serving_no_line_calls_nobody(client, session, floor, now):
    issue(session, floor, now, service=floor.a)
    session.execute(
        CounterService.__table__.delete().where(CounterService.counter_id == floor.c1.id)
    )
    session.commit()
    open_at(client, floor.c1, floor.officer)
    assert call_next(client, floor.c1, floor.officer).status_code == 204
    assert session.get(Counter, floor.c1.id).is_open


# --- Sessions (the workstation pages) ----------------------------------------------------------


def sign_in(client, username: str) -> None:
    """What Flask-Login keeps in the session after the sign-in page."""
    staff_id = db.session.scalar(select(Staff.id).where(Staff.username == username))
    with client.session_transaction() as s:
        s["_user_id"] = str(staff_id)
        s["_fresh"] = True


def test_a_signed_in_officer_may_use_the_api_with_a_csrf_token(app, client, floor):
    app.config["WTF_CSRF_ENABLED"] = True
    sign_in(client, "officer")
    path = f"{API}/counters/{floor.c1.id}/open"
    forged = client.post(path)  # what another site could make the browser send
    assert_problem(forged, 400, "csrf")
    with client.session_transaction() as s:
        s["csrf_token"] = "raw-token-of-this-session"
    signed = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(
        "raw-token-of-this-session"
    )
    assert ok(client.post(path, headers={"X-CSRFToken": signed}))["is_open"]
    assert (
        ok(client.get(f"{API}/counters/{floor.c1.id}"))["officer"]["full_name"] == "Phạm Thị Quầy"
    )
    # A bearer token needs no CSRF token: no other site can send it.
    other = call(
        client.application.test_client(), "POST", f"/counters/{floor.c2.id}/open", floor.other
    )
    assert ok(other)["is_open"]


def test_the_counter_endpoints_are_in_the_openapi_document(client):
    paths = client.get(f"{API}/openapi.json").get_json()["paths"]
    for path in (
        "/counters/{counter_id}",
        "/counters/{counter_id}/open",
        "/counters/{counter_id}/close",
        "/counters/{counter_id}/call-next",
        "/counters/{counter_id}/recall",
        "/tickets/{public_id}/start",
        "/tickets/{public_id}/complete",
        "/tickets/{public_id}/no-show",
        "/tickets/{public_id}/transfer",
        "/centres/{code}/queue",
    ):
        assert f"{API}{path}" in paths, path
    call_next_doc = paths[f"{API}/counters/{{counter_id}}/call-next"]["post"]
    assert {"200", "204", "401", "403", "409"} <= set(call_next_doc["responses"])
