"""The kiosk and counter APIs' fast paths: a walk-in, calling and starting in one or two
statements each, from plain values, without loading model objects.

A kiosk's walk-in and an officer's "call next" and "start" are the floor's busiest requests.
Here they run as one prebuilt read and one write (on PostgreSQL data-modifying CTEs that make
every change and write the audit rows together). The portable ORM paths in core.floor.tickets
(`issue_walk_in`, `call_next`, `start`) stay the reference: they apply the same rules, the
pages and SQLite use them, and the tests compare these paths with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from core.access.principals import StaffLike, may_act_at
from core.common.errors import Conflict, Forbidden, NotFound
from core.common.timeutil import local_day
from core.floor import queue_policy
from core.floor.tickets import (
    SUPERVISORS,
    FloorRules,
    announce,
    forget_line_pace,
    head_of_queue,
    issue_in_one,
    label_for,
    new_ticket_values,
    next_number,
    wait_estimate,
)
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    Closure,
    Counter,
    PriorityClass,
    Procedure,
    Service,
    Staff,
    Ticket,
    TicketEvent,
    TicketSource,
    TicketStateError,
    TicketStatus,
    takes_clause,
)
from core.places.calendar import closed_clause, open_at

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
        takes = takes_clause(
            line.c.id,
            line.c.level,
            procedure_id=p.c.id,
            field_id=p.c.field_id,
            level=p.c.level,
            correlate=(p,),  # two SELECTs up: the walk-in's read joins the procedure
        )
        choice = choice.where(line.c.active.is_(True), takes).order_by(line.c.prefix)
    choice = choice.limit(1).scalar_subquery()
    closed = closed_clause(c.c.id, bindparam("day"))
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
    if not open_at(floor, now, closed=floor.closed_today):
        raise Conflict("centre_closed_now")
    if floor.service_id is None:
        raise Conflict("procedure_not_taken", field="procedure")
    if not floor.service_active:
        raise NotFound("service_not_found", field="service")
    assert floor.service_prefix is not None and floor.service_name is not None
    estimate = wait_estimate(session, _Line(floor.service_id, floor.intake_minutes), floor.ahead)
    values = new_ticket_values(
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
    announce(session, issued, "issued", now, {**data, "jumps_line": jumps})
    return issued


def _insert_issued(
    session: Session, values: dict[str, Any], *, prefix: str, staff_id: int | None, data: dict
) -> tuple[int, int, str]:
    """Number and insert a waiting ticket with its "issued" audit row: (id, number, label)."""
    if session.get_bind().dialect.name == "postgresql":
        row = issue_in_one(session, values, prefix=prefix, staff_id=staff_id, data=data)
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


# ---------------------------------------------------------------- the counter API on PostgreSQL
#
# Calling and starting are the officer's busiest requests. On PostgreSQL the counter API runs
# them from plain values in two statements each: a read (for calling, it locks the counter),
# then one statement (data-modifying CTEs) that makes every change and writes the audit rows.
# The rules are those of core.floor.tickets' `call_next` and `start`, which the pages (and SQLite) use;
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
    `core.floor.counters.held_counter(lock=True)`). Raises NotFound counter_not_found, Forbidden
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
    head = head_of_queue(counter_id, centre_id, bindparam("p_day"), regular_turn=regular_turn)
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
        announce(
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
    announce(session, view, "called", now, {"recall": False})
    return view


@dataclass(frozen=True, slots=True)
class _Announced:
    """What `announce` tells of a ticket."""

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


def _started_audit(started: Any, now: Any, staff_id: Any) -> Any:
    """The "started" audit row of the ticket `started` (a CTE with its id and counter_id)."""
    ev = _events_t
    return insert(ev).from_select(
        ["ticket_id", "kind", "at", "staff_id", "counter_id", "data"],
        select(
            started.c.id,
            literal("started"),
            now,
            staff_id,
            started.c.counter_id,
            bindparam("p_data", type_=ev.c.data.type),
        ),
    )


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
    staff_id = bindparam("p_staff", type_=ev.c.staff_id.type)
    return _started_audit(started, now, staff_id).returning(ev.c.id)


_START = _start_statement()


def _ticket_for_action(session: Session, public_id: str) -> Any:
    if not 0 < len(public_id) <= 32:
        return None
    return session.connection().execute(_TICKET_FOR_ACTION, {"public_id": public_id}).first()


@cache
def _start_at_own_counter_statement() -> Any:
    """The usual start in one statement: the officer starts a ticket called to the counter
    they hold at their own centre; the ticket's view comes back (no row: anything else)."""
    t, ev, k = _tickets_t, _events_t, _counters_t
    now = bindparam("p_now", type_=t.c.started_at.type)
    staff_id = bindparam("p_staff", type_=ev.c.staff_id.type)
    started = (
        update(t)
        .where(
            t.c.public_id == bindparam("p_public_id", type_=t.c.public_id.type),
            t.c.status == TicketStatus.CALLED,
            t.c.centre_id == bindparam("p_centre", type_=t.c.centre_id.type),
            t.c.counter_id == k.c.id,
            k.c.staff_id == staff_id,
        )
        .values(status=TicketStatus.SERVING, started_at=now)
        .returning(*(t.c[name] for name in _CLAIMED_COLUMNS))
        .cte("started")
    )
    audit = _started_audit(started, now, staff_id).cte("audit")
    return select(*_view_columns(started)).select_from(_view_source(started)).add_cte(audit)


def start_at(session: Session, public_id: str, staff: StaffLike, *, now: datetime) -> TicketView:
    """`ticket_for_staff` then `start`, on PostgreSQL, from plain values: one statement when
    an officer starts a ticket called to the counter they hold at their own centre, else (a
    supervisor, a dispatched officer, a refusal) the two of `_start_checked`."""
    if staff.centre_id is not None and 0 < len(public_id) <= 32:
        params = {
            "p_public_id": public_id,
            "p_centre": staff.centre_id,
            "p_staff": staff.id,
            "p_now": now,
            "p_data": {},
        }
        row = session.connection().execute(_start_at_own_counter_statement(), params).first()
        if row is not None:
            view = _view(row)
            announce(session, view, "started", now, {})
            return view
    return _start_checked(session, public_id, staff, now=now)


def _start_checked(
    session: Session, public_id: str, staff: StaffLike, *, now: datetime
) -> TicketView:
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
        and staff.role not in SUPERVISORS
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
    announce(session, view, "started", now, {})
    return view
