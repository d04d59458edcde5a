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
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
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
from core.models.base import UTCDateTime
from core.text import nfc
from core.timeutil import local_day, to_local

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


# The booking hot path runs prebuilt Core statements on the session's connection: building
# and cache-keying SQLAlchemy constructs per request cost more CPU than the database work.
_slots, _services, _centres = Slot.__table__, Service.__table__, Centre.__table__
_appts, _closures, _standings = Appointment.__table__, Closure.__table__, CitizenStanding.__table__

_TAKES = or_(
    and_(
        exists().where(
            service_fields.c.service_id == _slots.c.service_id,
            service_fields.c.field_id == bindparam("field_id"),
        ),
        or_(_services.c.level.is_(None), _services.c.level == bindparam("level")),
    ),
    exists().where(
        service_procedures.c.service_id == _slots.c.service_id,
        service_procedures.c.procedure_id == bindparam("procedure_id"),
    ),
)
_CLOSED = exists().where(
    _closures.c.day == _slots.c.day,
    or_(_closures.c.centre_id == _slots.c.centre_id, _closures.c.centre_id.is_(None)),
)


def _citizen_counts(citizen: Any, now: Any, procedure: Any, slot_day: Any, ignore: Any) -> tuple:
    """The citizen's active appointments, those for the procedure on `slot_day`, and their
    suspension, as scalar subqueries over the given parameters."""
    mine_active = and_(
        _appts.c.citizen_hash == citizen,
        _appts.c.status == AppointmentStatus.BOOKED.value,
        _appts.c.ends_at > now,
        _appts.c.id != ignore,
    )
    other_slot = _slots.alias("other_slot")
    active = select(func.count()).where(mine_active).scalar_subquery()
    same_day = (
        select(func.count())
        .select_from(_appts.join(other_slot, other_slot.c.id == _appts.c.slot_id))
        .where(mine_active, _appts.c.procedure_id == procedure, other_slot.c.day == slot_day)
        .scalar_subquery()
    )
    suspended_until = (
        select(_standings.c.suspended_until)
        .where(_standings.c.citizen_hash == citizen)
        .scalar_subquery()
    )
    return active, same_day, suspended_until


# The citizen's appointments and standing, counted for the requested slot's local day.
_ACTIVE_COUNT, _SAME_DAY_COUNT, _SUSPENDED_UNTIL = _citizen_counts(
    bindparam("citizen_hash"),
    bindparam("now", type_=UTCDateTime()),
    bindparam("procedure_id"),
    _slots.c.day,
    bindparam("ignore_id"),
)

_SLOT_ROW = (
    select(
        _slots.c.id,
        _slots.c.centre_id,
        _slots.c.service_id,
        _slots.c.starts_at,
        _slots.c.ends_at,
        _slots.c.day,
        _slots.c.capacity,
        _slots.c.booked,
        _slots.c.opens_at,
        _centres.c.active,
        _centres.c.code.label("centre_code"),
        _centres.c.name.label("centre_name"),
        _centres.c.address.label("centre_address"),
        _services.c.prefix.label("service_prefix"),
        _services.c.name.label("service_name"),
        _TAKES.label("takes"),
        _CLOSED.label("closed"),
        _ACTIVE_COUNT.label("active_count"),
        _SAME_DAY_COUNT.label("same_day_count"),
        _SUSPENDED_UNTIL.label("suspended_until"),
    )
    .select_from(
        _slots.join(_services, _services.c.id == _slots.c.service_id).join(
            _centres, _centres.c.id == _slots.c.centre_id
        )
    )
    .where(_slots.c.id == bindparam("slot_id"))
)
# PostgreSQL: the same row, taking the citizen's lock in the same round trip. Its standing is
# read with a snapshot taken before the lock was granted, so it may miss a booking of the same
# citizen committed meanwhile: the write (_BOOK_WITHIN_LIMITS) checks the limits again.
_SLOT_ROW_LOCKING = _SLOT_ROW.add_columns(
    func.pg_advisory_xact_lock(func.hashtextextended(bindparam("citizen_hash"), 7)).label("locked")
)
_TAKE_SEAT = (
    update(_slots)
    .where(_slots.c.id == bindparam("sid"), _slots.c.booked < _slots.c.capacity)
    .values(booked=_slots.c.booked + 1)
)
_FREE_SEAT = (
    update(_slots)
    .where(_slots.c.id == bindparam("sid"), _slots.c.booked > 0)
    .values(booked=_slots.c.booked - 1)
)
_INSERT_APPOINTMENT = insert(_appts).returning(_appts.c.id)
_APPOINTMENT_VALUES = (
    "code", "slot_id", "centre_id", "service_id", "procedure_id", "starts_at", "ends_at",
    "status", "full_name", "phone", "email", "citizen_hash", "manage_token_hash", "qr_nonce",
    "idempotency_key", "locale", "consent_at", "created_at",
)  # fmt: skip


def _limits_hold() -> Any:
    """The citizen's limits, for the seat's UPDATE (its `slots` row gives the day). The
    parameters are named apart from the columns: an INSERT takes parameters named like its
    columns as its VALUES."""
    active, same_day, suspended_until = _citizen_counts(
        bindparam("l_citizen", type_=_appts.c.citizen_hash.type),
        bindparam("l_now", type_=UTCDateTime()),
        bindparam("l_procedure", type_=_appts.c.procedure_id.type),
        _slots.c.day,
        -1,
    )
    return and_(
        active < bindparam("l_max_active"),
        same_day < bindparam("l_max_day"),
        or_(suspended_until.is_(None), suspended_until <= bindparam("l_now")),
    )


# PostgreSQL: take the seat and insert the appointment in one statement (a data-modifying
# CTE), one round trip fewer on the hot path. The seat is taken only while the citizen's
# limits hold, counted with this statement's snapshot: taken after the citizen's lock was
# granted, it sees every booking of theirs. No row back: the slot was full or a limit reached.
_SEAT = (
    update(_slots)
    .where(_slots.c.id == bindparam("sid"), _slots.c.booked < _slots.c.capacity, _limits_hold())
    .values(booked=_slots.c.booked + 1)
    .returning(_slots.c.id)
    .cte("seat")
)
_BOOK_WITHIN_LIMITS = (
    insert(_appts)
    .from_select(
        [_appts.c[name] for name in _APPOINTMENT_VALUES],
        select(
            *(bindparam(f"v_{name}", type_=_appts.c[name].type) for name in _APPOINTMENT_VALUES)
        ).select_from(_SEAT),
    )
    .returning(_appts.c.id)
)
_BY_IDEMPOTENCY_KEY = select(
    _appts.c.id, _appts.c.code, _appts.c.citizen_hash, _appts.c.qr_nonce
).where(_appts.c.idempotency_key == bindparam("key"))
_LOCK_CITIZEN = text("SELECT pg_advisory_xact_lock(hashtextextended(:h, 7))")


def _slot_row(
    session: Session,
    slot_id: int,
    proc: ProcedureEntry,
    hashed: str,
    now: datetime,
    *,
    ignore_appointment: int | None = None,
    lock_citizen: bool = False,
) -> Row:
    """The slot with its centre and service, whether its service takes `proc`, whether the
    day is closed, and the citizen's standing against the limits — in one round trip.

    `lock_citizen` also takes the citizen's lock on PostgreSQL (_SLOT_ROW_LOCKING: the
    standing may then be stale, and the write checks the limits again)."""
    locking = lock_citizen and session.get_bind().dialect.name == "postgresql"
    row = (
        session.connection()
        .execute(
            _SLOT_ROW_LOCKING if locking else _SLOT_ROW,
            {
                "slot_id": slot_id,
                "field_id": proc.field_id,
                "level": proc.level,
                "procedure_id": proc.id,
                "citizen_hash": hashed,
                "now": now,
                "ignore_id": ignore_appointment or -1,
            },
        )
        .one_or_none()
    )
    if row is None:
        raise NotFound("slot_not_found", field="slot_id")
    return row


def _check_slot(row: Row, now: datetime, rules: BookingRules) -> None:
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
        session.connection().execute(_LOCK_CITIZEN, {"h": hashed})
    # SQLite: the whole write transaction already holds the database's single write lock.


def suspension(until: datetime) -> LimitExceeded:
    """The refusal for a citizen suspended (repeated no-shows) until `until`, in words too."""
    local = to_local(until)
    return LimitExceeded(
        "suspended",
        until=until.isoformat(),
        time=local.strftime("%H:%M"),
        date=local.strftime("%d/%m/%Y"),
    )


def _check_limits(row: Row, now: datetime, rules: BookingRules) -> None:
    if row.suspended_until is not None and row.suspended_until > now:
        raise suspension(row.suspended_until)
    if row.active_count >= rules.max_active:
        raise LimitExceeded("too_many_active", limit=rules.max_active)
    if row.same_day_count >= rules.max_per_procedure_day:
        raise LimitExceeded("one_per_procedure_day", limit=rules.max_per_procedure_day)


def _take_seat_and_insert(
    session: Session, slot_id: int, values: dict, proc: ProcedureEntry, rules: BookingRules
) -> int | None:
    """The new appointment's id, or None when the slot had no free seat or, on PostgreSQL,
    the citizen's limits no longer hold (nothing written)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        params = {f"v_{name}": value for name, value in values.items()}
        limits = {
            "l_citizen": values["citizen_hash"],
            "l_now": values["created_at"],
            "l_procedure": proc.id,
            "l_max_active": rules.max_active,
            "l_max_day": rules.max_per_procedure_day,
        }
        return connection.execute(
            _BOOK_WITHIN_LIMITS, {"sid": slot_id, **limits, **params}
        ).scalar_one_or_none()
    # SQLite: this write transaction holds the database's single write lock, so the standing
    # read before is still current.
    if not _take_seat(session, slot_id):
        return None
    return connection.execute(_INSERT_APPOINTMENT, values).scalar_one()


def _take_seat(session: Session, slot_id: int) -> bool:
    return session.connection().execute(_TAKE_SEAT, {"sid": slot_id}).rowcount == 1


def _free_seat(session: Session, slot_id: int) -> None:
    session.connection().execute(_FREE_SEAT, {"sid": slot_id})


def _replay(session: Session, key: str, hashed: str, secret: str) -> Booked | None:
    row = session.connection().execute(_BY_IDEMPOTENCY_KEY, {"key": key}).one_or_none()
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
    # The slot, the citizen's standing and the citizen's lock: from here on no other booking
    # of theirs can commit before this transaction ends.
    row = _slot_row(session, slot_id, proc, applicant.citizen_id_hash, now, lock_citizen=True)
    if idempotency_key and (
        earlier := _replay(session, idempotency_key, applicant.citizen_id_hash, secret)
    ):
        return earlier
    _check_slot(row, now, rules)
    _check_limits(row, now, rules)
    code = tokens.booking_code()
    nonce = secrets.token_hex(8)
    manage = tokens.manage_token(secret, code, nonce)
    values = {
        "code": code,
        "slot_id": slot_id,
        "centre_id": row.centre_id,
        "service_id": row.service_id,
        "procedure_id": proc.id,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "status": AppointmentStatus.BOOKED,
        "full_name": applicant.full_name,
        "phone": applicant.phone,
        "email": applicant.email,
        "citizen_hash": applicant.citizen_id_hash,
        "manage_token_hash": token_hash(manage),
        "qr_nonce": nonce,
        "idempotency_key": idempotency_key,
        "locale": locale,
        "consent_at": now,
        "created_at": now,
    }
    appointment_id = _take_seat_and_insert(session, slot_id, values, proc, rules)
    if appointment_id is None:
        # Full, or (PostgreSQL) a booking of the same citizen committed while this one waited
        # for their lock: their standing, read again now, says which.
        current = _slot_row(session, slot_id, proc, applicant.citizen_id_hash, now)
        _check_limits(current, now, rules)
        raise Conflict("slot_full", field="slot_id", slot_id=slot_id)
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
    row = _slot_row(
        session, slot_id, proc, appointment.citizen_hash, now, ignore_appointment=appointment.id
    )
    _check_slot(row, now, rules)
    _check_limits(row, now, rules)
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
