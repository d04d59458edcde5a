"""Opening and closing counters: who sits where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import centres_of, may_act_at
from core.errors import Conflict, Forbidden
from core.models import Counter, Staff, TicketStatus
from core.tickets import current_ticket
from core.timeutil import local_day


def counters_for(session: Session, staff: Staff, *, now: datetime) -> list[Counter]:
    """Counters `staff` may open today: their centre's, and the dispatch centre's."""
    allowed = centres_of(session, staff, local_day(now))
    query = (
        select(Counter).where(Counter.active.is_(True)).order_by(Counter.centre_id, Counter.number)
    )
    if allowed is not None:
        query = query.where(Counter.centre_id.in_(allowed))
    return list(session.scalars(query))


def open_counter(session: Session, counter: Counter, staff: Staff, *, now: datetime) -> None:
    """Seat `staff` at `counter`. Raises Forbidden outside their centres, Conflict
    counter_taken when another officer holds it."""
    if not may_act_at(session, staff, counter.centre_id, local_day(now)):
        raise Forbidden("forbidden")
    session.execute(select(Counter.id).where(Counter.id == counter.id).with_for_update())
    session.refresh(counter)
    if counter.is_open and counter.staff_id not in (None, staff.id):
        raise Conflict("counter_taken", number=counter.number)
    counter.is_open = True
    counter.staff_id = staff.id


def close_counter(session: Session, counter: Counter, staff: Staff, *, now: datetime) -> None:
    """Close a counter. Raises Conflict counter_has_ticket while a citizen is being served
    or called there (finish, transfer or mark no-show first)."""
    if not may_act_at(session, staff, counter.centre_id, local_day(now)):
        raise Forbidden("forbidden")
    current = current_ticket(session, counter)
    if current is not None and current.status in (TicketStatus.CALLED, TicketStatus.SERVING):
        raise Conflict("counter_has_ticket", label=current.label)
    counter.is_open = False
    counter.staff_id = None
