"""The centre floor: issuing tickets, checking in appointments, calling and serving.

Every operation takes the objects it acts on and `now`, writes a TicketEvent, records a
domain event to publish after commit, and does not commit.

Concurrency: ticket numbers come from one atomic upsert on `ticket_sequences` in the
issuing transaction (unique and gap-free: a rolled-back issue rolls its number back
too). "Call next" claims the head of the counter's merged queue in one conditional UPDATE
whose order is the pure policy's (core.floor.queue_policy.pick_next; a test holds the two
together). On PostgreSQL the head is locked with SKIP LOCKED, so counters calling at once
each get a different ticket without queueing behind one another, and never the same one.

The kiosk and counter APIs' one-or-two-statement paths (walk-in, call next, start) live in
core.floor.floor_fast, which builds on this module; the paths here remain their reference.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Row,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from core.access.principals import may_act_at
from core.booking.appointments import suspension
from core.common.cache import TTLCache
from core.common.db import record, transaction_memo
from core.common.errors import Conflict, DomainError, Forbidden, LimitExceeded, NotFound
from core.common.events import DomainEvent
from core.common.timeutil import local_day, to_local
from core.common.tokens import read_qr
from core.floor import queue_policy
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    CitizenStanding,
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
    TicketStatus,
)
from core.places.calendar import centre_open_now

# Roles that may act on a ticket at a counter another officer holds.
SUPERVISORS = (Role.MANAGER, Role.OPERATOR, Role.ADMIN)


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
    announce(session, ticket, kind, at, data)


class _Announceable(Protocol):
    """What `announce` tells of a ticket: a Ticket, or one of core.floor.floor_fast's plain views."""

    @property
    def id(self) -> int: ...
    @property
    def public_id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def centre_id(self) -> int: ...
    @property
    def service_id(self) -> int: ...
    @property
    def counter_id(self) -> int | None: ...
    @property
    def status(self) -> TicketStatus: ...


def announce(
    session: Session,
    ticket: Ticket | _Announceable,
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


def issue_in_one(
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


def new_ticket_values(
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
    values = new_ticket_values(
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
        row = issue_in_one(session, values, prefix=service.prefix, staff_id=staff_id, data=data)
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
    announce(session, ticket, "issued", now, {**data, "jumps_line": jumps})
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


# Literal, not bound: the partial indexes below (Ticket.__table_args__) serve a statement only
# when its WHERE names their predicate, and a prepared statement's generic plan knows no values.
_WAITING = literal_column(f"'{TicketStatus.WAITING.value}'")
_NO_PRIORITY = literal_column(f"'{PriorityClass.NONE.value}'")


def head_of_queue(counter_id: Any, centre_id: Any, day: Any, *, regular_turn: bool) -> Any:
    """The id of the ticket at the head of a counter's merged queue, locked (SKIP LOCKED on
    PostgreSQL), as a scalar expression; the arguments are values or bound parameters.

    The order is queue_policy.pick_next's: tickets transferred to this counter, then priority
    tickets (unless it is a regular ticket's turn), then the earliest queue time, then the
    counter's rank of the line, then the id. Rather than sorting every waiting ticket of the
    centre on each call (bench/queue_head.py: 25 ms at 20,000 waiting), the head is looked for
    in two steps: among the few tickets transferred here or priority (two partial indexes, a
    small sort), else along the centre's queue in queue-time order, stopping at the first
    ticket the counter may take. COALESCE runs the second step only when the first found
    nothing, so a call reads a few index entries however long the queue.
    """
    link = CounterService

    def first(*conditions: Any, order: tuple[Any, ...] = ()) -> Any:
        return (
            select(Ticket.id)
            .join(link, (link.service_id == Ticket.service_id) & (link.counter_id == counter_id))
            .where(
                Ticket.centre_id == centre_id,
                Ticket.day == day,
                Ticket.status == _WAITING,
                *conditions,
            )
            .order_by(*order, Ticket.queue_time, link.rank, Ticket.id)
            .limit(1)
            .with_for_update(of=Ticket, skip_locked=True)
            .scalar_subquery()
        )

    transferred_here = Ticket.target_counter_id == counter_id
    if regular_turn:
        # Transferred here, then anyone: priority tickets wait their turn in queue time.
        few = first(transferred_here)
    else:
        # Transferred here, then priority tickets, in one small sorted set (two partial
        # indexes), then anyone.
        few = first(
            or_(
                transferred_here,
                and_(Ticket.priority != _NO_PRIORITY, Ticket.target_counter_id.is_(None)),
            ),
            order=(
                case((transferred_here, 0), else_=1),
                case((Ticket.priority != _NO_PRIORITY, 0), else_=1),
            ),
        )
    return func.coalesce(few, first(Ticket.target_counter_id.is_(None)))


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
    head = head_of_queue(counter.id, counter.centre_id, day, regular_turn=regular_turn)
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
    # unless this transaction already read it so (core.floor.counters.counter_for(lock=True)).
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
        and staff.role not in SUPERVISORS
    ):
        assert counter is not None
        raise Conflict("counter_not_yours", number=counter.number, name=held_by.full_name)
    return ticket
