"""Purge of personal data after the retention period: names, phones, e-mails and citizen
hashes go; statuses, times and statistics stay; a second run erases nothing."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.citizens.privacy import purge_personal_data
from core.common.timeutil import local_day
from core.models import (
    Appointment,
    AppointmentStatus,
    CitizenStanding,
    DailyStatistic,
    Notification,
    NotificationStatus,
    Ticket,
    TicketSource,
    TicketStatus,
)
from core.operations.statistics import aggregate_day
from tests.conftest import both_databases
from tests.factories import make_appointment, make_centre, make_procedure, make_service, make_ticket
from web.db import transaction

RETENTION = 30


def personal(appointment: Appointment) -> tuple:
    return appointment.full_name, appointment.phone, appointment.email, appointment.citizen_hash


@pytest.fixture
def history(session, now):
    """An old finished appointment with its ticket and reminder, a recent one, an old
    booking still ahead (it cannot be), a remote ticket, and two citizen standings."""
    centre = make_centre()
    service = make_service(centre, "A", counters=1)
    procedure = make_procedure()
    long_ago = now - timedelta(days=RETENTION + 5)
    old = make_appointment(service, procedure, long_ago)
    old.status, old.email = AppointmentStatus.DONE, "an@example.vn"
    recent = make_appointment(service, procedure, now - timedelta(days=RETENTION - 5))
    recent.status = AppointmentStatus.NO_SHOW
    remote = make_ticket(centre, long_ago, service=service)
    remote.source = TicketSource.REMOTE
    remote.citizen_hash, remote.contact_name, remote.contact_phone = (
        "h" * 64,
        "Lê Văn C",
        "0987654321",
    )
    remote.mark_no_show(at=long_ago + timedelta(hours=1))
    reminder = Notification(
        appointment_id=old.id,
        kind="reminder_hour_before",
        channel="webhook",
        recipient=old.phone,
        payload={"text": "Sắp đến giờ hẹn", "starts_at": old.starts_at.isoformat()},
        status=NotificationStatus.SENT,
        next_attempt_at=long_ago,
        created_at=long_ago - timedelta(days=1),
    )
    session.add(reminder)
    stale = CitizenStanding(citizen_hash=old.citizen_hash, no_show_count=1, updated_at=long_ago)
    suspended = CitizenStanding(
        citizen_hash="s" * 64,
        no_show_count=3,
        suspended_until=now + timedelta(days=2),
        updated_at=long_ago,
    )
    session.add_all([stale, suspended])
    session.commit()
    with transaction() as s:
        aggregate_day(s, local_day(long_ago), now=now)
    return SimpleNamespace(old=old, recent=recent, remote=remote, reminder=reminder)


def purge(now):
    with transaction() as session:
        return purge_personal_data(session, now=now, retention_days=RETENTION)


def statistics(session) -> list[tuple]:
    return session.execute(
        select(DailyStatistic.issued, DailyStatistic.no_show, DailyStatistic.hour).order_by(
            DailyStatistic.id
        )
    ).all()


@both_databases
def test_purge_erases_personal_data_and_keeps_counts(session, history, now):
    figures = statistics(session)
    assert figures and figures[0][:2] == (1, 1)

    report = purge(now)

    assert (report.appointments, report.tickets, report.notifications, report.standings) == (
        1,
        1,
        1,
        1,
    )
    session.expire_all()
    old = session.get(Appointment, history.old.id)
    assert personal(old) == ("", "", None, "") and old.purged_at == now
    assert old.status == AppointmentStatus.DONE and old.starts_at == history.old.starts_at
    recent = session.get(Appointment, history.recent.id)
    assert recent.full_name and recent.phone and recent.citizen_hash and recent.purged_at is None
    remote = session.get(Ticket, history.remote.id)
    assert (remote.citizen_hash, remote.contact_name, remote.contact_phone) == (None, None, None)
    assert remote.status == TicketStatus.NO_SHOW and remote.label
    reminder = session.get(Notification, history.reminder.id)
    assert (reminder.recipient, reminder.payload) == ("", {})
    assert reminder.status == NotificationStatus.SENT
    # A running suspension stays until it ends; the stale standing is gone.
    hashes = set(session.scalars(select(CitizenStanding.citizen_hash)))
    assert hashes == {"s" * 64}
    assert statistics(session) == figures


@both_databases
def test_purge_is_idempotent(session, history, now):
    assert purge(now).total == 4
    assert purge(now).total == 0
    assert purge(now + timedelta(days=1)).total == 0


def test_a_booking_still_ahead_is_never_erased(session, history, now):
    history.old.status = AppointmentStatus.BOOKED  # say a data error left it booked
    session.commit()
    assert purge(now).appointments == 0
    session.expire_all()
    assert session.get(Appointment, history.old.id).full_name
