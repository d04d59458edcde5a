"""What happened: the day's tickets and waits per centre, and the audit of what must hold."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.common.timeutil import local_to_utc
from core.floor import tickets
from core.models import (
    Centre,
    Service,
    Ticket,
    TicketEvent,
    TicketSequence,
    TicketStatus,
)
from core.places.calendar import opening_periods


@dataclass(frozen=True)
class TicketRow:
    """One ticket of the day, as the database has it after closing."""

    centre_id: int
    line: str  # the line's letter
    source: str
    status: str
    wait_minutes: float  # queue time → first call; still waiting: → closing (a lower bound)


def ticket_rows(session: Session, day: date, centre_ids: Iterable[int]) -> list[TicketRow]:
    """Every ticket of the day at these centres with its wait."""
    ids = list(centre_ids)
    closing = {
        c.id: max((local_to_utc(day, b) for _, b in opening_periods(c, day)), default=None)
        for c in session.scalars(select(Centre).where(Centre.id.in_(ids)))
    }
    first_call = (
        select(TicketEvent.ticket_id, func.min(TicketEvent.at).label("at"))
        .where(TicketEvent.kind == "called")
        .group_by(TicketEvent.ticket_id)
        .subquery()
    )
    rows = []
    for centre_id, line, source, status, queued, called in session.execute(
        select(
            Ticket.centre_id,
            Service.prefix,
            Ticket.source,
            Ticket.status,
            Ticket.queue_time,
            first_call.c.at,
        )
        .join(Service, Service.id == Ticket.service_id)
        .outerjoin(first_call, first_call.c.ticket_id == Ticket.id)
        .where(Ticket.day == day, Ticket.centre_id.in_(ids))
        .order_by(Ticket.id)
    ):
        until = called if called is not None else closing[centre_id]
        wait = max((until - queued).total_seconds() / 60, 0.0) if until else 0.0
        rows.append(TicketRow(centre_id, line, source.value, status.value, round(wait, 2)))
    return rows


@dataclass(frozen=True)
class CentreResult:
    tickets: int
    served: int
    no_shows: int
    waiting: int  # still waiting at closing time
    p50: float | None
    p90: float | None
    over_30: int  # citizens who waited more than 30 minutes to be called (or still wait)


def centre_results(rows: Iterable[TicketRow]) -> dict[int, CentreResult]:
    """Per centre: tickets, how they ended and the waits."""
    by_centre: dict[int, list[TicketRow]] = defaultdict(list)
    for row in rows:
        by_centre[row.centre_id].append(row)
    return {centre_id: summarise(group) for centre_id, group in by_centre.items()}


def summarise(rows: list[TicketRow]) -> CentreResult:
    waits = sorted(r.wait_minutes for r in rows)
    return CentreResult(
        tickets=len(rows),
        served=sum(1 for r in rows if r.status == TicketStatus.DONE.value),
        no_shows=sum(1 for r in rows if r.status == TicketStatus.NO_SHOW.value),
        waiting=sum(1 for r in rows if r.status == TicketStatus.WAITING.value),
        p50=percentile(waits, 0.5),
        p90=percentile(waits, 0.9),
        over_30=sum(1 for w in waits if w > 30),
    )


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values, one decimal; None for none."""
    if not ordered:
        return None
    return round(ordered[max(math.ceil(q * len(ordered)) - 1, 0)], 1)


@dataclass(frozen=True)
class Audit:
    """What must hold after any day, whatever the load."""

    tickets: int
    issued_events: int
    unfinished: int  # called or serving after closing: a counter left something behind
    other_endings: int  # cancelled or transferred: the driver does neither
    label_problems: tuple[str, ...]  # duplicate labels, gaps, sequences out of step
    completed_twice: int
    appointments_twice: int  # an appointment with more than one ticket

    @property
    def ok(self) -> bool:
        return (
            self.tickets == self.issued_events
            and not self.unfinished
            and not self.other_endings
            and not self.label_problems
            and not self.completed_twice
            and not self.appointments_twice
        )


def audit(session: Session, day: date, centre_ids: Iterable[int]) -> Audit:
    """Check the day's tickets at these centres: every one ended served, no-show or still
    waiting; labels unique and gap-free per line; nobody served twice."""
    ids = list(centre_ids)
    mine = Ticket.day == day, Ticket.centre_id.in_(ids)
    statuses = dict(
        session.execute(
            select(Ticket.status, func.count()).where(*mine).group_by(Ticket.status)
        ).all()
    )
    events = dict(
        session.execute(
            select(TicketEvent.kind, func.count())
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(*mine, TicketEvent.kind.in_(["issued", "completed"]))
            .group_by(TicketEvent.kind)
        ).all()
    )
    twice = session.scalar(
        select(func.count()).select_from(
            select(TicketEvent.ticket_id)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(*mine, TicketEvent.kind == "completed")
            .group_by(TicketEvent.ticket_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    appointments = session.scalar(
        select(func.count()).select_from(
            select(Ticket.appointment_id)
            .where(*mine, Ticket.appointment_id.is_not(None))
            .group_by(Ticket.appointment_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    return Audit(
        tickets=sum(statuses.values()),
        issued_events=events.get("issued", 0),
        unfinished=statuses.get(TicketStatus.CALLED, 0) + statuses.get(TicketStatus.SERVING, 0),
        other_endings=statuses.get(TicketStatus.CANCELLED, 0)
        + statuses.get(TicketStatus.TRANSFERRED, 0),
        label_problems=tuple(_label_problems(session, day, ids)),
        completed_twice=int(twice or 0),
        appointments_twice=int(appointments or 0),
    )


def _label_problems(session: Session, day: date, centre_ids: list[int]) -> Iterable[str]:
    numbers: dict[int, list[tuple[int, str]]] = defaultdict(list)
    prefix = dict(
        session.execute(
            select(Service.id, Service.prefix).where(Service.centre_id.in_(centre_ids))
        ).all()
    )
    for service_id, number, label in session.execute(
        select(Ticket.service_id, Ticket.number, Ticket.label)
        .where(Ticket.day == day, Ticket.centre_id.in_(centre_ids))
        .order_by(Ticket.service_id, Ticket.number)
    ):
        numbers[service_id].append((number, label))
    last = dict(
        session.execute(
            select(TicketSequence.service_id, TicketSequence.last_number).where(
                TicketSequence.day == day, TicketSequence.service_id.in_(list(prefix))
            )
        ).all()
    )
    for service_id, issued in sorted(numbers.items()):
        labels = [label for _, label in issued]
        if [n for n, _ in issued] != list(range(1, len(issued) + 1)):
            yield f"line {service_id}: numbers not 1..{len(issued)}"
        if len(set(labels)) != len(labels):
            yield f"line {service_id}: duplicate labels"
        if any(label != tickets.label_for(prefix[service_id], n) for n, label in issued):
            yield f"line {service_id}: a label does not match its number"
        if last.get(service_id) != len(issued):
            yield f"line {service_id}: sequence at {last.get(service_id)}, {len(issued)} tickets"
