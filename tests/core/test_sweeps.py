"""The no-show sweep with injected time: missed appointments, tickets called in vain,
lines left at closing time, and the suspension that repeated no-shows earn (DESIGN §4)."""

from __future__ import annotations

from datetime import time, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.common.timeutil import local_to_utc
from core.floor.sweeps import NoShowPolicy, appointment_deadline, sweep
from core.models import (
    Appointment,
    AppointmentStatus,
    CitizenStanding,
    Counter,
    TicketEvent,
    TicketStatus,
)
from tests.conftest import both_databases
from tests.factories import make_appointment, make_centre, make_procedure, make_service, make_ticket
from web.db import transaction

POLICY = NoShowPolicy(grace_minutes=15, late_limit_minutes=90, max_calls=3, limit=3)


@pytest.fixture
def floor(session, now):
    centre = make_centre()
    service = make_service(centre, "A", counters=1)
    procedure = make_procedure()
    session.commit()
    return SimpleNamespace(centre=centre, service=service, procedure=procedure)


def run_sweep(now, policy=POLICY):
    with transaction() as session:
        return sweep(session, now=now, policy=policy)


def status_of(session, appointment) -> AppointmentStatus:
    session.expire_all()
    return session.get(Appointment, appointment.id).status


def test_deadline_is_when_the_kiosk_would_refuse(now):
    starts = now
    # 30-minute slot: slot end + 15 min grace is earlier than the kiosk's 90-minute limit.
    assert appointment_deadline(
        starts, starts + timedelta(minutes=30), POLICY
    ) == starts + timedelta(minutes=90)
    # A long slot: its end + grace is later.
    long_end = starts + timedelta(minutes=120)
    assert appointment_deadline(starts, long_end, POLICY) == long_end + timedelta(minutes=15)


@both_databases
def test_missed_appointments_become_no_shows_once(session, floor, now):
    missed = make_appointment(floor.service, floor.procedure, now - timedelta(minutes=91))
    still_accepted = make_appointment(floor.service, floor.procedure, now - timedelta(minutes=80))
    came = make_appointment(floor.service, floor.procedure, now - timedelta(hours=3))
    came.status = AppointmentStatus.CHECKED_IN
    session.commit()

    report = run_sweep(now)

    assert report.appointments == 1
    assert status_of(session, missed) == AppointmentStatus.NO_SHOW
    assert status_of(session, still_accepted) == AppointmentStatus.BOOKED
    assert status_of(session, came) == AppointmentStatus.CHECKED_IN
    standing = session.get(CitizenStanding, missed.citizen_hash)
    assert standing.no_show_count == 1 and standing.suspended_until is None
    # Nothing left to do: a second run changes nothing and counts nothing twice.
    assert run_sweep(now + timedelta(minutes=1)).appointments == 0
    session.expire_all()
    assert session.get(CitizenStanding, missed.citizen_hash).no_show_count == 1


@both_databases
def test_limit_no_shows_within_the_window_suspend_booking(session, floor, now):
    citizen = "c" * 64
    old = make_appointment(floor.service, floor.procedure, now - timedelta(days=40))
    old.status, old.citizen_hash = AppointmentStatus.NO_SHOW, citizen  # outside the window
    first = make_appointment(floor.service, floor.procedure, now - timedelta(days=6))
    first.status, first.citizen_hash = AppointmentStatus.NO_SHOW, citizen
    session.commit()
    second = make_appointment(floor.service, floor.procedure, now - timedelta(days=1))
    second.citizen_hash = citizen
    session.commit()

    report = run_sweep(now)
    assert report.appointments == 1 and report.suspended == 0  # 2 within 30 days, limit 3
    standing = session.get(CitizenStanding, citizen)
    assert standing.suspended_until is None

    third = make_appointment(floor.service, floor.procedure, now - timedelta(hours=2))
    third.citizen_hash = citizen
    session.commit()
    report = run_sweep(now)
    assert report.suspended == 1
    session.expire_all()
    standing = session.get(CitizenStanding, citizen)
    assert standing.no_show_count == 2  # the sweep counted two; the first was marked by hand
    assert standing.suspended_until == now + timedelta(days=POLICY.suspension_days)


@both_databases
def test_ticket_called_max_times_becomes_an_automatic_no_show(session, floor, now):
    counter = session.scalars(select(Counter)).first()
    gone = make_ticket(floor.centre, now - timedelta(minutes=30), service=floor.service)
    gone.call(counter.id, at=now - timedelta(minutes=6))
    gone.call_count = 3
    fresh = make_ticket(floor.centre, now - timedelta(minutes=30), service=floor.service)
    fresh.call(counter.id, at=now - timedelta(minutes=6))
    fresh.call_count = 2
    session.commit()

    report = run_sweep(now)

    assert report.called == 1
    session.expire_all()
    assert gone.status == TicketStatus.NO_SHOW and fresh.status == TicketStatus.CALLED
    event = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == gone.id, TicketEvent.kind == "no_show")
    ).one()
    assert event.data == {"automatic": True}


@both_databases
def test_lines_left_at_closing_are_closed(session, floor, now):
    counter = session.scalars(select(Counter)).first()
    friday = now - timedelta(days=3)
    left_friday = make_ticket(floor.centre, friday, service=floor.service)
    afternoon = local_to_utc(now.date(), time(16, 30))
    waiting = make_ticket(floor.centre, afternoon, service=floor.service)
    called_once = make_ticket(floor.centre, afternoon, service=floor.service)
    called_once.call(counter.id, at=afternoon + timedelta(minutes=20))
    booked = make_appointment(floor.service, floor.procedure, afternoon)
    from_booking = make_ticket(floor.centre, afternoon, service=floor.service)
    from_booking.appointment_id = booked.id
    booked.status = AppointmentStatus.CHECKED_IN
    session.commit()

    closing = local_to_utc(now.date(), time(17, 0))
    early = run_sweep(closing + timedelta(minutes=30))
    # Friday's line is over; today's closes 60 minutes after 17:00, not yet.
    assert (early.closed_waiting, early.closed_called) == (1, 0)
    session.expire_all()
    assert left_friday.status == TicketStatus.CANCELLED
    assert waiting.status == TicketStatus.WAITING

    late = run_sweep(closing + timedelta(minutes=61))
    assert (late.closed_waiting, late.closed_called) == (2, 1)
    session.expire_all()
    assert waiting.status == TicketStatus.CANCELLED
    assert called_once.status == TicketStatus.NO_SHOW
    assert from_booking.status == TicketStatus.CANCELLED
    # Not the citizen's fault: the appointment is cancelled, not a no-show, and not counted.
    assert status_of(session, booked) == AppointmentStatus.CANCELLED
    assert session.get(CitizenStanding, booked.citizen_hash) is None
