"""Abuse control end to end (DESIGN §4): a citizen books through the API, misses the
appointments, the scheduler's sweep runs, and the next booking is refused with the date
until which booking is suspended."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from core.models import CitizenStanding
from tests.conftest import both_databases
from tests.factories import CCCD, PHONE, make_centre, make_procedure, make_service, make_slot

API = "/api/v1"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(now) -> Clock:
    return Clock(now)


@pytest.fixture
def app_config(clock):
    return {"CLOCK": clock, "NO_SHOW_LIMIT": 2, "NO_SHOW_SUSPENSION_DAYS": 14}


def book(client, slot, procedure):
    body = {
        "slot_id": slot.id,
        "procedure": procedure.code,
        "full_name": "Nguyễn Văn An",
        "phone": PHONE,
        "citizen_id": CCCD,
        "consent": True,
    }
    return client.post(f"{API}/appointments", json=body)


@both_databases
def test_repeated_no_shows_suspend_booking_with_a_clear_refusal(app, client, session, clock, now):
    centre = make_centre()
    service = make_service(centre, "A", counters=2)
    procedure = make_procedure()
    # Tuesday and Wednesday 09:00 local, then Mondays a week and three weeks on.
    tuesday, wednesday = now + timedelta(days=1, hours=1), now + timedelta(days=2, hours=1)
    slots = [make_slot(service, tuesday), make_slot(service, wednesday)]
    later = make_slot(service, now + timedelta(days=7, hours=1))
    after = make_slot(service, now + timedelta(days=21, hours=1))  # past the suspension
    session.commit()
    for slot in slots:
        assert book(client, slot, procedure).status_code == 201

    clock.now = now + timedelta(days=3)  # Thursday: both missed
    result = app.test_cli_runner().invoke(args=["scheduler", "run-job", "noshow.sweep"])
    assert result.exit_code == 0, result.output
    assert "2 appointments no-show" in result.output and "1 citizens suspended" in result.output

    refused = book(client, later, procedure)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    until = clock.now + timedelta(days=14)
    assert problem["code"] == "suspended"
    assert datetime.fromisoformat(problem["until"]) == until
    assert "không đến" in problem["detail"]
    standing = session.scalars(select(CitizenStanding)).one()
    assert standing.no_show_count == 2 and standing.suspended_until == until

    clock.now = until + timedelta(minutes=1)  # the suspension ends by itself
    assert book(client, after, procedure).status_code == 201
