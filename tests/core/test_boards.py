"""The board snapshot and the counters' queue counts on a hand-built floor."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core.floor import boards, tickets
from core.models import Counter, Ticket
from tests.conftest import both_databases
from tests.factories import (
    make_centre,
    make_ticket,
    make_two_centre_floor,
)
from web.db import transaction
from web.extensions import db
from web.settings import floor_rules

pytestmark = both_databases


@pytest.fixture
def floor(session, now):
    floor = make_two_centre_floor()
    session.commit()
    return floor


def issue(session, centre, at, service, **private) -> Ticket:
    with transaction():
        ticket = make_ticket(centre, at, service=service)
        for name, value in private.items():
            setattr(ticket, name, value)
    return ticket


def open_counter(session, counter: Counter) -> None:
    with transaction():
        db.session.get(Counter, counter.id).is_open = True


def call_next(session, counter: Counter, at) -> Ticket:
    with transaction():
        ticket = tickets.call_next(
            db.session, db.session.get(Counter, counter.id), now=at, rules=floor_rules()
        )
    assert ticket is not None
    return ticket


def serve(ticket: Ticket, at) -> None:
    with transaction():
        tickets.start(db.session, db.session.merge(ticket), now=at)


def test_board_shows_counters_recent_calls_and_waits(session, floor, now):
    minute = timedelta(minutes=1)
    friday = now - timedelta(days=3)
    issue(session, floor.here, friday, floor.a)
    open_counter(session, floor.c1)
    done = call_next(session, floor.c1, friday + minute)  # another day: not on today's board
    serve(done, friday + 2 * minute)
    with transaction():
        tickets.complete(db.session, db.session.merge(done), now=friday + 3 * minute)

    a = [issue(session, floor.here, now + i * minute, floor.a) for i in range(5)]
    b = issue(session, floor.here, now + 5 * minute, floor.b)
    issue(session, floor.there, now, floor.there_a)
    open_counter(session, floor.c2)
    first = call_next(session, floor.c1, now + 10 * minute)
    serve(first, now + 11 * minute)
    second = call_next(session, floor.c1, now + 20 * minute)  # completes the first
    third = call_next(session, floor.c2, now + 21 * minute)
    assert [first.label, second.label, third.label] == [t.label for t in a[:3]]

    snap = boards.board_snapshot(session, floor.here, now=now + 22 * minute, recent=2)

    assert snap["centre"] == {"code": "26734", "name": "Phường Bến Thành"}
    assert snap["now_serving"] == [
        {
            "counter": 2,
            "label": "A003",
            "service": "A",
            "service_name": "Hộ tịch – chứng thực",
            "called_at": "2026-12-07T08:21:00+07:00",
        },
        {
            "counter": 1,
            "label": "A002",
            "service": "A",
            "service_name": "Hộ tịch – chứng thực",
            "called_at": "2026-12-07T08:20:00+07:00",
        },
    ]
    assert [(r["label"], r["counter"]) for r in snap["recent"]] == [("A003", 2), ("A002", 1)]
    assert set(snap["recent"][0]) == {"counter", "label", "service", "called_at"}
    full = boards.board_snapshot(session, floor.here, now=now + 22 * minute)
    assert [r["label"] for r in full["recent"]] == ["A003", "A002", "A001"]  # done too
    line_a, line_b = snap["waiting"]
    assert line_a["service"] == "A" and line_a["count"] == 2
    assert line_a["eta_minutes"]["low"] <= line_a["eta_minutes"]["high"]
    # Nobody serves line B right now: no honest estimate to show.
    assert line_b == {"service": "B", "service_name": "Đất đai", "count": 1, "eta_minutes": None}
    assert b.label == "B001"
    assert snap["generated_at"] == "2026-12-07T08:22:00+07:00"


def test_board_carries_no_personal_data(session, floor, now):
    remote = issue(
        session,
        floor.here,
        now,
        floor.a,
        contact_name="Trần Thị Bình",
        contact_phone="0912345678",
        citizen_hash="c" * 64,
    )
    open_counter(session, floor.c1)
    call_next(session, floor.c1, now + timedelta(minutes=1))
    issue(session, floor.here, now + timedelta(minutes=2), floor.a, contact_name="Lê Văn Cường")

    text = json.dumps(boards.board_snapshot(session, floor.here, now=now), ensure_ascii=False)
    text += json.dumps(boards.queue_counts(session, floor.here, now=now), ensure_ascii=False)
    for secret in ("Trần Thị Bình", "Lê Văn Cường", "0912345678", "c" * 64, remote.public_id):
        assert secret not in text
    assert "A001" in text


def test_an_empty_centre_and_queue_counts(session, floor, now):
    empty = make_centre("26999", "Xã Cần Giờ")
    session.commit()
    snap = boards.board_snapshot(session, empty, now=now)
    assert snap["now_serving"] == [] and snap["recent"] == [] and snap["waiting"] == []

    issue(session, floor.here, now, floor.b)
    issue(session, floor.here, now, floor.b)
    counts = boards.queue_counts(session, floor.here, now=now)
    assert counts["waiting"] == [
        {
            "service_id": floor.a.id,
            "service": "A",
            "service_name": "Hộ tịch – chứng thực",
            "count": 0,
        },
        {"service_id": floor.b.id, "service": "B", "service_name": "Đất đai", "count": 2},
    ]
    assert counts["generated_at"] == "2026-12-07T08:00:00+07:00"
