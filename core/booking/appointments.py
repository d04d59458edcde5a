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
    Boolean,
    Connection,
    Integer,
    Row,
    and_,
    bindparam,
    event,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.catalogue.search import ProcedureEntry, index
from core.citizens.identity import (
    EMAIL_RE,
    citizen_hash,
    normalise_citizen_id,
    normalise_phone,
)
from core.common import tokens
from core.common.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from core.common.text import is_name, nfc
from core.common.timeutil import local_day, to_local
from core.common.tokens import token_hash, token_matches
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    CitizenStanding,
    Closure,
    Service,
    Slot,
    takes_clause,
)
from core.models.base import Base, UTCDateTime
from core.places.calendar import closed_clause

# fullmatch: with match and `$`, a final newline would pass.
_EMAIL = re.compile(EMAIL_RE)


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
    if not 2 <= len(name) <= 120 or not is_name(name):
        errors["full_name"] = "invalid_name"
    normal_phone = normalise_phone(phone or "")
    if normal_phone is None:
        errors["phone"] = "invalid_phone"
    cccd = normalise_citizen_id(citizen_id or "", today=local_day(now))
    if cccd is None:
        errors["citizen_id"] = "invalid_citizen_id"
    mail = (email or "").strip() or None
    if mail is not None and (len(mail) > 254 or not _EMAIL.fullmatch(mail)):
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

_TAKES = takes_clause(
    _slots.c.service_id,
    _services.c.level,
    procedure_id=bindparam("procedure_id"),
    field_id=bindparam("field_id"),
    level=bindparam("level"),
)
_CLOSED = closed_clause(_slots.c.centre_id, _slots.c.day)


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

# A slot with where and when it is: what a new appointment copies and a confirmation shows.
_SLOT_PLACE = (
    _slots.c.id,
    _slots.c.centre_id,
    _slots.c.service_id,
    _slots.c.starts_at,
    _slots.c.ends_at,
    _centres.c.code.label("centre_code"),
    _centres.c.name.label("centre_name"),
    _centres.c.address.label("centre_address"),
    _services.c.prefix.label("service_prefix"),
    _services.c.name.label("service_name"),
)
_SLOT_ROW = (
    select(
        *_SLOT_PLACE,
        _slots.c.day,
        _slots.c.capacity,
        _slots.c.booked,
        _slots.c.opens_at,
        _centres.c.active,
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
# Values of a new appointment that come from its slot (the first is the slot's id).
_SLOT_VALUES = ("slot_id", "centre_id", "service_id", "starts_at", "ends_at")
_APPOINTMENT_VALUES = (
    "code", "slot_id", "centre_id", "service_id", "procedure_id", "starts_at", "ends_at",
    "status", "full_name", "phone", "email", "citizen_hash", "manage_token_hash", "qr_nonce",
    "idempotency_key", "locale", "consent_at", "created_at",
)  # fmt: skip


_BY_IDEMPOTENCY_KEY = select(
    _appts.c.id, _appts.c.code, _appts.c.citizen_hash, _appts.c.qr_nonce
).where(_appts.c.idempotency_key == bindparam("key"))
_LOCK_CITIZEN = text("SELECT pg_advisory_xact_lock(hashtextextended(:h, 7))")


# --- PostgreSQL: a booking in one statement ---------------------------------------------------
#
# The seat, the appointment and the citizen's limits in one statement, which the API runs in
# autocommit: one round trip, where BEGIN, a read, a write and COMMIT took four (measured
# in-process on this machine, about a third of the CPU and of the wall time of the four).
#
# The limits must be counted after the citizen's lock is granted, with a snapshot that sees
# every booking of theirs committed before it. A statement's snapshot is taken when it starts,
# before any lock it waits for; a VOLATILE function's queries each take a fresh one (READ
# COMMITTED). So the lock and the counts live in MAY_BOOK, called from the seat's UPDATE, and
# the lock is held until the statement's transaction ends. Every booking takes the citizen's
# lock before the slot's row lock (the function is among the UPDATE's conditions), so two
# bookings cannot wait for each other.

MAY_BOOK = "xephang_may_book"
_MAY_BOOK_ARGS = (
    "p_citizen varchar, p_now timestamp without time zone, p_procedure integer, p_day date, "
    "p_max_active integer, p_max_day integer, p_key varchar"
)


def _may_book_condition() -> str:
    """MAY_BOOK's answer as SQL over its arguments: the limits hold (`_citizen_counts`, as
    on SQLite) and no appointment holds the idempotency key yet."""
    arg = literal_column
    active, same_day, suspended_until = _citizen_counts(
        arg("p_citizen"), arg("p_now"), arg("p_procedure"), arg("p_day"), -1
    )
    condition = and_(
        active < arg("p_max_active"),
        same_day < arg("p_max_day"),
        or_(suspended_until.is_(None), suspended_until <= arg("p_now")),
        or_(
            arg("p_key").is_(None),
            ~exists().where(_appts.c.idempotency_key == arg("p_key")),
        ),
    )
    sql = condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return "\n        ".join(line.rstrip() for line in str(sql).splitlines())


def may_book_function() -> str:
    """The DDL of MAY_BOOK. Migration 0008 holds a copy of this text; tools/check_migrations.py
    checks that the migrated database has the function this module would create."""
    return (
        f"CREATE OR REPLACE FUNCTION {MAY_BOOK}({_MAY_BOOK_ARGS})\n"
        "RETURNS boolean LANGUAGE plpgsql VOLATILE COST 10000 AS $body$\n"
        "BEGIN\n"
        "    PERFORM pg_advisory_xact_lock(hashtextextended(p_citizen, 7));\n"
        f"    RETURN {_may_book_condition()};\n"
        "END\n"
        "$body$"
    )


@event.listens_for(Base.metadata, "after_create")
def _create_may_book(_metadata: Any, connection: Connection, **_kw: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(may_book_function())


@event.listens_for(Base.metadata, "before_drop")
def _drop_may_book(_metadata: Any, connection: Connection, **_kw: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {MAY_BOOK}({_MAY_BOOK_ARGS})")


# Seat taken only if every check of `_check_slot` passes and MAY_BOOK agrees.
_SEAT = (
    update(_slots)
    .where(
        _slots.c.id == bindparam("sid"),
        _slots.c.booked < _slots.c.capacity,
        _services.c.id == _slots.c.service_id,
        _centres.c.id == _slots.c.centre_id,
        _centres.c.active,
        _slots.c.starts_at > bindparam("earliest", type_=UTCDateTime()),
        or_(
            _slots.c.opens_at.is_(None), _slots.c.opens_at <= bindparam("now", type_=UTCDateTime())
        ),
        _TAKES,
        ~_CLOSED,
        getattr(func, MAY_BOOK)(
            bindparam("citizen_hash", type_=_appts.c.citizen_hash.type),
            bindparam("now", type_=UTCDateTime()),
            bindparam("procedure_id", type_=_appts.c.procedure_id.type),
            _slots.c.day,
            bindparam("max_active", type_=Integer()),
            bindparam("max_day", type_=Integer()),
            bindparam("key", type_=_appts.c.idempotency_key.type),
            type_=Boolean(),
        ),
    )
    .values(booked=_slots.c.booked + 1)
    .returning(*_SLOT_PLACE)
    .cte("seat")
)
_FROM_SEAT = {"slot_id": _SEAT.c.id, **{n: _SEAT.c[n] for n in _SLOT_VALUES[1:]}}
_NEW_APPOINTMENT = (
    insert(_appts)
    .from_select(
        list(_APPOINTMENT_VALUES),
        select(
            *(
                _FROM_SEAT.get(name, bindparam(f"v_{name}", type_=_appts.c[name].type))
                for name in _APPOINTMENT_VALUES
            )
        ).select_from(_SEAT),
    )
    .returning(_appts.c.id)
    .cte("appointment")
)
_BOOK_IN_ONE = select(
    _NEW_APPOINTMENT.c.id.label("appointment_id"),
    *(c for c in _SEAT.c if c.name not in ("id", "centre_id", "service_id")),
).select_from(_NEW_APPOINTMENT.join(_SEAT, true()))


def _slot_row(
    session: Session,
    slot_id: int,
    proc: ProcedureEntry,
    hashed: str,
    now: datetime,
    *,
    ignore_appointment: int | None = None,
) -> Row:
    """The slot with its centre and service, whether its service takes `proc`, whether the
    day is closed, and the citizen's standing against the limits — in one round trip."""
    row = (
        session.connection()
        .execute(
            _SLOT_ROW,
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

    On PostgreSQL the booking is one statement (`_BOOK_IN_ONE`): run it in autocommit
    (`transaction(single_write=True)`) and it is its own transaction.
    """
    proc = _procedure(session, procedure_code)
    code = tokens.booking_code()
    nonce = secrets.token_hex(8)
    manage = tokens.manage_token(secret, code, nonce)
    values = {
        "code": code,
        "procedure_id": proc.id,
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
    if session.get_bind().dialect.name == "postgresql":
        row = _book_in_one(session, slot_id, proc, values, now, rules)
        if row is None:
            # Refused, or a replay: a fresh read says which.
            return _refusal(session, slot_id, proc, applicant, now, rules, idempotency_key, secret)
        appointment_id = row.appointment_id
    else:
        # SQLite: the write transaction holds the database's single write lock, so what is
        # read here stays true until the seat is taken.
        row = _slot_row(session, slot_id, proc, applicant.citizen_id_hash, now)
        if idempotency_key and (
            earlier := _replay(session, idempotency_key, applicant.citizen_id_hash, secret)
        ):
            return earlier
        _check_slot(row, now, rules)
        _check_limits(row, now, rules)
        if not _take_seat(session, slot_id):
            raise Conflict("slot_full", field="slot_id", slot_id=slot_id)
        values.update({name: row._mapping[name] for name in _SLOT_VALUES[1:]}, slot_id=slot_id)
        appointment_id = session.connection().execute(_INSERT_APPOINTMENT, values).scalar_one()
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


def _book_in_one(
    session: Session,
    slot_id: int,
    proc: ProcedureEntry,
    values: dict[str, Any],
    now: datetime,
    rules: BookingRules,
) -> Row | None:
    """PostgreSQL: take the seat and insert the appointment in one statement. The new
    appointment's id with its slot's place and times, or None when nothing was written."""
    return (
        session.connection()
        .execute(
            _BOOK_IN_ONE,
            {
                "sid": slot_id,
                "earliest": now + timedelta(minutes=rules.min_lead_minutes),
                "now": now,
                "field_id": proc.field_id,
                "level": proc.level,
                "procedure_id": proc.id,
                "citizen_hash": values["citizen_hash"],
                "max_active": rules.max_active,
                "max_day": rules.max_per_procedure_day,
                "key": values["idempotency_key"],
                **{f"v_{name}": value for name, value in values.items()},
            },
        )
        .one_or_none()
    )


def _refusal(
    session: Session,
    slot_id: int,
    proc: ProcedureEntry,
    applicant: Applicant,
    now: datetime,
    rules: BookingRules,
    idempotency_key: str | None,
    secret: str,
) -> Booked:
    """Why `_BOOK_IN_ONE` wrote nothing, checked in `book`'s order: the first booking under
    the same key is returned; otherwise the refusal is raised. A seat freed or a booking
    cancelled since the statement makes no difference: the slot is then called full."""
    if idempotency_key and (
        earlier := _replay(session, idempotency_key, applicant.citizen_id_hash, secret)
    ):
        return earlier
    row = _slot_row(session, slot_id, proc, applicant.citizen_id_hash, now)
    _check_slot(row, now, rules)
    _check_limits(row, now, rules)
    raise Conflict("slot_full", field="slot_id", slot_id=slot_id)


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
