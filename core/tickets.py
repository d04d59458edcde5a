"""The centre floor: issuing tickets, checking in appointments, calling and serving.

Every operation takes the objects it acts on and `now`, writes a TicketEvent, records a
domain event to publish after commit, and does not commit.

Concurrency: ticket numbers come from one atomic upsert on `ticket_sequences` in the
issuing transaction (unique and gap-free: a rolled-back issue rolls its number back
too). "Call next" claims the head of the counter's merged queue in one conditional UPDATE
whose order is the pure policy's (core.queue_policy.pick_next; a test holds the two
together). On PostgreSQL the head is locked with SKIP LOCKED, so counters calling at once
each get a different ticket without queueing behind one another, and never the same one.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from core import queue_policy
from core.auth import StaffLike, may_act_at
from core.booking import suspension
from core.cache import TTLCache
from core.calendar_days import is_public_holiday, opening_periods
from core.db import record, transaction_memo
from core.errors import Conflict, DomainError, Forbidden, LimitExceeded, NotFound
from core.events import DomainEvent
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    CitizenStanding,
    Closure,
    Counter,
    CounterService,
    PriorityClass,
    Procedure,
    Role,
    Service,
    Staff,
    Ticket,
    TicketEvent,
    TicketSequence,
    TicketSource,
    TicketStateError,
    TicketStatus,
    service_fields,
    service_procedures,
)
from core.timeutil import local_day, local_to_utc, to_local
from core.tokens import read_qr

# Roles that may act on a ticket at a counter another officer holds.
_SUPERVISORS = (Role.MANAGER, Role.OPERATOR, Role.ADMIN)


@dataclass(frozen=True)
class FloorRules:
    """Configurable rules of the floor."""

    # Minutes after the slot start an appointment still queues at its booked time.
    grace_minutes: int = 15
    # How early before the slot a citizen may check in.
    early_minutes: int = 60
    # After this many minutes late the appointment is refused at the kiosk.
    late_limit_minutes: int = 90
    # Unanswered calls before a ticket becomes a no-show automatically.
    max_calls: int = 3
    # Priority tickets called in a row before a regular one gets a turn.
    priority_interleave: int = 2
    remote_tickets_per_day: int = 1


# ---------------------------------------------------------------- issuing


def centre_open_now(session: Session, centre: Centre, now: datetime) -> bool:
    """Whether the centre is within its opening hours today (holidays and closures count)."""
    day = local_day(now)
    if is_public_holiday(day) or _closed_on(session, centre.id, day):
        return False
    return _within_hours(centre, day, now)


def _within_hours(centre: _HasHours, day: date, now: datetime) -> bool:
    """Whether `now` falls in an opening period of `day` (a Centre, or a walk-in's floor)."""
    return any(
        local_to_utc(day, start) <= now < local_to_utc(day, end)
        for start, end in opening_periods(centre, day)  # type: ignore[arg-type]
    )


class _HasHours(Protocol):
    opening_hours: dict[str, Any]


def _closed_on(session: Session, centre_id: int, day: date) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Closure)
            .where(
                Closure.day == day, or_(Closure.centre_id == centre_id, Closure.centre_id.is_(None))
            )
        )
    )


def next_number(session: Session, service_id: int, day: date) -> int:
    """Atomically take the next ticket number of a service for a local day."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(TicketSequence).values(service_id=service_id, day=day, last_number=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[TicketSequence.service_id, TicketSequence.day],
        set_={"last_number": TicketSequence.last_number + 1},
    ).returning(TicketSequence.last_number)
    return session.execute(stmt).scalar_one()


def _event(session: Session, ticket: Ticket, kind: str, at: datetime, **data: object) -> None:
    """Write the audit row of a change and announce it (after commit).

    The row is added to the session, not inserted at once: the rows of one transaction go
    to the database together at its flush, in one statement.
    """
    staff_id = data.pop("staff_id", None)
    counter_id = data.pop("counter_id", ticket.counter_id)
    data = {k: v for k, v in data.items() if v is not None}
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            kind=kind,
            at=at,
            staff_id=staff_id,
            counter_id=counter_id,
            data=data,
        )
    )
    _announce(session, ticket, kind, at, data)


def _announce(
    session: Session,
    ticket: Ticket | IssuedTicket | TicketView | _Announced,
    kind: str,
    at: datetime,
    data: dict[str, object],
) -> None:
    record(
        DomainEvent(
            f"ticket.{kind}",
            {
                "ticket_id": ticket.id,
                "public_id": ticket.public_id,
                "label": ticket.label,
                "centre_id": ticket.centre_id,
                "service_id": ticket.service_id,
                "counter_id": ticket.counter_id,
                "status": ticket.status.value,
                "at": at.isoformat(),
                **{k: v for k, v in data.items() if isinstance(v, str | int | bool)},
            },
        ),
        session,
    )


def label_for(prefix: str, number: int) -> str:
    """A ticket's label: the line's letter and its number, at least three digits (A007)."""
    return f"{prefix}{number:03d}"


# PostgreSQL: take the number, insert the ticket and its "issued" audit row in one statement
# (data-modifying CTEs), one round trip instead of three on the kiosk's hot path. The label is
# built as label_for() builds it.
_ISSUE_IN_ONE = text(
    """
WITH seq AS (
    INSERT INTO ticket_sequences (service_id, day, last_number)
    VALUES (CAST(:service_id AS INTEGER), CAST(:day AS DATE), 1)
    ON CONFLICT (service_id, day)
    DO UPDATE SET last_number = ticket_sequences.last_number + 1
    RETURNING last_number
), ticket AS (
    INSERT INTO tickets (
        public_id, centre_id, service_id, procedure_id, appointment_id, day, number, label,
        source, priority, status, queue_time, issued_at, call_count, eta_low_minutes,
        eta_high_minutes, citizen_hash, contact_name, contact_phone, transferred_from_id,
        target_counter_id
    )
    SELECT
        CAST(:public_id AS VARCHAR), CAST(:centre_id AS INTEGER), CAST(:service_id AS INTEGER),
        CAST(:procedure_id AS INTEGER), CAST(:appointment_id AS INTEGER), CAST(:day AS DATE),
        seq.last_number,
        CAST(:prefix AS VARCHAR) || CASE WHEN seq.last_number < 1000
            THEN lpad(seq.last_number::text, 3, '0') ELSE seq.last_number::text END,
        CAST(:source AS VARCHAR), CAST(:priority AS VARCHAR), 'waiting',
        CAST(:queue_time AS TIMESTAMP), CAST(:issued_at AS TIMESTAMP), 0,
        CAST(:eta_low AS INTEGER), CAST(:eta_high AS INTEGER), CAST(:citizen_hash AS VARCHAR),
        CAST(:contact_name AS VARCHAR), CAST(:contact_phone AS VARCHAR),
        CAST(:transferred_from_id AS INTEGER), CAST(:target_counter_id AS INTEGER)
    FROM seq
    RETURNING id, number
), audit AS (
    INSERT INTO ticket_events (ticket_id, kind, at, staff_id, counter_id, data)
    SELECT ticket.id, 'issued', CAST(:issued_at AS TIMESTAMP), CAST(:staff_id AS INTEGER),
        NULL, CAST(:data AS JSON)
    FROM ticket
)
SELECT id, number FROM ticket
"""
)
_TICKET_EXTRAS = (
    "citizen_hash",
    "contact_name",
    "contact_phone",
    "transferred_from_id",
    "target_counter_id",
)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _issue_in_one(
    session: Session, values: dict[str, Any], *, prefix: str, staff_id: int | None, data: dict
) -> Row:
    """PostgreSQL: number, insert and audit a ticket in one statement; (id, number)."""
    params = {
        **values,
        "source": values["source"].value,
        "priority": values["priority"].value,
        "queue_time": _naive_utc(values["queue_time"]),
        "issued_at": _naive_utc(values["issued_at"]),
        "eta_low": values["eta_low_minutes"],
        "eta_high": values["eta_high_minutes"],
        "prefix": prefix,
        "staff_id": staff_id,
        "data": json.dumps(data),
    }
    return session.connection().execute(_ISSUE_IN_ONE, params).one()


def _new_ticket_values(
    *,
    centre_id: int,
    service_id: int,
    procedure_id: int | None,
    source: TicketSource,
    priority: PriorityClass,
    day: date,
    now: datetime,
    queue_time: datetime,
    estimate: queue_policy.WaitEstimate,
    extra: dict[str, object],
    appointment_id: int | None = None,
) -> dict[str, Any]:
    """Every column of a new waiting ticket but its number and label."""
    return {
        "public_id": secrets.token_urlsafe(9),
        "centre_id": centre_id,
        "service_id": service_id,
        "procedure_id": procedure_id,
        "appointment_id": appointment_id,
        "day": day,
        "source": source,
        "priority": priority,
        "status": TicketStatus.WAITING,
        "queue_time": queue_time,
        "issued_at": now,
        "called_at": None,
        "started_at": None,
        "finished_at": None,
        "counter_id": None,
        "call_count": 0,
        "eta_low_minutes": estimate.low,
        "eta_high_minutes": estimate.high,
        **{name: extra.get(name) for name in _TICKET_EXTRAS},
    }


def _issue(
    session: Session,
    *,
    centre: Centre,
    service: Service,
    source: TicketSource,
    now: datetime,
    queue_time: datetime,
    event: dict[str, object],
    procedure_id: int | None = None,
    priority: PriorityClass = PriorityClass.NONE,
    appointment_id: int | None = None,
    staff_id: int | None = None,
    **extra: object,
) -> Ticket:
    """Number, insert and audit a new waiting ticket (its "issued" event carries `event`)."""
    unknown = set(extra) - set(_TICKET_EXTRAS)
    if unknown:
        raise TypeError(f"unexpected ticket fields: {sorted(unknown)}")
    day = local_day(now)
    # Everything read first: the number is taken last, because taking it locks the line's
    # sequence row until commit and every kiosk of the centre queues behind that lock.
    ahead = ahead_of(
        session,
        service_id=service.id,
        day=day,
        priority=priority != PriorityClass.NONE,
        queue_time=queue_time,
    )
    estimate = wait_estimate(session, service, ahead)
    values = _new_ticket_values(
        centre_id=centre.id,
        service_id=service.id,
        procedure_id=procedure_id,
        source=source,
        priority=priority,
        day=day,
        now=now,
        queue_time=queue_time,
        estimate=estimate,
        extra=extra,
        appointment_id=appointment_id,
    )
    data = {k: v for k, v in event.items() if v is not None}
    if session.get_bind().dialect.name == "postgresql":
        row = _issue_in_one(session, values, prefix=service.prefix, staff_id=staff_id, data=data)
        ticket = Ticket(id=row.id, number=row.number, label=label_for(service.prefix, row.number))
        for name, value in values.items():
            setattr(ticket, name, value)
        # Known in full without reading it back: attach it to the session as persistent.
        make_transient_to_detached(ticket)
        session.add(ticket)
    else:
        number = next_number(session, service.id, day)
        ticket = Ticket(number=number, label=label_for(service.prefix, number), **values)
        session.add(ticket)
        session.flush()
        session.add(
            TicketEvent(ticket_id=ticket.id, kind="issued", at=now, staff_id=staff_id, data=data)
        )
    # Live screens need to know whether people already waiting now have one more ahead.
    jumps = priority != PriorityClass.NONE or queue_time < now
    _announce(session, ticket, "issued", now, {**data, "jumps_line": jumps})
    # Its position is known: the presenter need not count the line again before commit.
    transaction_memo(session)[("ahead", ticket.id)] = ahead
    return ticket


def service_for(session: Session, centre: Centre, procedure: Procedure) -> Service:
    """The centre's line that takes `procedure`; NotFound-like refusal when none does."""
    for service in centre.services:
        if service.active and service.takes(procedure):
            return service
    raise Conflict("procedure_not_taken", field="procedure")


def issue_walk_in(
    session: Session,
    centre: Centre,
    *,
    now: datetime,
    procedure: Procedure | None = None,
    service: Service | None = None,
    priority: PriorityClass = PriorityClass.NONE,
) -> Ticket:
    """A walk-in ticket for a procedure (or directly a service) at the centre, queued from now.

    Raises Conflict centre_closed_now outside opening hours, procedure_not_taken.
    """
    if not centre_open_now(session, centre, now):
        raise Conflict("centre_closed_now")
    if service is None:
        if procedure is None:
            raise NotFound("service_not_found", field="service")
        service = service_for(session, centre, procedure)
    elif service.centre_id != centre.id or not service.active:
        raise NotFound("service_not_found", field="service")
    ticket = _issue(
        session,
        centre=centre,
        service=service,
        source=TicketSource.WALK_IN,
        now=now,
        queue_time=now,
        event={"source": "walk_in"},
        procedure_id=procedure.id if procedure else None,
        priority=priority,
    )
    return ticket


# ---------------------------------------------------------------- walk-in, the kiosk API's way
#
# A kiosk's walk-in is the busiest write of the floor. The API issues it from plain values:
# one prebuilt read (the centre, the line asked for or the one taking the procedure, whether
# the centre is closed today, how many wait ahead) and one write (on PostgreSQL the numbering,
# the ticket and its audit row together), without loading model objects. It refuses exactly
# what `issue_walk_in` refuses, in the same order.

_centres_t, _services_t, _procedures_t = Centre.__table__, Service.__table__, Procedure.__table__
_tickets_t, _closures_t, _events_t = Ticket.__table__, Closure.__table__, TicketEvent.__table__


@dataclass(frozen=True, slots=True)
class WalkInFloor:
    """What issuing a walk-in at a centre needs to know, read in one statement."""

    centre_id: int
    centre_code: str
    centre_name: str
    centre_active: bool
    opening_hours: dict[str, Any]
    closed_today: bool
    procedure_id: int | None
    procedure_code: str | None
    service_id: int | None
    service_prefix: str | None
    service_name: str | None
    service_active: bool
    intake_minutes: int
    ahead: int


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    """A ticket just issued, as plain values: what the answer shows and the event announces."""

    id: int
    public_id: str
    label: str
    centre_id: int
    centre_code: str
    centre_name: str
    service_id: int
    service_prefix: str
    service_name: str
    procedure_code: str | None
    source: TicketSource
    priority: PriorityClass
    queue_time: datetime
    issued_at: datetime
    ahead: int
    estimate: queue_policy.WaitEstimate
    status: TicketStatus = TicketStatus.WAITING
    counter_id: int | None = None


@dataclass(frozen=True, slots=True)
class _Line:
    """The few facts of a line that its pace needs (see `line_pace`)."""

    id: int
    intake_minutes: int


@cache
def _walk_in_floor_statement(by_prefix: bool, with_procedure: bool, priority: bool) -> Any:
    """The one read of a walk-in: centre by code, the line (by prefix, or the first active
    line by prefix order that takes the procedure, as `service_for`), closures today and
    the waiting tickets ahead (as `ahead_of` counts them for a ticket not issued yet)."""
    c, s, p, t = _centres_t, _services_t, _procedures_t, _tickets_t
    line = s.alias("line")
    choice = select(line.c.id).where(line.c.centre_id == c.c.id)
    if by_prefix:
        choice = choice.where(line.c.prefix == bindparam("prefix"))
    else:
        # Correlated explicitly: `procedures` is two levels up (the outer join).
        takes = or_(
            exists()
            .where(
                service_procedures.c.service_id == line.c.id,
                service_procedures.c.procedure_id == p.c.id,
            )
            .correlate(line, p),
            and_(
                or_(line.c.level.is_(None), line.c.level == p.c.level),
                exists()
                .where(
                    service_fields.c.service_id == line.c.id,
                    service_fields.c.field_id == p.c.field_id,
                )
                .correlate(line, p),
            ),
        )
        choice = choice.where(line.c.active.is_(True), takes).order_by(line.c.prefix)
    choice = choice.limit(1).scalar_subquery()
    closed = exists().where(
        _closures_t.c.day == bindparam("day"),
        or_(_closures_t.c.centre_id == c.c.id, _closures_t.c.centre_id.is_(None)),
    )
    earlier = t.c.queue_time <= bindparam("now")
    ahead = (
        select(func.count())
        .where(
            t.c.service_id == s.c.id,
            t.c.day == bindparam("day"),
            t.c.status == TicketStatus.WAITING,
            and_(t.c.priority != PriorityClass.NONE, earlier)
            if priority
            else or_(t.c.priority != PriorityClass.NONE, earlier),
        )
        .scalar_subquery()
    )
    columns = [
        c.c.id,
        c.c.code,
        c.c.name,
        c.c.active,
        c.c.opening_hours,
        closed.label("closed"),
        s.c.id.label("service_id"),
        s.c.prefix,
        s.c.name.label("service_name"),
        s.c.active.label("service_active"),
        s.c.intake_minutes,
        ahead.label("ahead"),
    ]
    source = c
    if with_procedure:
        columns += [p.c.id.label("procedure_id"), p.c.code.label("procedure_code")]
        source = source.outerjoin(p, p.c.code == bindparam("procedure"))
    source = source.outerjoin(s, s.c.id == choice)
    return select(*columns).select_from(source).where(c.c.code == bindparam("code"))


def walk_in_floor(
    session: Session,
    code: str,
    *,
    now: datetime,
    procedure: str | None,
    prefix: str | None,
    priority: PriorityClass,
) -> WalkInFloor | None:
    """The centre with this code and the line a walk-in would join; None for no such centre."""
    if len(code) > 16:
        return None
    wanted = prefix.strip().upper() if prefix else None
    statement = _walk_in_floor_statement(
        wanted is not None, procedure is not None, priority != PriorityClass.NONE
    )
    params: dict[str, Any] = {"code": code, "day": local_day(now), "now": now}
    if wanted is not None:
        params["prefix"] = wanted
    if procedure is not None:
        params["procedure"] = procedure
    row = session.connection().execute(statement, params).first()
    if row is None:
        return None
    return WalkInFloor(
        centre_id=row.id,
        centre_code=row.code,
        centre_name=row.name,
        centre_active=row.active,
        opening_hours=row.opening_hours or {},
        closed_today=bool(row.closed),
        procedure_id=row.procedure_id if procedure is not None else None,
        procedure_code=row.procedure_code if procedure is not None else None,
        service_id=row.service_id,
        service_prefix=row.prefix,
        service_name=row.service_name,
        service_active=bool(row.service_active),
        intake_minutes=row.intake_minutes or 0,
        ahead=int(row.ahead or 0),
    )


def issue_walk_in_at(
    session: Session,
    floor: WalkInFloor,
    *,
    now: datetime,
    procedure: str | None,
    by_prefix: bool,
    priority: PriorityClass = PriorityClass.NONE,
) -> IssuedTicket:
    """Issue a walk-in at the centre `floor` describes (the kiosk API's `issue_walk_in`).

    Raises NotFound procedure_not_found, service_not_found; Conflict centre_closed_now,
    procedure_not_taken.
    """
    if procedure is not None and floor.procedure_id is None:
        raise NotFound("procedure_not_found", field="procedure")
    if by_prefix and floor.service_id is None:
        raise NotFound("service_not_found", field="service")
    day = local_day(now)
    if is_public_holiday(day) or floor.closed_today or not _within_hours(floor, day, now):
        raise Conflict("centre_closed_now")
    if floor.service_id is None:
        raise Conflict("procedure_not_taken", field="procedure")
    if not floor.service_active:
        raise NotFound("service_not_found", field="service")
    assert floor.service_prefix is not None and floor.service_name is not None
    estimate = wait_estimate(session, _Line(floor.service_id, floor.intake_minutes), floor.ahead)
    values = _new_ticket_values(
        centre_id=floor.centre_id,
        service_id=floor.service_id,
        procedure_id=floor.procedure_id,
        source=TicketSource.WALK_IN,
        priority=priority,
        day=day,
        now=now,
        queue_time=now,
        estimate=estimate,
        extra={},
    )
    data = {"source": "walk_in"}
    ticket_id, _number, label = _insert_issued(
        session, values, prefix=floor.service_prefix, staff_id=None, data=data
    )
    issued = IssuedTicket(
        id=ticket_id,
        public_id=values["public_id"],
        label=label,
        centre_id=floor.centre_id,
        centre_code=floor.centre_code,
        centre_name=floor.centre_name,
        service_id=floor.service_id,
        service_prefix=floor.service_prefix,
        service_name=floor.service_name,
        procedure_code=floor.procedure_code,
        source=TicketSource.WALK_IN,
        priority=priority,
        queue_time=now,
        issued_at=now,
        ahead=floor.ahead,
        estimate=estimate,
    )
    jumps = priority != PriorityClass.NONE
    _announce(session, issued, "issued", now, {**data, "jumps_line": jumps})
    return issued


def _insert_issued(
    session: Session, values: dict[str, Any], *, prefix: str, staff_id: int | None, data: dict
) -> tuple[int, int, str]:
    """Number and insert a waiting ticket with its "issued" audit row: (id, number, label)."""
    if session.get_bind().dialect.name == "postgresql":
        row = _issue_in_one(session, values, prefix=prefix, staff_id=staff_id, data=data)
        return row.id, row.number, label_for(prefix, row.number)
    number = next_number(session, values["service_id"], values["day"])
    label = label_for(prefix, number)
    connection = session.connection()
    ticket_id = connection.execute(
        _tickets_t.insert().returning(_tickets_t.c.id), {**values, "number": number, "label": label}
    ).scalar_one()
    connection.execute(
        _events_t.insert(),
        {
            "ticket_id": ticket_id,
            "kind": "issued",
            "at": values["issued_at"],
            "staff_id": staff_id,
            "counter_id": None,
            "data": data,
        },
    )
    return ticket_id, number, label


def issue_remote(
    session: Session,
    centre: Centre,
    procedure: Procedure,
    *,
    citizen_hash: str,
    full_name: str,
    phone: str,
    now: datetime,
    rules: FloorRules,
) -> Ticket:
    """A same-day ticket taken from home; the citizen follows its position on the phone.

    Raises Conflict centre_closed_now, procedure_not_taken; LimitExceeded remote_per_day,
    suspended (repeated no-shows).
    """
    if not centre_open_now(session, centre, now):
        raise Conflict("centre_closed_now")
    service = service_for(session, centre, procedure)
    _lock_citizen(session, citizen_hash)
    # Repeated no-shows suspend taking numbers from home as they suspend booking.
    suspended_until = session.scalar(
        select(CitizenStanding.suspended_until).where(CitizenStanding.citizen_hash == citizen_hash)
    )
    if suspended_until is not None and suspended_until > now:
        raise suspension(suspended_until)
    today = local_day(now)
    taken = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.citizen_hash == citizen_hash,
            Ticket.day == today,
            Ticket.source == TicketSource.REMOTE,
            Ticket.status.notin_([TicketStatus.CANCELLED]),
        )
    )
    if taken >= rules.remote_tickets_per_day:
        raise LimitExceeded("remote_per_day", limit=rules.remote_tickets_per_day)
    ticket = _issue(
        session,
        centre=centre,
        service=service,
        source=TicketSource.REMOTE,
        now=now,
        queue_time=now,
        event={"source": "remote"},
        procedure_id=procedure.id,
        citizen_hash=citizen_hash,
        contact_name=full_name,
        contact_phone=phone,
    )
    return ticket


def check_in(
    session: Session, appointment: Appointment, centre: Centre, *, now: datetime, rules: FloorRules
) -> tuple[Ticket, bool]:
    """Turn a booked appointment into a queue ticket at `centre`: (ticket, newly created).

    Checking in twice returns the same ticket. Raises Conflict with the reason:
    appointment_other_centre, appointment_other_day, too_early, too_late,
    appointment_cancelled / appointment_not_active.
    """
    if appointment.status == AppointmentStatus.CHECKED_IN:
        existing = session.scalars(
            select(Ticket)
            .where(Ticket.appointment_id == appointment.id)
            .order_by(Ticket.id.desc())
            .limit(1)
        ).first()
        if existing is not None:
            return existing, False
    if appointment.status == AppointmentStatus.CANCELLED:
        raise Conflict("appointment_cancelled")
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("appointment_not_active", status=appointment.status.value)
    if appointment.centre_id != centre.id:
        other = appointment.centre
        raise Conflict(
            "appointment_other_centre", centre_name=other.name, centre_address=other.address
        )
    if local_day(appointment.starts_at) != local_day(now):
        raise Conflict(
            "appointment_other_day", date=to_local(appointment.starts_at).strftime("%d/%m/%Y")
        )
    if now < appointment.starts_at - timedelta(minutes=rules.early_minutes):
        earliest = appointment.starts_at - timedelta(minutes=rules.early_minutes)
        raise Conflict("too_early", time=to_local(earliest).strftime("%H:%M"))
    if now > appointment.starts_at + timedelta(minutes=rules.late_limit_minutes):
        raise Conflict("too_late")
    queue_time, on_time = queue_policy.effective_queue_time(
        now, appointment.starts_at, grace_minutes=rules.grace_minutes
    )
    claimed = session.execute(
        update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.status == AppointmentStatus.BOOKED)
        .values(status=AppointmentStatus.CHECKED_IN, checked_in_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        session.expire(appointment)
        return check_in(session, appointment, centre, now=now, rules=rules)
    ticket = _issue(
        session,
        centre=centre,
        service=appointment.service,
        source=TicketSource.APPOINTMENT,
        now=now,
        queue_time=queue_time,
        event={"source": "appointment", "on_time": on_time},
        procedure_id=appointment.procedure_id,
        appointment_id=appointment.id,
    )
    session.expire(appointment)
    return ticket, True


# ---------------------------------------------------------------- calling


def current_ticket(session: Session, counter: Counter) -> Ticket | None:
    """The ticket called to or being served at this counter, if any."""
    return session.scalars(
        select(Ticket)
        .where(
            Ticket.counter_id == counter.id,
            Ticket.status.in_([TicketStatus.CALLED, TicketStatus.SERVING]),
        )
        .order_by(Ticket.called_at.desc())
        .limit(1)
    ).first()


def _head_of_queue(counter_id: Any, centre_id: Any, day: Any, *, regular_turn: bool) -> Any:
    """The id of the ticket at the head of a counter's merged queue, locked (SKIP LOCKED on
    PostgreSQL), as a scalar subquery; the arguments are values or bound parameters."""
    link = CounterService
    order = [case((Ticket.target_counter_id == counter_id, 0), else_=1)]
    if not regular_turn:
        order.append(case((Ticket.priority != PriorityClass.NONE, 0), else_=1))
    return (
        select(Ticket.id)
        .join(link, (link.service_id == Ticket.service_id) & (link.counter_id == counter_id))
        .where(
            Ticket.centre_id == centre_id,
            Ticket.day == day,
            Ticket.status == TicketStatus.WAITING,
            or_(Ticket.target_counter_id.is_(None), Ticket.target_counter_id == counter_id),
        )
        .order_by(*order, Ticket.queue_time, link.rank, Ticket.id)
        .limit(1)
        .with_for_update(of=Ticket, skip_locked=True)
        .scalar_subquery()
    )


def _claim_next(
    session: Session, counter: Counter, day: date, now: datetime, *, regular_turn: bool
) -> Ticket | None:
    """Claim the head of the counter's merged queue in one statement; None when empty.

    The order is queue_policy.pick_next's, in SQL: tickets transferred to this counter, then
    priority tickets (unless it is a regular ticket's turn), then the earliest queue time,
    then the counter's preference among its services. On PostgreSQL the head row is locked
    with SKIP LOCKED, so counters calling at the same moment each take a different ticket
    without waiting for one another (SQLite has a single writer anyway).
    """
    head = _head_of_queue(counter.id, counter.centre_id, day, regular_turn=regular_turn)
    claim = (
        update(Ticket)
        .where(Ticket.id == head, Ticket.status == TicketStatus.WAITING)
        .values(status=TicketStatus.CALLED, counter_id=counter.id, called_at=now, call_count=1)
        .returning(Ticket)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return session.scalars(claim).first()


def call_next(
    session: Session,
    counter: Counter,
    *,
    now: datetime,
    rules: FloorRules,
    staff_id: int | None = None,
) -> Ticket | None:
    """Hand the counter the next ticket it may serve; None when nobody waits.

    A ticket still being served here is completed first. Raises Conflict counter_closed,
    counter_busy (a called ticket has not been started, recalled or marked no-show).
    """
    # One call at a time per counter (double clicks), reading its state as it is now —
    # unless this transaction already read it so (core.counters.counter_for(lock=True)).
    if not transaction_memo(session).get(("counter_locked", counter.id)):
        session.refresh(counter, with_for_update=True)
    if not counter.is_open:
        raise Conflict("counter_closed")
    current = current_ticket(session, counter)
    if current is not None and current.status == TicketStatus.CALLED:
        raise Conflict("counter_busy", label=current.label)
    interleave = rules.priority_interleave
    ticket = _claim_next(
        session,
        counter,
        local_day(now),
        now,
        regular_turn=interleave > 0 and counter.priority_streak >= interleave,
    )
    # The one still served here is done (after the claim: its changes and both audit rows
    # then reach the database in one flush).
    if current is not None:
        complete(session, current, now=now, staff_id=staff_id)
    if ticket is None:
        return None
    streak = counter.priority_streak + 1 if ticket.is_priority else 0
    if streak != counter.priority_streak:
        counter.priority_streak = streak
    _event(session, ticket, "called", now, staff_id=staff_id, recall=False)
    return ticket


def recall(
    session: Session,
    counter: Counter,
    *,
    now: datetime,
    rules: FloorRules,
    staff_id: int | None = None,
) -> Ticket:
    """Call the counter's called ticket again; past `max_calls` it becomes a no-show."""
    ticket = current_ticket(session, counter)
    if ticket is None or ticket.status != TicketStatus.CALLED:
        raise Conflict("nothing_to_recall")
    if ticket.call_count >= rules.max_calls:
        no_show(session, ticket, now=now, staff_id=staff_id, automatic=True)
        return ticket
    ticket.recall(at=now)
    _event(
        session, ticket, "recalled", now, staff_id=staff_id, recall=True, calls=ticket.call_count
    )
    return ticket


def start(session: Session, ticket: Ticket, *, now: datetime, staff_id: int | None = None) -> None:
    """The citizen came to the counter: called → serving."""
    ticket.start(at=now)
    _event(session, ticket, "started", now, staff_id=staff_id)


def complete(
    session: Session, ticket: Ticket, *, now: datetime, staff_id: int | None = None
) -> None:
    """Serving → done; an appointment behind it is done too."""
    ticket.complete(at=now)
    forget_line_pace(ticket.service_id)
    _close_appointment(session, ticket, AppointmentStatus.DONE)
    _event(session, ticket, "completed", now, staff_id=staff_id)


def no_show(
    session: Session,
    ticket: Ticket,
    *,
    now: datetime,
    staff_id: int | None = None,
    automatic: bool = False,
) -> None:
    """Called but never came: no-show (an appointment behind it too)."""
    ticket.mark_no_show(at=now)
    _close_appointment(session, ticket, AppointmentStatus.NO_SHOW)
    _event(session, ticket, "no_show", now, staff_id=staff_id, automatic=automatic)


def _close_appointment(session: Session, ticket: Ticket, status: AppointmentStatus) -> None:
    """The appointment a ticket came from ends as the ticket did."""
    if ticket.appointment_id is not None:
        session.execute(
            update(Appointment)
            .where(Appointment.id == ticket.appointment_id)
            .values(status=status)
            .execution_options(synchronize_session=False)
        )


def cancel(session: Session, ticket: Ticket, *, now: datetime, staff_id: int | None = None) -> None:
    ticket.cancel(at=now)
    _event(session, ticket, "cancelled", now, staff_id=staff_id)


def transfer(
    session: Session,
    ticket: Ticket,
    *,
    now: datetime,
    to_service: Service | None = None,
    to_counter: Counter | None = None,
    to_centre: Centre | None = None,
    staff_id: int | None = None,
) -> Ticket:
    """Close `ticket` and queue a new one elsewhere that keeps its queue time and priority.

    Exactly one target: a service of the same centre, a counter of the same centre (only
    that counter will call it), or another centre (the line there taking the procedure).
    """
    targets = [t for t in (to_service, to_counter, to_centre) if t is not None]
    if len(targets) != 1:
        raise Conflict("transfer_target_required")
    target_counter_id = None
    centre = ticket.centre
    if to_service is not None:
        if to_service.centre_id != ticket.centre_id:
            raise Conflict("transfer_other_centre_service")
        service = to_service
    elif to_counter is not None:
        if to_counter.centre_id != ticket.centre_id:
            raise Conflict("transfer_other_centre_counter")
        served = [link.service for link in to_counter.service_links]
        if not served:
            raise Conflict("counter_serves_nothing")
        service = next((s for s in served if s.id == ticket.service_id), served[0])
        target_counter_id = to_counter.id
    else:
        assert to_centre is not None
        centre = to_centre
        if ticket.procedure is not None:
            service = service_for(session, to_centre, ticket.procedure)
        else:
            same = [s for s in to_centre.services if s.prefix == ticket.service.prefix]
            if not same:
                raise Conflict("procedure_not_taken")
            service = same[0]
    ticket.mark_transferred(at=now)
    new = _issue(
        session,
        centre=centre,
        service=service,
        source=ticket.source,
        now=now,
        queue_time=ticket.queue_time,
        event={"source": "transfer", "came_from": ticket.public_id},
        procedure_id=ticket.procedure_id,
        priority=ticket.priority,
        appointment_id=ticket.appointment_id,
        staff_id=staff_id,
        transferred_from_id=ticket.id,
        target_counter_id=target_counter_id,
        citizen_hash=ticket.citizen_hash,
        contact_name=ticket.contact_name,
        contact_phone=ticket.contact_phone,
    )
    _event(session, ticket, "transferred", now, staff_id=staff_id, to=new.public_id)
    return new


def release_targeted(
    session: Session, counter: Counter, *, now: datetime, staff_id: int | None = None
) -> list[Ticket]:
    """Tickets transferred to `counter` that still wait go back to their line (keeping their
    queue time) when it closes, so they are not stranded behind a closed counter."""
    stranded = list(
        session.scalars(
            select(Ticket).where(
                Ticket.target_counter_id == counter.id, Ticket.status == TicketStatus.WAITING
            )
        )
    )
    for ticket in stranded:
        ticket.target_counter_id = None
        _event(session, ticket, "released", now, staff_id=staff_id, counter=counter.number)
    return stranded


# ---------------------------------------------------------------- the counter API on PostgreSQL
#
# Calling and starting are the officer's busiest requests. On PostgreSQL the counter API runs
# them from plain values in two statements each: a read (for calling, it locks the counter),
# then one statement (data-modifying CTEs) that makes every change and writes the audit rows.
# The rules are those of `call_next` and `start` above, which the pages (and SQLite) use;
# tests/counter/test_api_postgres.py runs the counter API's tests on this path.

_counters_t, _staff_t, _appointments_t = Counter.__table__, Staff.__table__, Appointment.__table__
# The counter a ticket is at, and the one it was transferred to.
_at_counter, _target_counter = _counters_t.alias("at_counter"), _counters_t.alias("target_counter")


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket as the officer's screen shows it, as plain values."""

    id: int
    public_id: str
    label: str
    centre_id: int
    centre_code: str
    centre_name: str
    service_id: int
    service_prefix: str
    service_name: str
    procedure_code: str | None
    procedure_name: str | None
    source: TicketSource
    priority: PriorityClass
    status: TicketStatus
    queue_time: datetime
    issued_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    call_count: int
    counter_id: int | None
    counter_number: int | None
    target_counter_number: int | None
    appointment_code: str | None
    appointment_starts_at: datetime | None
    citizen_name: str | None


@dataclass(frozen=True, slots=True)
class HeldCounter:
    """A counter locked for an action of its officer (see `lock_held_counter`)."""

    id: int
    centre_id: int
    number: int
    priority_streak: int


def _view_columns(t: Any) -> list[Any]:
    """Columns of a TicketView, from `t` (tickets or a CTE returning its columns) joined as
    in `_view_source`."""
    p, a, s, c = _procedures_t, _appointments_t, _services_t, _centres_t
    at, target = _at_counter, _target_counter
    return [
        t.c.id,
        t.c.public_id,
        t.c.label,
        t.c.centre_id,
        c.c.code.label("centre_code"),
        c.c.name.label("centre_name"),
        t.c.service_id,
        s.c.prefix.label("service_prefix"),
        s.c.name.label("service_name"),
        p.c.code.label("procedure_code"),
        p.c.name.label("procedure_name"),
        t.c.source,
        t.c.priority,
        t.c.status,
        t.c.queue_time,
        t.c.issued_at,
        t.c.called_at,
        t.c.started_at,
        t.c.call_count,
        t.c.counter_id,
        at.c.number.label("counter_number"),
        target.c.number.label("target_counter_number"),
        a.c.code.label("appointment_code"),
        a.c.starts_at.label("appointment_starts_at"),
        # As `officer_ticket`: the appointment's name, else the remote ticket's contact.
        case((a.c.id.is_not(None), a.c.full_name), else_=t.c.contact_name).label("citizen_name"),
    ]


def _view_source(t: Any) -> Any:
    p, a, s, c = _procedures_t, _appointments_t, _services_t, _centres_t
    at, target = _at_counter, _target_counter
    return (
        t.join(s, s.c.id == t.c.service_id)
        .join(c, c.c.id == s.c.centre_id)
        .outerjoin(p, p.c.id == t.c.procedure_id)
        .outerjoin(a, a.c.id == t.c.appointment_id)
        .outerjoin(at, at.c.id == t.c.counter_id)
        .outerjoin(target, target.c.id == t.c.target_counter_id)
    )


_VIEW_FIELDS = TicketView.__slots__


def _view(row: Any, **changes: Any) -> TicketView:
    values = {name: getattr(row, name) for name in _VIEW_FIELDS}
    values.update(changes)
    values["citizen_name"] = values["citizen_name"] or None
    return TicketView(**values)


_holder = _staff_t.alias("holder")
_LOCK_COUNTER = (
    select(
        _counters_t.c.id,
        _counters_t.c.centre_id,
        _counters_t.c.number,
        _counters_t.c.is_open,
        _counters_t.c.active,
        _counters_t.c.staff_id,
        _counters_t.c.priority_streak,
        _holder.c.full_name.label("holder_name"),
    )
    .select_from(_counters_t.outerjoin(_holder, _holder.c.id == _counters_t.c.staff_id))
    .where(_counters_t.c.id == bindparam("counter_id"))
    .with_for_update(of=_counters_t)
)


def lock_held_counter(
    session: Session, counter_id: int, staff: StaffLike, *, day: date
) -> HeldCounter:
    """The counter `staff` holds open, locked for one action at a time (as
    `core.counters.held_counter(lock=True)`). Raises NotFound counter_not_found, Forbidden
    forbidden, Conflict counter_closed, counter_not_yours."""
    row = session.connection().execute(_LOCK_COUNTER, {"counter_id": counter_id}).first()
    if row is None or not row.active:
        raise NotFound("counter_not_found")
    if not may_act_at(session, staff, row.centre_id, day):
        raise Forbidden("forbidden")
    if not row.is_open:
        raise Conflict("counter_closed")
    if row.staff_id != staff.id:
        raise Conflict("counter_not_yours", number=row.number, name=row.holder_name or "?")
    return HeldCounter(row.id, row.centre_id, row.number, row.priority_streak)


@cache
def _call_next_statement(regular_turn: bool) -> Any:
    """One statement for `call_next` at a locked counter: the ticket at the counter now
    (`cur`), the claim of the head of its queue unless a called ticket waits there, the
    completion of a ticket served there, its appointment, the audit rows, the priority
    streak; answers the current ticket and the view of the one called."""
    t, ev, k = _tickets_t, _events_t, _counters_t
    # Parameters are named unlike any column: an UPDATE takes a parameter named like a
    # column of its table as a value to set.
    counter_id = bindparam("p_counter", type_=t.c.counter_id.type)
    now = bindparam("p_now", type_=t.c.called_at.type)
    staff_id = bindparam("p_staff", type_=ev.c.staff_id.type)
    centre_id = bindparam("p_centre", type_=t.c.centre_id.type)
    cur = (
        select(
            t.c.id, t.c.status, t.c.label, t.c.public_id, t.c.centre_id, t.c.service_id,
            t.c.appointment_id,
        )
        .where(
            # The centre too (a counter only ever calls its centre's tickets): either the
            # counter index or the floor index (centre, status) finds the ticket at once.
            t.c.centre_id == centre_id,
            t.c.counter_id == counter_id,
            or_(t.c.status == TicketStatus.CALLED, t.c.status == TicketStatus.SERVING),
        )
        .order_by(t.c.called_at.desc())
        .limit(1)
        .cte("cur")
    )  # fmt: skip
    busy = exists().where(cur.c.status == TicketStatus.CALLED)
    head = _head_of_queue(counter_id, centre_id, bindparam("p_day"), regular_turn=regular_turn)
    claimed = (
        update(t)
        .where(t.c.id == head, t.c.status == TicketStatus.WAITING, ~busy)
        .values(status=TicketStatus.CALLED, counter_id=counter_id, called_at=now, call_count=1)
        .returning(*(t.c[name] for name in _CLAIMED_COLUMNS))
        .cte("claimed")
    )
    serving = select(cur.c.id).where(cur.c.status == TicketStatus.SERVING).scalar_subquery()
    done = (
        update(t)
        .where(t.c.id == serving)
        .values(status=TicketStatus.DONE, finished_at=now)
        .returning(t.c.id, t.c.appointment_id)
        .cte("done")
    )
    closed = (
        update(_appointments_t)
        .where(_appointments_t.c.id == select(done.c.appointment_id).scalar_subquery())
        .values(status=AppointmentStatus.DONE)
        .cte("closed")
    )
    audit_columns = ["ticket_id", "kind", "at", "staff_id", "counter_id", "data"]
    data_type = ev.c.data.type
    audit = (
        insert(ev)
        .from_select(
            audit_columns,
            select(
                done.c.id, literal("completed"), now, staff_id, counter_id,
                bindparam("p_completed", type_=data_type),
            ).union_all(
                select(
                    claimed.c.id, literal("called"), now, staff_id, counter_id,
                    bindparam("p_called", type_=data_type),
                )
            ),
        )
        .cte("audit")
    )  # fmt: skip
    priority_claimed = exists().where(claimed.c.priority != PriorityClass.NONE)
    streak_value = case((priority_claimed, k.c.priority_streak + 1), else_=0)
    streak = (
        update(k)
        .where(k.c.id == counter_id, exists().where(claimed.c.id.is_not(None)))
        .where(k.c.priority_streak != streak_value)
        .values(priority_streak=streak_value)
        .cte("streak")
    )
    one = select(literal(1).label("one")).subquery("one")
    source = _view_source(claimed)
    return (
        select(
            cur.c.id.label("cur_id"),
            cur.c.status.label("cur_status"),
            cur.c.label.label("cur_label"),
            cur.c.public_id.label("cur_public_id"),
            cur.c.centre_id.label("cur_centre_id"),
            cur.c.service_id.label("cur_service_id"),
            *_view_columns(claimed),
        )
        .select_from(one.outerjoin(cur, true()).outerjoin(source, true()))
        .add_cte(done, closed, audit, streak)
    )


_CLAIMED_COLUMNS = (
    "id", "public_id", "label", "centre_id", "service_id", "procedure_id", "appointment_id",
    "source", "priority", "status", "queue_time", "issued_at", "called_at", "started_at",
    "call_count", "counter_id", "target_counter_id", "contact_name",
)  # fmt: skip


def call_next_at(
    session: Session,
    counter: HeldCounter,
    *,
    now: datetime,
    rules: FloorRules,
    staff_id: int | None,
) -> TicketView | None:
    """`call_next` at a counter locked by `lock_held_counter`, on PostgreSQL, in one statement.

    Raises Conflict counter_busy (a called ticket has not been started, recalled or marked
    no-show); returns None when nobody waits (a ticket served here is completed either way).
    """
    interleave = rules.priority_interleave
    regular_turn = interleave > 0 and counter.priority_streak >= interleave
    row = (
        session.connection()
        .execute(
            _call_next_statement(regular_turn),
            {
                "p_counter": counter.id,
                "p_centre": counter.centre_id,
                "p_day": local_day(now),
                "p_now": now,
                "p_staff": staff_id,
                "p_completed": {},
                "p_called": {"recall": False},
            },
        )
        .one()
    )
    if row.cur_status == TicketStatus.CALLED:
        raise Conflict("counter_busy", label=row.cur_label)
    if row.cur_status == TicketStatus.SERVING:
        forget_line_pace(row.cur_service_id)
        _announce(
            session,
            _Announced(
                row.cur_id, row.cur_public_id, row.cur_label, row.cur_centre_id,
                row.cur_service_id, counter.id, TicketStatus.DONE,
            ),
            "completed",
            now,
            {},
        )  # fmt: skip
    if row.id is None:
        return None
    view = _view(row)
    _announce(session, view, "called", now, {"recall": False})
    return view


@dataclass(frozen=True, slots=True)
class _Announced:
    """What `_announce` tells of a ticket."""

    id: int
    public_id: str
    label: str
    centre_id: int
    service_id: int
    counter_id: int | None
    status: TicketStatus


def _ticket_view_statement() -> Any:
    t = _tickets_t
    holder, at = _staff_t.alias("holder"), _at_counter
    return (
        select(
            *_view_columns(t),
            at.c.staff_id.label("holder_id"),
            holder.c.full_name.label("holder_name"),
        )
        .select_from(_view_source(t).outerjoin(holder, holder.c.id == at.c.staff_id))
        .where(t.c.public_id == bindparam("public_id"))
    )


_TICKET_FOR_ACTION = _ticket_view_statement()


def _start_statement() -> Any:
    t, ev = _tickets_t, _events_t
    now = bindparam("p_now", type_=t.c.started_at.type)
    started = (
        update(t)
        .where(t.c.id == bindparam("p_ticket"), t.c.status == TicketStatus.CALLED)
        .values(status=TicketStatus.SERVING, started_at=now)
        .returning(t.c.id, t.c.counter_id)
        .cte("started")
    )
    return (
        insert(ev)
        .from_select(
            ["ticket_id", "kind", "at", "staff_id", "counter_id", "data"],
            select(
                started.c.id,
                literal("started"),
                now,
                bindparam("p_staff", type_=ev.c.staff_id.type),
                started.c.counter_id,
                bindparam("p_data", type_=ev.c.data.type),
            ),
        )
        .returning(ev.c.id)
    )


_START = _start_statement()


def _ticket_for_action(session: Session, public_id: str) -> Any:
    if not 0 < len(public_id) <= 32:
        return None
    return session.connection().execute(_TICKET_FOR_ACTION, {"public_id": public_id}).first()


def start_at(session: Session, public_id: str, staff: StaffLike, *, now: datetime) -> TicketView:
    """`ticket_for_staff` then `start`, on PostgreSQL, from plain values in two statements.

    The read takes no lock: the change applies only to a ticket still called (as the model's
    `start` requires), so a ticket changed in between is refused as ticket_wrong_state.
    Raises NotFound ticket_not_found, Forbidden forbidden, Conflict counter_not_yours,
    ticket_wrong_state.
    """
    connection = session.connection()
    row = _ticket_for_action(session, public_id)
    if row is None:
        raise NotFound("ticket_not_found")
    if not may_act_at(session, staff, row.centre_id, local_day(now)):
        raise Forbidden("forbidden")
    if (
        row.status in (TicketStatus.CALLED, TicketStatus.SERVING)
        and row.holder_id is not None
        and row.holder_id != staff.id
        and staff.role not in _SUPERVISORS
    ):
        raise Conflict("counter_not_yours", number=row.counter_number, name=row.holder_name)
    if row.status != TicketStatus.CALLED:
        raise TicketStateError(action="start", status=row.status.value, label=row.label)
    # Parameters are named unlike any column: an UPDATE takes a parameter named like a
    # column of its table as a value to set.
    params = {"p_ticket": row.id, "p_now": now, "p_staff": staff.id, "p_data": {}}
    if connection.execute(_START, params).first() is None:
        now_row = _ticket_for_action(session, public_id)  # changed since it was read
        status = now_row.status.value if now_row is not None else row.status.value
        raise TicketStateError(action="start", status=status, label=row.label)
    view = _view(row, status=TicketStatus.SERVING, started_at=now)
    _announce(session, view, "started", now, {})
    return view


# ---------------------------------------------------------------- position and wait


def position(session: Session, ticket: Ticket) -> int:
    """How many waiting tickets of the same line are ahead of this one."""
    if ticket.status != TicketStatus.WAITING:
        return 0
    known = transaction_memo(session).get(("ahead", ticket.id))
    if known is not None:
        return int(known)
    return ahead_of(
        session,
        service_id=ticket.service_id,
        day=ticket.day,
        priority=ticket.priority != PriorityClass.NONE,
        queue_time=ticket.queue_time,
        ticket_id=ticket.id,
    )


def ahead_of(
    session: Session,
    *,
    service_id: int,
    day: date,
    priority: bool,
    queue_time: datetime,
    ticket_id: int | None = None,
) -> int:
    """Waiting tickets of a line that go before a ticket with this priority and queue time
    (`ticket_id` None: one not issued yet, so every tie is ahead of it)."""
    earlier = Ticket.queue_time < queue_time
    tie = Ticket.queue_time == queue_time
    earlier = (
        or_(earlier, tie & (Ticket.id < ticket_id)) if ticket_id is not None else or_(earlier, tie)
    )
    query = (
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.service_id == service_id,
            Ticket.day == day,
            Ticket.status == TicketStatus.WAITING,
        )
    )
    if priority:
        query = query.where(Ticket.priority != PriorityClass.NONE, earlier)
    else:
        query = query.where(or_(Ticket.priority != PriorityClass.NONE, earlier))
    if ticket_id is not None:
        query = query.where(Ticket.id != ticket_id)
    return int(session.scalar(query) or 0)


def open_counter_weight(session: Session, service_id: int) -> float:
    """Open counters serving a line, each counted by its share of time for this line."""
    rows = session.execute(
        select(Counter.id, func.count(CounterService.service_id))
        .join(CounterService, CounterService.counter_id == Counter.id)
        .where(
            Counter.is_open.is_(True),
            Counter.id.in_(
                select(CounterService.counter_id).where(CounterService.service_id == service_id)
            ),
        )
        .group_by(Counter.id)
    ).all()
    return sum(1.0 / n for _, n in rows)


def recent_service_minutes(session: Session, service_id: int, *, limit: int = 20) -> list[float]:
    rows = session.execute(
        select(Ticket.started_at, Ticket.finished_at)
        .where(
            Ticket.service_id == service_id,
            Ticket.status == TicketStatus.DONE,
            Ticket.started_at.is_not(None),
        )
        .order_by(Ticket.finished_at.desc())
        .limit(limit)
    ).all()
    return [(f - s).total_seconds() / 60 for s, f in rows if s and f]


# A line's pace (typical service minutes, open counters) changes slowly: read it at most every
# few seconds per process rather than twice per ticket. Completing a ticket or opening or closing
# a counter in this process forgets it at once; other processes catch up within the TTL.
_pace: TTLCache[tuple[float, float]] = TTLCache(ttl=10.0)


def forget_line_pace(service_id: int | None = None) -> None:
    """Drop cached line paces (one line's, or every line's)."""
    _pace.forget(None if service_id is None else (lambda key: key == service_id))


def line_pace(session: Session, service: Service) -> tuple[float, float]:
    """(typical minutes per citizen, open counters weighted by their share) of a line."""

    def read() -> tuple[float, float]:
        minutes = queue_policy.typical_service_minutes(
            recent_service_minutes(session, service.id), float(service.intake_minutes)
        )
        return minutes, open_counter_weight(session, service.id)

    return _pace.get(session, service.id, read)


def wait_estimate(session: Session, service: Service, ahead: int) -> queue_policy.WaitEstimate:
    """The wait range for someone with `ahead` people before them in `service`'s line."""
    minutes, counters = line_pace(session, service)
    return queue_policy.estimate_wait(ahead, counters, minutes)


def estimate_for(session: Session, ticket: Ticket, *, now: datetime) -> queue_policy.WaitEstimate:
    """The wait range for a ticket from its position, open counters and recent service times."""
    return wait_estimate(session, ticket.service, position(session, ticket))


# ---------------------------------------------------------------- kiosk and floor views


class InvalidQr(DomainError):
    """The scanned text is not a QR code this system signed (forged, garbled, foreign)."""

    code = "invalid_qr"
    status = 422


def _lock_citizen(session: Session, citizen_hash: str) -> None:
    """Serialise one citizen's remote tickets so two requests cannot both pass the daily limit.

    SQLite needs nothing: the write transaction already holds the database's only write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:h, 8))"), {"h": citizen_hash}
        )


def appointment_for_check_in(
    session: Session,
    *,
    secret: str,
    qr: str | None = None,
    code: str | None = None,
    phone_last4: str | None = None,
) -> Appointment:
    """The appointment a kiosk user presents: a signed QR, or booking code + last 4 phone digits.

    Raises InvalidQr for a QR this system did not sign (or an outdated one), NotFound
    appointment_not_found for an unknown code or wrong digits (the same answer for both, so
    the kiosk tells a guesser nothing).
    """
    if qr is not None:
        read = read_qr(secret, qr.strip())
        if read is None:
            raise InvalidQr(field="qr")
        code, nonce = read
        appointment = _appointment_by_code(session, code)
        if appointment is None:
            raise NotFound("appointment_not_found", field="qr")
        if not hmac.compare_digest(appointment.qr_nonce, nonce):
            raise InvalidQr(field="qr")
        return appointment
    appointment = _appointment_by_code(session, code or "")
    digits = appointment.phone[-4:] if appointment is not None and appointment.phone else ""
    if (
        appointment is None
        or len(digits) != 4
        or not hmac.compare_digest(digits, phone_last4 or "")
    ):
        raise NotFound("appointment_not_found", field="code")
    return appointment


def _appointment_by_code(session: Session, code: str) -> Appointment | None:
    wanted = "".join(code.split()).upper()
    if not wanted or len(wanted) > 16:
        return None
    return session.scalars(select(Appointment).where(Appointment.code == wanted)).one_or_none()


@dataclass(frozen=True)
class QueueSnapshot:
    """The floor of a centre right now: who waits in each line, who is at each counter."""

    waiting: dict[int, list[Ticket]]  # service id → waiting tickets in line order
    at_counters: dict[int, Ticket]  # counter id → the ticket called or served there


def queue_snapshot(session: Session, centre: Centre, *, now: datetime) -> QueueSnapshot:
    """Waiting tickets of every line of `centre` today (priority first, then queue time) and
    the ticket at each counter, in two queries."""
    day = local_day(now)
    active = session.scalars(
        select(Ticket)
        .where(
            Ticket.centre_id == centre.id,
            Ticket.day == day,
            Ticket.status.in_([TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.SERVING]),
        )
        .order_by(Ticket.queue_time, Ticket.id)
    ).all()
    waiting: dict[int, list[Ticket]] = {}
    at_counters: dict[int, Ticket] = {}
    for ticket in sorted(active, key=lambda t: not t.is_priority):  # stable: keeps time order
        if ticket.status == TicketStatus.WAITING:
            waiting.setdefault(ticket.service_id, []).append(ticket)
        elif ticket.counter_id is not None:
            at_counters[ticket.counter_id] = ticket
    return QueueSnapshot(waiting, at_counters)


def ticket_by_public_id(session: Session, public_id: str) -> Ticket:
    """The ticket with this public id. Raises NotFound ticket_not_found."""
    ticket = (
        session.scalars(
            select(Ticket)
            .where(Ticket.public_id == public_id)
            # Acting on a ticket checks who holds its counter: read them in the same query.
            .options(joinedload(Ticket.counter).joinedload(Counter.staff))
        ).one_or_none()
        if 0 < len(public_id) <= 32
        else None
    )
    if ticket is None:
        raise NotFound("ticket_not_found")
    return ticket


def ticket_for_staff(session: Session, public_id: str, staff: Staff, *, now: datetime) -> Ticket:
    """The ticket `staff` may act on (start, complete, no-show, transfer) today.

    Staff act at their centre or the one they are dispatched to. A ticket called to a
    counter belongs to the officer who holds that counter; a manager, operator or admin may
    still act on it (say, its officer left). Raises NotFound ticket_not_found, Forbidden
    forbidden, Conflict counter_not_yours.
    """
    ticket = ticket_by_public_id(session, public_id)
    if not may_act_at(session, staff, ticket.centre_id, local_day(now)):
        raise Forbidden("forbidden")
    counter = ticket.counter
    held_by = counter.staff if counter is not None else None
    if (
        ticket.status in (TicketStatus.CALLED, TicketStatus.SERVING)
        and held_by is not None
        and held_by.id != staff.id
        and staff.role not in _SUPERVISORS
    ):
        assert counter is not None
        raise Conflict("counter_not_yours", number=counter.number, name=held_by.full_name)
    return ticket
