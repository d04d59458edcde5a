"""Booking rules: book, cancel and reschedule appointments without ever overbooking.

The hot path (`book`) uses SQLAlchemy Core statements: a conditional
``UPDATE slots SET booked = booked + 1 WHERE id = :id AND booked < capacity`` inside the
booking transaction is what makes overbooking impossible under any concurrency (the
CHECK constraint on the table is the second line of defence).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from core import tokens
from core.catalogue import ProcedureEntry, index
from core.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from core.identity import (
    citizen_hash,
    normalise_citizen_id,
    normalise_phone,
    token_hash,
    token_matches,
)
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    CitizenStanding,
    Closure,
    Service,
    Slot,
    service_fields,
    service_procedures,
)
from core.text import nfc
from core.timeutil import day_bounds_utc, local_day

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True)
class BookingRules:
    max_active: int = 3
    max_per_procedure_day: int = 1
    # Bookings close this long before the slot starts.
    min_lead_minutes: int = 0


@dataclass(frozen=True)
class Applicant:
    """Validated contact details of the person booking."""

    full_name: str
    phone: str
    citizen_id_hash: str
    email: str | None


@dataclass(frozen=True)
class BookedSlot:
    """Where and when a new appointment is: what a confirmation shows, with no further query."""

    centre_code: str
    centre_name: str
    centre_address: str
    service_prefix: str
    service_name: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Booked:
    appointment_id: int
    code: str
    manage_token: str
    replayed: bool = False
    # None for a replay: the appointment may have moved or been cancelled since.
    slot: BookedSlot | None = None


def validate_applicant(
    *,
    full_name: str,
    phone: str,
    citizen_id: str,
    email: str | None,
    consent: bool,
    now: datetime,
    key: bytes,
) -> Applicant:
    """Check every contact field at once; raise InvalidInput naming each bad field."""
    errors: dict[str, str] = {}
    name = nfc(full_name or "")
    if not 2 <= len(name) <= 120 or any(ch.isdigit() for ch in name):
        errors["full_name"] = "invalid_name"
    normal_phone = normalise_phone(phone or "")
    if normal_phone is None:
        errors["phone"] = "invalid_phone"
    cccd = normalise_citizen_id(citizen_id or "", today=local_day(now))
    if cccd is None:
        errors["citizen_id"] = "invalid_citizen_id"
    mail = (email or "").strip() or None
    if mail is not None and (len(mail) > 254 or not _EMAIL.match(mail)):
        errors["email"] = "invalid_email"
    if not consent:
        errors["consent"] = "consent_required"
    if errors:
        raise InvalidInput(errors)
    assert normal_phone is not None and cccd is not None
    return Applicant(name, normal_phone, citizen_hash(cccd, key), mail)


def _procedure(session: Session, code: str) -> ProcedureEntry:
    proc = index.get(session, code or "")
    if proc is None:
        raise NotFound("procedure_not_found", field="procedure")
    return proc


def _slot_row(session: Session, slot_id: int, proc: ProcedureEntry):
    """The slot with its centre and service, whether its service takes `proc`, and closure."""
    takes = or_(
        and_(
            exists().where(
                service_fields.c.service_id == Slot.service_id,
                service_fields.c.field_id == proc.field_id,
            ),
            or_(Service.level.is_(None), Service.level == proc.level),
        ),
        exists().where(
            service_procedures.c.service_id == Slot.service_id,
            service_procedures.c.procedure_id == proc.id,
        ),
    )
    closed = exists().where(
        Closure.day == Slot.day,
        or_(Closure.centre_id == Slot.centre_id, Closure.centre_id.is_(None)),
    )
    row = session.execute(
        select(
            Slot.id,
            Slot.centre_id,
            Slot.service_id,
            Slot.starts_at,
            Slot.ends_at,
            Slot.day,
            Slot.capacity,
            Slot.booked,
            Slot.opens_at,
            Centre.active,
            Centre.code.label("centre_code"),
            Centre.name.label("centre_name"),
            Centre.address.label("centre_address"),
            Service.prefix.label("service_prefix"),
            Service.name.label("service_name"),
            takes.label("takes"),
            closed.label("closed"),
        )
        .join(Service, Service.id == Slot.service_id)
        .join(Centre, Centre.id == Slot.centre_id)
        .where(Slot.id == slot_id)
    ).one_or_none()
    if row is None:
        raise NotFound("slot_not_found", field="slot_id")
    return row


def _check_slot(row, proc: ProcedureEntry, now: datetime, rules: BookingRules) -> None:
    if not row.takes:
        raise InvalidInput({"procedure": "procedure_not_taken"}, slot_id=row.id)
    if row.starts_at <= now + timedelta(minutes=rules.min_lead_minutes):
        raise Conflict("slot_past", field="slot_id", slot_id=row.id)
    if row.closed or not row.active:
        raise Conflict("centre_closed", field="slot_id", slot_id=row.id)
    if row.opens_at is not None and row.opens_at > now:
        raise Conflict("slot_not_open", field="slot_id", opens_at=row.opens_at.isoformat())


def _lock_citizen(session: Session, hashed: str) -> None:
    """Serialise bookings of one citizen so two requests cannot both pass the limits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:h, 7))"), {"h": hashed}
        )
    # SQLite: the whole write transaction already holds the database's single write lock.


def _check_limits(
    session: Session,
    hashed: str,
    proc_id: int,
    slot_day_start: datetime,
    now: datetime,
    rules: BookingRules,
    *,
    ignore_appointment: int | None = None,
) -> None:
    day_end = slot_day_start + timedelta(days=1)
    same_day = and_(
        Appointment.procedure_id == proc_id,
        Appointment.starts_at >= slot_day_start,
        Appointment.starts_at < day_end,
    )
    active = and_(
        Appointment.citizen_hash == hashed,
        Appointment.status == AppointmentStatus.BOOKED,
        Appointment.ends_at > now,
    )
    if ignore_appointment is not None:
        active = and_(active, Appointment.id != ignore_appointment)
    counts = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((same_day, 1), else_=0)), 0),
            select(CitizenStanding.suspended_until)
            .where(CitizenStanding.citizen_hash == hashed)
            .scalar_subquery(),
        ).where(active)
    ).one()
    total, per_day, suspended_until = counts
    if suspended_until is not None and suspended_until > now:
        raise LimitExceeded("suspended", until=suspended_until.isoformat())
    if total >= rules.max_active:
        raise LimitExceeded("too_many_active", limit=rules.max_active)
    if per_day >= rules.max_per_procedure_day:
        raise LimitExceeded("one_per_procedure_day", limit=rules.max_per_procedure_day)


def _take_seat(session: Session, slot_id: int) -> bool:
    result = session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1)
    )
    return result.rowcount == 1


def _free_seat(session: Session, slot_id: int) -> None:
    session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1)
    )


def _replay(session: Session, key: str, hashed: str, secret: str) -> Booked | None:
    row = session.execute(
        select(
            Appointment.id, Appointment.code, Appointment.citizen_hash, Appointment.qr_nonce
        ).where(Appointment.idempotency_key == key)
    ).one_or_none()
    if row is None:
        return None
    if row.citizen_hash != hashed:
        raise Conflict("idempotency_key_reused", field="idempotency_key")
    return Booked(row.id, row.code, tokens.manage_token(secret, row.code, row.qr_nonce), True)


def book(
    session: Session,
    *,
    slot_id: int,
    procedure_code: str,
    applicant: Applicant,
    now: datetime,
    rules: BookingRules,
    secret: str,
    idempotency_key: str | None = None,
    locale: str = "vi",
) -> Booked:
    """Book one seat in a slot for `applicant`.

    Raises NotFound (procedure, slot), InvalidInput (procedure not taken there),
    Conflict (slot_past, centre_closed, slot_full, …) and LimitExceeded (per-citizen limits).
    A repeated `idempotency_key` from the same citizen returns the first booking unchanged.
    """
    proc = _procedure(session, procedure_code)
    _lock_citizen(session, applicant.citizen_id_hash)
    if idempotency_key and (
        earlier := _replay(session, idempotency_key, applicant.citizen_id_hash, secret)
    ):
        return earlier
    row = _slot_row(session, slot_id, proc)
    _check_slot(row, proc, now, rules)
    day_start, _ = day_bounds_utc(row.day)
    _check_limits(session, applicant.citizen_id_hash, proc.id, day_start, now, rules)
    if not _take_seat(session, slot_id):
        raise Conflict("slot_full", field="slot_id", slot_id=slot_id)
    code = tokens.booking_code()
    nonce = secrets.token_hex(8)
    manage = tokens.manage_token(secret, code, nonce)
    appointment_id = session.execute(
        insert(Appointment)
        .values(
            code=code,
            slot_id=slot_id,
            centre_id=row.centre_id,
            service_id=row.service_id,
            procedure_id=proc.id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            status=AppointmentStatus.BOOKED,
            full_name=applicant.full_name,
            phone=applicant.phone,
            email=applicant.email,
            citizen_hash=applicant.citizen_id_hash,
            manage_token_hash=token_hash(manage),
            qr_nonce=nonce,
            idempotency_key=idempotency_key,
            locale=locale,
            consent_at=now,
            created_at=now,
        )
        .returning(Appointment.id)
    ).scalar_one()
    where = BookedSlot(
        row.centre_code,
        row.centre_name,
        row.centre_address,
        row.service_prefix,
        row.service_name,
        row.starts_at,
        row.ends_at,
    )
    return Booked(appointment_id, code, manage, slot=where)


def get_owned(session: Session, code: str, manage_token: str) -> Appointment:
    """The appointment with this booking code if `manage_token` is its token.

    Raises NotFound for an unknown code and Forbidden-like NotFound for a wrong token,
    so a guesser cannot tell codes that exist from codes that do not.
    """
    appointment = session.scalars(
        select(Appointment).where(Appointment.code == (code or "").strip().upper())
    ).one_or_none()
    if appointment is None or not token_matches(manage_token or "", appointment.manage_token_hash):
        raise NotFound("appointment_not_found", field="code")
    return appointment


def cancel(session: Session, appointment: Appointment, *, now: datetime) -> None:
    """Cancel a booked appointment and give its seat back. Raises Conflict from another state."""
    result = session.execute(
        update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.status == AppointmentStatus.BOOKED)
        .values(status=AppointmentStatus.CANCELLED, cancelled_at=now)
    )
    if result.rowcount != 1:
        raise Conflict("appointment_not_active", status=appointment.status.value)
    _free_seat(session, appointment.slot_id)
    session.expire(appointment)


def reschedule(
    session: Session,
    appointment: Appointment,
    *,
    slot_id: int,
    now: datetime,
    rules: BookingRules,
) -> None:
    """Move a booked appointment to another slot atomically: the new seat is taken and the old
    one freed in one transaction, or nothing changes. Raises as `book` does."""
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("appointment_not_active", status=appointment.status.value)
    old_slot_id = appointment.slot_id
    if slot_id == old_slot_id:
        return
    proc = _procedure(session, appointment.procedure.code)
    _lock_citizen(session, appointment.citizen_hash)
    row = _slot_row(session, slot_id, proc)
    _check_slot(row, proc, now, rules)
    day_start, _ = day_bounds_utc(row.day)
    _check_limits(
        session,
        appointment.citizen_hash,
        proc.id,
        day_start,
        now,
        rules,
        ignore_appointment=appointment.id,
    )
    if not _take_seat(session, slot_id):
        raise Conflict("slot_full", field="slot_id", slot_id=slot_id)
    moved = session.execute(
        update(Appointment)
        .where(
            Appointment.id == appointment.id,
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.slot_id == old_slot_id,
        )
        .values(
            slot_id=slot_id,
            centre_id=row.centre_id,
            service_id=row.service_id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )
    )
    if moved.rowcount != 1:
        raise Conflict("appointment_changed")
    _free_seat(session, old_slot_id)
    session.expire(appointment)


def qr_payload(secret: str, appointment: Appointment) -> str:
    """The signed payload printed in an appointment's QR code."""
    return tokens.sign_qr(secret, appointment.code, appointment.qr_nonce)
