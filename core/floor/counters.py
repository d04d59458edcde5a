"""Counters on the floor: who may work at which counter, opening and closing, and what a
counter's officer sees of the queue.

Used by the officer workstation pages and the counter API. Like the queue engine, every
function takes the session and the objects it acts on, raises domain errors and does not
commit; calling, serving and transferring tickets stay in `core.floor.tickets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from core.access.principals import centres_of, may_act_at
from core.common.db import record, transaction_memo
from core.common.errors import Conflict, Forbidden, NotFound
from core.common.events import DomainEvent
from core.common.timeutil import local_day
from core.floor import tickets
from core.models import (
    Centre,
    Counter,
    PriorityClass,
    Role,
    Service,
    Staff,
    StaffAssignment,
    Ticket,
    TicketStatus,
)

# Roles that may close a counter another officer left open at their centre.
_SUPERVISORS = (Role.MANAGER, Role.OPERATOR, Role.ADMIN)


# ---------------------------------------------------------------- where staff may work


def counters_for(session: Session, staff: Staff, *, now: datetime) -> list[Counter]:
    """Counters `staff` may open today: their centre's, and the dispatch centre's."""
    allowed = centres_of(session, staff, local_day(now))
    query = (
        select(Counter).where(Counter.active.is_(True)).order_by(Counter.centre_id, Counter.number)
    )
    if allowed is not None:
        query = query.where(Counter.centre_id.in_(allowed))
    return list(session.scalars(query))


def centres_for(session: Session, staff: Staff, day: date) -> list[Centre]:
    """Centres whose counters `staff` may open on `day`, the dispatch centre first.

    Officers and managers get their home centre and the centre they are dispatched to that
    day. Operators and admins may act everywhere; for them this lists only their home and
    dispatch centres (a page lets them pick any other by code).
    """
    dispatched = list(
        session.scalars(
            select(StaffAssignment.centre_id).where(
                StaffAssignment.staff_id == staff.id, StaffAssignment.day == day
            )
        )
    )
    allowed = centres_of(session, staff, day)
    ids = list(dict.fromkeys([*dispatched, *([staff.centre_id] if staff.centre_id else [])]))
    if allowed is not None:
        ids = [i for i in ids if i in allowed]
    found = {c.id: c for c in session.scalars(select(Centre).where(Centre.id.in_(ids)))}
    return [found[i] for i in ids if i in found and found[i].active]


def is_dispatched(session: Session, staff: Staff, centre_id: int, day: date) -> bool:
    """Whether `staff` works at `centre_id` on `day` by a dispatch (not their home centre)."""
    return staff.centre_id != centre_id and bool(
        session.scalar(
            select(func.count())
            .select_from(StaffAssignment)
            .where(
                StaffAssignment.staff_id == staff.id,
                StaffAssignment.centre_id == centre_id,
                StaffAssignment.day == day,
            )
        )
    )


def counter_for(
    session: Session, counter_id: int, staff: Staff, *, day: date, lock: bool = False
) -> Counter:
    """The counter, when `staff` may act at its centre on `day`.

    With `lock`, its row is read FOR UPDATE (one action at a time per counter) and the
    transaction remembers it, so core.floor.tickets does not lock it again.
    Raises NotFound counter_not_found (unknown or retired counter), Forbidden forbidden.
    """
    counter = session.get(Counter, counter_id, with_for_update=lock or None, populate_existing=lock)
    if counter is None or not counter.active:
        raise NotFound("counter_not_found")
    if lock:
        transaction_memo(session)[("counter_locked", counter.id)] = True
    if not may_act_at(session, staff, counter.centre_id, day):
        raise Forbidden("forbidden")
    return counter


def held_counter(
    session: Session, counter_id: int, staff: Staff, *, day: date, lock: bool = False
) -> Counter:
    """The counter `staff` has open and may act at: where calling and serving happen.

    Raises what `counter_for` raises, and Conflict counter_closed (open it first) or
    counter_not_yours (another officer has it open).
    """
    counter = counter_for(session, counter_id, staff, day=day, lock=lock)
    if not counter.is_open:
        raise Conflict("counter_closed")
    if counter.staff_id != staff.id:
        raise Conflict("counter_not_yours", number=counter.number, name=_holder_name(counter))
    return counter


def _holder_name(counter: Counter) -> str:
    return counter.staff.full_name if counter.staff is not None else "?"


# ---------------------------------------------------------------- opening and closing


def open_counter(session: Session, counter: Counter, staff: Staff, *, now: datetime) -> Counter:
    """Open `counter` for `staff`; opening one's own open counter again changes nothing.

    An officer works at one counter at a time: other counters they hold are closed, unless
    one still has a ticket called or being served there. Raises Forbidden forbidden,
    Conflict counter_taken (another officer has it open) or busy_elsewhere.
    """
    if not may_act_at(session, staff, counter.centre_id, local_day(now)):
        raise Forbidden("forbidden")
    # Two officers pressing "open" on the same counter at once: one of them gets it.
    session.execute(select(Counter.id).where(Counter.id == counter.id).with_for_update())
    session.refresh(counter)
    if counter.is_open and counter.staff_id not in (None, staff.id):
        raise Conflict("counter_taken", number=counter.number, name=_holder_name(counter))
    for other in _held_by(session, staff):
        if other.id == counter.id:
            continue
        current = tickets.current_ticket(session, other)
        if current is not None:
            raise Conflict("busy_elsewhere", label=current.label, number=other.number)
        _close(session, other, staff, now=now)
    if not (counter.is_open and counter.staff_id == staff.id):
        counter.is_open = True
        counter.staff_id = staff.id
        counter.priority_streak = 0
        _counter_event(session, "counter.opened", counter, staff, now)
    return counter


def close_counter(session: Session, counter: Counter, staff: Staff, *, now: datetime) -> None:
    """Close `counter`: its holder may, and so may a manager, operator or admin of the centre.

    Closing a closed counter changes nothing. Raises Forbidden forbidden, Conflict
    counter_not_yours, counter_has_ticket (finish, transfer or mark the ticket first).
    """
    if not may_act_at(session, staff, counter.centre_id, local_day(now)):
        raise Forbidden("forbidden")
    if not counter.is_open:
        return
    if counter.staff_id not in (None, staff.id) and staff.role not in _SUPERVISORS:
        raise Conflict("counter_not_yours", number=counter.number, name=_holder_name(counter))
    current = tickets.current_ticket(session, counter)
    if current is not None:
        raise Conflict("counter_has_ticket", label=current.label)
    _close(session, counter, staff, now=now)


def release_counters(session: Session, staff: Staff, *, now: datetime) -> list[Counter]:
    """Close the counters `staff` holds that have no ticket in hand (on logging out).

    A counter with a ticket called or being served stays open so nothing is lost; the
    officer (or a manager) closes it after dealing with the ticket. Returns those closed.
    """
    closed = []
    for counter in _held_by(session, staff):
        if tickets.current_ticket(session, counter) is None:
            _close(session, counter, staff, now=now)
            closed.append(counter)
    return closed


def _held_by(session: Session, staff: Staff) -> list[Counter]:
    return list(
        session.scalars(
            select(Counter).where(Counter.staff_id == staff.id, Counter.is_open.is_(True))
        )
    )


def _close(session: Session, counter: Counter, staff: Staff, *, now: datetime) -> None:
    tickets.release_targeted(session, counter, now=now, staff_id=staff.id)
    counter.is_open = False
    counter.staff_id = None
    _counter_event(session, "counter.closed", counter, staff, now)


def _counter_event(
    session: Session, name: str, counter: Counter, staff: Staff, now: datetime
) -> None:
    tickets.forget_line_pace()  # a counter more or less changes every estimate of its lines
    record(
        DomainEvent(
            name,
            {
                "counter_id": counter.id,
                "counter": counter.number,
                "centre_id": counter.centre_id,
                "staff_id": staff.id,
                "at": now.isoformat(),
            },
        ),
        session,
    )


# ---------------------------------------------------------------- at the counter


def ticket_at(session: Session, counter: Counter, public_id: str | None) -> Ticket:
    """The ticket called to or served at `counter`, which must be the one the officer saw.

    `public_id` is the ticket shown when the officer pressed the button (None: whichever is
    current), so a double submit or a stale page never acts on the next citizen. Raises
    Conflict no_current_ticket, ticket_not_current.
    """
    current = tickets.current_ticket(session, counter)
    if current is None:
        raise Conflict("no_current_ticket")
    if public_id is not None and current.public_id != public_id:
        raise Conflict("ticket_not_current", label=current.label)
    return current


@dataclass(frozen=True)
class ServiceQueue:
    """What waits for one service at a counter: the count and the next few labels."""

    service: Service
    waiting: int
    priority: int
    next_labels: list[tuple[str, bool]]  # (label, is priority), in calling order


def waiting_at(
    session: Session, counter: Counter, *, day: date, head: int = 3
) -> list[ServiceQueue]:
    """Waiting tickets per service the counter serves (its preference order), for `day`.

    Counts only tickets this counter may call: a ticket transferred to another counter
    waits for that one. The next labels put priority tickets first, then queue time, which
    is the calling order apart from the interleave that lets regular tickets through.
    """
    callable_here = (
        Ticket.centre_id == counter.centre_id,
        Ticket.day == day,
        Ticket.status == TicketStatus.WAITING,
        or_(Ticket.target_counter_id.is_(None), Ticket.target_counter_id == counter.id),
    )
    is_priority = Ticket.priority != PriorityClass.NONE
    counts = {
        row.service_id: (row.waiting, row.priority or 0)
        for row in session.execute(
            select(
                Ticket.service_id,
                func.count().label("waiting"),
                func.sum(case((is_priority, 1), else_=0)).label("priority"),
            )
            .where(*callable_here, Ticket.service_id.in_([s.id for s in counter.services]))
            .group_by(Ticket.service_id)
        )
    }
    queues = []
    for service in counter.services:
        waiting, priority = counts.get(service.id, (0, 0))
        rows = session.execute(
            select(Ticket.label, is_priority)
            .where(*callable_here, Ticket.service_id == service.id)
            .order_by(case((is_priority, 0), else_=1), Ticket.queue_time, Ticket.id)
            .limit(head)
        ).all()
        queues.append(ServiceQueue(service, waiting, priority, [(r[0], bool(r[1])) for r in rows]))
    return queues


def served_today(session: Session, counter: Counter, *, day: date) -> int:
    """Tickets completed at this counter on `day`."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.counter_id == counter.id,
                Ticket.day == day,
                Ticket.status == TicketStatus.DONE,
            )
        )
        or 0
    )


@dataclass(frozen=True)
class TransferTargets:
    """Where a ticket at `counter` may be transferred."""

    services: list[Service]
    counters: list[Counter]
    centres: list[Centre]


def transfer_targets(session: Session, counter: Counter, ticket: Ticket | None) -> TransferTargets:
    """The other active services and counters of the counter's centre, and other centres."""
    centre = counter.centre
    return TransferTargets(
        services=[
            s for s in centre.services if s.active and (ticket is None or s.id != ticket.service_id)
        ],
        counters=[c for c in centre.counters if c.active and c.id != counter.id and c.services],
        centres=list(
            session.scalars(
                select(Centre)
                .where(Centre.active.is_(True), Centre.id != centre.id)
                .order_by(Centre.name)
            )
        ),
    )


def transfer_from(
    session: Session,
    counter: Counter,
    ticket: Ticket,
    *,
    now: datetime,
    service_id: int | None = None,
    counter_id: int | None = None,
    centre_id: int | None = None,
    staff_id: int | None = None,
) -> Ticket:
    """Transfer the counter's ticket to a service, counter or centre given by id.

    Returns the new ticket (it keeps the queue time). Raises Conflict
    transfer_target_required (not exactly one target), transfer_target_not_found, and what
    `tickets.transfer` raises.
    """
    given = [t for t in (service_id, counter_id, centre_id) if t is not None]
    if len(given) != 1:
        raise Conflict("transfer_target_required")
    to_service = session.get(Service, service_id) if service_id is not None else None
    to_counter = session.get(Counter, counter_id) if counter_id is not None else None
    to_centre = session.get(Centre, centre_id) if centre_id is not None else None
    target = to_service or to_counter or to_centre
    if target is None or not target.active:
        raise Conflict("transfer_target_not_found")
    if to_counter is not None and to_counter.id == counter.id:
        raise Conflict("transfer_same_counter")
    return tickets.transfer(
        session,
        ticket,
        now=now,
        to_service=to_service,
        to_counter=to_counter,
        to_centre=to_centre,
        staff_id=staff_id,
    )
