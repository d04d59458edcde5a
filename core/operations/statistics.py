"""Daily statistics: tickets of a local day folded into anonymous figures per centre, line,
source, hour and field (core.models.DailyStatistic), which outlive the purge of personal data.

Definitions, for every cell:
- issued: tickets issued that day, not counting the continuation a transfer creates (the
  same citizen, already counted);
- served / no_show / cancelled: tickets that ended so (a transfer's continuation served
  counts as served: that is where the citizen was served);
- wait: queue time to the *first* call (a recall does not restart it), in minutes;
- service time: start to finish at the counter, in minutes;
- estimate error: how far the wait fell outside the range printed on the ticket (0 inside).

A ticket's field (lĩnh vực): its procedure's field when it has a procedure, else its line's
field when the line takes exactly one, else not known (see `ticket_field`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from core.common.timeutil import day_bounds_utc, to_local
from core.models import DailyStatistic, Procedure, Ticket, TicketEvent, TicketStatus
from core.models.service import service_fields

# pg_advisory_xact_lock key of the aggregation ("xephang stats" as an integer).
_LOCK_KEY = 0x7865_7068_5354_4154

# centre, service, source, hour, by_field, field. The by-field level is (centre, None, None,
# None, True, field or None when not known); every other level has by_field False, field None.
Key = tuple[int, int | None, str | None, int | None, bool, int | None]


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0–1) of `values` by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Cell:
    issued: int = 0
    served: int = 0
    no_show: int = 0
    cancelled: int = 0
    waits: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    eta_errors: list[float] = field(default_factory=list)

    def row(self, key: Key, day: date, now: datetime) -> dict:
        centre_id, service_id, source, hour, by_field, field_id = key
        p50, p90 = percentile(self.waits, 0.5), percentile(self.waits, 0.9)
        return {
            "day": day,
            "centre_id": centre_id,
            "service_id": service_id,
            "source": source,
            "hour": hour,
            "by_field": by_field,
            "field_id": field_id,
            "issued": self.issued,
            "served": self.served,
            "no_show": self.no_show,
            "cancelled": self.cancelled,
            "waits": len(self.waits),
            "wait_p50": _round(p50),
            "wait_p90": _round(p90),
            "service_avg": _round(_mean(self.service)),
            "estimates": len(self.eta_errors),
            "estimates_within": sum(1 for e in self.eta_errors if e == 0),
            "eta_error_minutes": _round(_mean(self.eta_errors)),
            "computed_at": now,
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _minutes(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return max((b - a).total_seconds() / 60.0, 0.0)


def eta_error(wait: float, low: int | None, high: int | None) -> float | None:
    """Minutes by which a wait fell outside the promised range; 0 inside; None if no range."""
    if low is None or high is None:
        return None
    if wait < low:
        return low - wait
    return max(wait - high, 0.0)


def _keys(
    centre_id: int, service_id: int, source: str, hour: int, field_id: int | None
) -> Iterable[Key]:
    """Every cell a ticket counts in: the finest one and each roll-up the dashboard reads."""
    yield centre_id, service_id, source, hour, False, None
    yield centre_id, service_id, source, None, False, None
    yield centre_id, service_id, None, None, False, None
    yield centre_id, None, source, None, False, None
    yield centre_id, None, None, hour, False, None
    yield centre_id, None, None, None, False, None
    # Unknown fields get a row of their own (field None), not a derived total-minus-known
    # figure: subtraction would give the counts but not the bucket's wait percentiles.
    yield centre_id, None, None, None, True, field_id


def ticket_field(
    procedure_field: int | None, service_id: int, single_field: dict[int, int]
) -> int | None:
    """A ticket's field: its procedure's, else its line's when the line takes exactly one
    field (`single_field`: line → that field), else None (not known)."""
    if procedure_field is not None:
        return procedure_field
    return single_field.get(service_id)


def single_field_lines(session: Session) -> dict[int, int]:
    """Line → its field, for the lines that take exactly one field."""
    q = (
        select(service_fields.c.service_id, func.min(service_fields.c.field_id))
        .group_by(service_fields.c.service_id)
        .having(func.count() == 1)
    )
    return {service_id: field_id for service_id, field_id in session.execute(q)}


def _first_calls(session: Session, day: date, centre_ids: list[int] | None) -> dict[int, datetime]:
    q = (
        select(TicketEvent.ticket_id, func.min(TicketEvent.at))
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(Ticket.day == day, TicketEvent.kind == "called")
        .group_by(TicketEvent.ticket_id)
    )
    if centre_ids is not None:
        q = q.where(Ticket.centre_id.in_(centre_ids))
    return {ticket_id: moment for ticket_id, moment in session.execute(q)}


def fold_day(session: Session, day: date, centre_ids: list[int] | None = None) -> dict[Key, Cell]:
    """The day's tickets folded into cells (pure arithmetic after three queries)."""
    q = (
        select(
            Ticket.id,
            Ticket.centre_id,
            Ticket.service_id,
            Ticket.source,
            Ticket.status,
            Ticket.issued_at,
            Ticket.queue_time,
            Ticket.called_at,
            Ticket.started_at,
            Ticket.finished_at,
            Ticket.eta_low_minutes,
            Ticket.eta_high_minutes,
            Ticket.transferred_from_id,
            Procedure.field_id,
        )
        .outerjoin(Procedure, Procedure.id == Ticket.procedure_id)
        .where(Ticket.day == day)
    )
    if centre_ids is not None:
        q = q.where(Ticket.centre_id.in_(centre_ids))
    first_call = _first_calls(session, day, centre_ids)
    single_field = single_field_lines(session)
    cells: dict[Key, Cell] = defaultdict(Cell)
    for t in session.execute(q):
        field_id = ticket_field(t.field_id, t.service_id, single_field)
        hour = to_local(t.issued_at).hour
        keys = list(_keys(t.centre_id, t.service_id, t.source.value, hour, field_id))
        original = t.transferred_from_id is None
        wait = _minutes(t.queue_time, first_call.get(t.id, t.called_at)) if original else None
        service = _minutes(t.started_at, t.finished_at) if t.status == TicketStatus.DONE else None
        error = eta_error(wait, t.eta_low_minutes, t.eta_high_minutes) if wait is not None else None
        for key in keys:
            cell = cells[key]
            cell.issued += original
            cell.served += t.status == TicketStatus.DONE
            cell.no_show += t.status == TicketStatus.NO_SHOW
            cell.cancelled += t.status == TicketStatus.CANCELLED
            if wait is not None:
                cell.waits.append(wait)
            if service is not None:
                cell.service.append(service)
            if error is not None:
                cell.eta_errors.append(error)
    return cells


def aggregate_day(
    session: Session, day: date, *, now: datetime, centre_ids: list[int] | None = None
) -> int:
    """Replace the day's statistics (of `centre_ids`, or every centre) with fresh ones;
    idempotent. Returns the rows written."""
    return write_day(
        session, day, fold_day(session, day, centre_ids), now=now, centre_ids=centre_ids
    )


def write_day(
    session: Session,
    day: date,
    cells: dict[Key, Cell],
    *,
    now: datetime,
    centre_ids: list[int] | None = None,
) -> int:
    """Replace the day's rows with `cells` (folded beforehand, so that on SQLite the write
    lock is held only for the writing)."""
    if session.get_bind().dialect.name == "postgresql":
        # Two runs at once (the scheduler and a manual `run-job`) would each delete, then
        # both insert: serialise them until commit.
        session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
    stale = delete(DailyStatistic).where(DailyStatistic.day == day)
    if centre_ids is not None:
        stale = stale.where(DailyStatistic.centre_id.in_(centre_ids))
    session.execute(stale)
    rows = [cell.row(key, day, now) for key, cell in sorted(cells.items(), key=_order)]
    if rows:
        # Core insert of plain rows: about twice as fast as the ORM's bulk path here.
        session.execute(insert(DailyStatistic.__table__), rows)
    return len(rows)


def settled(session: Session, day: date) -> bool:
    """Whether the day's figures were computed after it was over (its local midnight plus
    an hour for the sweep to close what was left in the lines): no need to redo them."""
    computed = session.scalar(
        select(func.min(DailyStatistic.computed_at)).where(DailyStatistic.day == day)
    )
    return computed is not None and computed >= day_bounds_utc(day)[1] + timedelta(hours=1)


def _order(item: tuple[Key, Cell]) -> tuple[int, bool, int, int, str, int]:
    centre_id, service_id, source, hour, by_field, field_id = item[0]
    return (
        centre_id,
        by_field,
        -1 if field_id is None else field_id,
        -1 if service_id is None else service_id,
        source or "",
        -1 if hour is None else hour,
    )
