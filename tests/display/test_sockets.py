"""Live boards, phone tickets and counter counts with real Socket.IO clients on a real server."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from flask import current_app
from prometheus_client import REGISTRY

from core.floor import tickets
from core.models import Counter
from display.bridge import bridge_of
from tests.conftest import both_databases
from tests.display.live import Listener, refused, serve
from tests.factories import (
    STAFF_PASSWORD,
    make_staff,
    make_ticket,
    make_two_centre_floor,
    staff_token,
)
from web.db import transaction
from web.extensions import db
from web.settings import floor_rules

API = "/api/v1"


@pytest.fixture
def clock(now):
    return SimpleNamespace(now=now)


@pytest.fixture
def app_config(clock):
    return {"CLOCK": lambda: clock.now, "BOARD_DEBOUNCE_MS": 100}


@pytest.fixture
def floor(session, now):
    floor = make_two_centre_floor()
    floor.officer = make_staff(floor.here, "officer", full_name="Phạm Thị Quầy")
    floor.stranger = make_staff(floor.there, "stranger", full_name="Võ Văn Bên")
    floor.token = staff_token(floor.officer)
    session.commit()
    return floor


@pytest.fixture
def live(app, floor):
    with serve(app) as base:
        yield base


@pytest.fixture
def listeners():
    made: list[Listener] = []

    def make(namespace: str) -> Listener:
        made.append(Listener(namespace))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def api(base: str, method: str, path: str, token: str, body=None) -> requests.Response:
    return requests.request(
        method,
        f"{base}{API}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def issue(centre, at, service, **kw):
    """A walk-in ticket, its live updates sent before the test goes on."""
    with transaction():
        ticket = make_ticket(centre, at, service=service, **kw)
    assert bridge_of(current_app).drain()
    return ticket


def gauge(name: str, namespace: str) -> float:
    return REGISTRY.get_sample_value(name, {"namespace": namespace}) or 0.0


# --- /board -------------------------------------------------------------------------------


@both_databases
def test_a_call_reaches_the_board_of_its_centre_only(live, floor, now, listeners):
    first = issue(floor.here, now, floor.a)
    issue(floor.there, now, floor.there_a)
    clients_before = gauge("xephang_socket_clients", "/board")
    here = listeners("/board").connect(live, "centre=26734")
    there = listeners("/board").connect(live, "centre=26740")
    assert gauge("xephang_socket_clients", "/board") == clients_before + 2
    board = here.next("board")
    assert board["centre"] == {"code": "26734", "name": "Phường Bến Thành"}
    assert board["waiting"][0]["count"] == 1 and board["now_serving"] == []
    assert there.next("board")["centre"]["code"] == "26740"

    assert api(live, "POST", f"/counters/{floor.c1.id}/open", floor.token).status_code == 200
    called = api(live, "POST", f"/counters/{floor.c1.id}/call-next", floor.token)
    assert called.status_code == 200

    announced = here.next("ticket_called")
    assert {k: v for k, v in announced.items() if k != "sent_at"} == {
        "label": first.label,
        "counter": 1,
        "service": "A",
        "called_at": "2026-12-07T08:00:00+07:00",
        "recall": False,
    }
    fresh = here.next("board", where=lambda b: b["now_serving"])
    assert fresh["now_serving"][0]["label"] == first.label
    assert fresh["recent"][0]["counter"] == 1 and fresh["waiting"][0]["count"] == 0

    lag_before = REGISTRY.get_sample_value(
        "xephang_event_delivery_lag_seconds_count", {"namespace": "/board"}
    )
    here.emit("ack", {"sent_at": announced["sent_at"]})
    assert api(live, "POST", f"/counters/{floor.c1.id}/recall", floor.token).status_code == 200
    assert here.next("ticket_called")["recall"] is True
    lag_after = REGISTRY.get_sample_value(
        "xephang_event_delivery_lag_seconds_count", {"namespace": "/board"}
    )
    assert lag_after == (lag_before or 0) + 1

    # The other centre's board heard nothing of it.
    assert [event for event, _ in there.quiet(0.4)] == []
    there.close()
    assert gauge("xephang_socket_clients", "/board") == clients_before + 1


def test_a_board_gets_the_truth_on_reconnect_and_on_request(live, floor, now, listeners):
    ticket = issue(floor.here, now, floor.a)
    board = listeners("/board").connect(live, "centre=26734")
    assert board.next("board")["now_serving"] == []
    board.close()

    # Called while the board was away (say, its network dropped).
    with transaction():
        counter = db.session.get(Counter, floor.c2.id)
        counter.is_open = True
    with transaction():
        tickets.call_next(
            db.session, db.session.get(Counter, floor.c2.id), now=now, rules=floor_rules()
        )
    again = listeners("/board").connect(live, "centre=26734")
    snapshot = again.next("board")
    assert [(s["label"], s["counter"]) for s in snapshot["now_serving"]] == [(ticket.label, 2)]

    again.emit("snapshot")
    assert again.next("board")["recent"][0]["label"] == ticket.label


def test_unknown_or_missing_centre_is_refused(live, floor):
    assert refused(live, "/board", "centre=99999")
    assert refused(live, "/board", "nothing=1")
    assert not refused(live, "/board", "centre=26734")


# --- /ticket ------------------------------------------------------------------------------


@both_databases
def test_a_phone_sees_its_own_ticket_move_up_and_get_called(live, floor, clock, now, listeners):
    ahead = issue(floor.here, now, floor.a)
    mine = issue(floor.here, now + timedelta(minutes=1), floor.a)
    other_line = issue(floor.here, now + timedelta(minutes=2), floor.b)
    phone = listeners("/ticket").connect(live, f"ticket={mine.public_id}")
    first = phone.next("ticket")
    assert first["public_id"] == mine.public_id and first["label"] == "A002"
    assert first["status"] == "waiting" and first["position"] == 1
    assert first["eta_minutes"] is not None

    clock.now = now + timedelta(minutes=5)
    api(live, "POST", f"/counters/{floor.c1.id}/open", floor.token)
    assert (
        api(live, "POST", f"/counters/{floor.c1.id}/call-next", floor.token).json()["ticket"][
            "label"
        ]
        == ahead.label
    )
    assert phone.next("line_moved") == {"service": "A"}
    phone.emit("refresh")
    moved = phone.next("ticket")
    assert moved["public_id"] == mine.public_id and moved["position"] == 0

    api(live, "POST", f"/tickets/{ahead.public_id}/no-show", floor.token)
    called = api(live, "POST", f"/counters/{floor.c1.id}/call-next", floor.token)
    assert called.json()["ticket"]["label"] == mine.label
    mine_called = phone.next("ticket", where=lambda t: t["status"] == "called")
    assert mine_called["counter"] == 1 and mine_called["position"] == 0

    # Only its own ticket, ever: no other ticket's public id in anything it got.
    phone.quiet(0.3)
    everything = json.dumps(phone.seen)
    assert ahead.public_id not in everything and other_line.public_id not in everything
    assert all(
        data["public_id"] == mine.public_id for event, data in phone.seen if event == "ticket"
    )


def test_the_line_moves_for_a_priority_ticket_not_for_one_behind(live, floor, now, listeners):
    mine = issue(floor.here, now, floor.a)
    phone = listeners("/ticket").connect(live, f"ticket={mine.public_id}")
    assert phone.next("ticket")["position"] == 0

    issue(floor.here, now + timedelta(minutes=1), floor.a)  # joins behind: nothing moves
    issue(floor.here, now + timedelta(minutes=1), floor.b)  # another line
    assert phone.quiet(0.3) == []
    issue(floor.here, now + timedelta(minutes=2), floor.a, priority="elderly")
    assert phone.next("line_moved") == {"service": "A"}
    phone.emit("refresh")
    assert phone.next("ticket")["position"] == 1


def test_unknown_ticket_is_refused(live, floor):
    assert refused(live, "/ticket", "ticket=nosuchticket")
    assert refused(live, "/ticket", "ticket=")


# --- /counter -----------------------------------------------------------------------------


def login(base: str, username: str) -> dict[str, str]:
    with requests.Session() as web:
        answer = web.post(
            f"{base}/counter/login",
            data={"username": username, "password": STAFF_PASSWORD},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text
        return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in web.cookies)}


def test_counter_counts_only_for_signed_in_staff_of_the_centre(live, floor, now, listeners):
    assert refused(live, "/counter", "centre=26734")
    assert refused(live, "/counter", "centre=26734", login(live, "stranger"))
    officer = login(live, "officer")
    assert refused(live, "/counter", "centre=99999", officer)

    counts = listeners("/counter").connect(live, "centre=26734", officer)
    first = counts.next("counts")
    assert [(w["service"], w["count"]) for w in first["waiting"]] == [("A", 0), ("B", 0)]
    assert first["waiting"][0]["service_id"] == floor.a.id
    issue(floor.here, now, floor.b)
    fresh = counts.next("counts", where=lambda c: c["waiting"][1]["count"] == 1)
    assert fresh["waiting"][1]["service_name"] == "Đất đai"


# --- REST ---------------------------------------------------------------------------------


@both_databases
def test_board_endpoint(client, floor, now):
    issue(floor.here, now, floor.a)
    answer = client.get(f"{API}/centres/26734/board")
    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == {"centre", "now_serving", "recent", "waiting", "generated_at"}
    assert body["waiting"][0] == {
        "service": "A",
        "service_name": "Hộ tịch – chứng thực",
        "count": 1,
        "eta_minutes": None,
    }
    assert body["generated_at"] == "2026-12-07T08:00:00+07:00"

    missing = client.get(f"{API}/centres/99999/board")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert missing.get_json()["code"] == "centre_not_found"
    assert client.get(f"{API}/centres/{'9' * 40}/board").status_code == 404

    spec = client.get(f"{API}/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/centres/{code}/board"]["get"]
    assert {"200", "404"} <= set(operation["responses"]) and not operation.get("security")
