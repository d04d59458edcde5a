"""Booking rules in the domain core, without HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.booking import appointments as booking
from core.common.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from core.models import Appointment, AppointmentStatus, Slot
from tests.conftest import both_databases
from tests.factories import CCCD, PHONE, cccd, make_centre, make_procedure, make_service, make_slot
from web.db import transaction

RULES = booking.BookingRules()
KEY = b"k"


def applicant(session, now, n: int | None = None):
    return booking.validate_applicant(
        full_name="Nguyễn Văn An",
        phone=PHONE,
        citizen_id=CCCD if n is None else cccd(n),
        email=None,
        consent=True,
        now=now,
        key=KEY,
    )


@pytest.fixture
def city(session, now):
    centre = make_centre()
    proc = make_procedure(code="1.000001")
    service = make_service(centre, counters=2)
    slot = make_slot(service, now + timedelta(hours=2), capacity=2)
    session.commit()
    return centre, proc, service, slot


@both_databases
def test_book_takes_a_seat_and_stores_no_citizen_id(session, now, city):
    _, proc, _, slot = city
    with transaction():
        booked = booking.book(
            session,
            slot_id=slot.id,
            procedure_code=proc.code,
            applicant=applicant(session, now),
            now=now,
            rules=RULES,
            secret="s",
        )
    appt = session.get(Appointment, booked.appointment_id)
    assert appt.status is AppointmentStatus.BOOKED
    assert session.get(Slot, slot.id).booked == 1
    assert CCCD not in appt.citizen_hash and len(appt.citizen_hash) == 64
    assert booked.manage_token and appt.manage_token_hash != booked.manage_token


@both_databases
def test_full_slot_is_a_conflict_and_changes_nothing(session, now, city):
    _, proc, _, slot = city
    for n in range(2):
        with transaction():
            booking.book(
                session,
                slot_id=slot.id,
                procedure_code=proc.code,
                applicant=applicant(session, now, n),
                now=now,
                rules=RULES,
                secret="s",
            )
    with pytest.raises(Conflict) as err, transaction():
        booking.book(
            session,
            slot_id=slot.id,
            procedure_code=proc.code,
            applicant=applicant(session, now, 9),
            now=now,
            rules=RULES,
            secret="s",
        )
    assert err.value.code == "slot_full"
    assert session.get(Slot, slot.id).booked == 2
    assert session.query(Appointment).count() == 2


def test_limits_per_procedure_day(session, now, city):
    _centre, proc, service, slot = city
    other = make_slot(service, now + timedelta(hours=3))
    session.commit()
    with transaction():
        booking.book(
            session,
            slot_id=slot.id,
            procedure_code=proc.code,
            applicant=applicant(session, now),
            now=now,
            rules=RULES,
            secret="s",
        )
    with pytest.raises(LimitExceeded) as err, transaction():
        booking.book(
            session,
            slot_id=other.id,
            procedure_code=proc.code,
            applicant=applicant(session, now),
            now=now,
            rules=RULES,
            secret="s",
        )
    assert err.value.code == "one_per_procedure_day"


def test_bad_inputs(session, now, city):
    _, proc, _, slot = city
    with pytest.raises(InvalidInput) as err:
        booking.validate_applicant(
            full_name="A",
            phone="0212345678",
            citizen_id="123",
            email="x@",
            consent=False,
            now=now,
            key=KEY,
        )
    assert set(err.value.errors) == {"full_name", "phone", "citizen_id", "email", "consent"}
    with pytest.raises(NotFound), transaction():
        booking.book(
            session,
            slot_id=slot.id,
            procedure_code="9.999999",
            applicant=applicant(session, now),
            now=now,
            rules=RULES,
            secret="s",
        )
    with pytest.raises(Conflict) as past, transaction():
        booking.book(
            session,
            slot_id=slot.id,
            procedure_code=proc.code,
            applicant=applicant(session, now),
            now=now + timedelta(days=1),
            rules=RULES,
            secret="s",
        )
    assert past.value.code == "slot_past"


@both_databases
def test_cancel_and_reschedule(session, now, city):
    _, proc, service, slot = city
    other = make_slot(service, now + timedelta(days=1), capacity=1)
    session.commit()
    with transaction():
        booked = booking.book(
            session,
            slot_id=slot.id,
            procedure_code=proc.code,
            applicant=applicant(session, now),
            now=now,
            rules=RULES,
            secret="s",
        )
    appt = booking.get_owned(session, booked.code, booked.manage_token)
    with transaction():
        booking.reschedule(session, appt, slot_id=other.id, now=now, rules=RULES)
    assert (session.get(Slot, slot.id).booked, session.get(Slot, other.id).booked) == (0, 1)
    appt = booking.get_owned(session, booked.code, booked.manage_token)
    with transaction():
        booking.cancel(session, appt, now=now)
    assert session.get(Slot, other.id).booked == 0
    with pytest.raises(NotFound):
        booking.get_owned(session, booked.code, "wrong")
