"""Plain JSON shapes of domain objects shared by the APIs, boards and pages.

Public shapes carry labels and times, never a citizen's name or phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.common.cache import TTLCache
from core.common.timeutil import iso
from core.floor import floor_fast, tickets
from core.models import Centre, Service, Ticket, TicketStatus


@dataclass(frozen=True)
class LineNames:
    """What a ticket shows of its line and centre: codes and names, no ids."""

    centre: str
    centre_name: str
    service: str
    service_name: str


# Names change a few times a year: one read a minute per line rather than two per ticket.
_line_names: TTLCache[LineNames] = TTLCache(ttl=60.0)


def line_names(session: Session, service_id: int) -> LineNames:
    def read() -> LineNames:
        row = session.execute(
            select(Centre.code, Centre.name, Service.prefix, Service.name)
            .join(Centre, Centre.id == Service.centre_id)
            .where(Service.id == service_id)
        ).one()
        return LineNames(*row)

    return _line_names.get(session, service_id, read)


def issued_ticket_public(ticket: floor_fast.IssuedTicket) -> dict[str, Any]:
    """`ticket_public` of a ticket just issued, from the values its issuing already holds."""
    issued = iso(ticket.issued_at)
    return {
        "public_id": ticket.public_id,
        "label": ticket.label,
        "centre": ticket.centre_code,
        "centre_name": ticket.centre_name,
        "service": ticket.service_prefix,
        "service_name": ticket.service_name,
        "procedure": ticket.procedure_code,
        "source": ticket.source.value,
        "priority": ticket.priority.value,
        "status": ticket.status.value,
        "queue_time": issued if ticket.queue_time == ticket.issued_at else iso(ticket.queue_time),
        "issued_at": issued,
        "called_at": None,
        "counter": None,
        "position": ticket.ahead,
        "eta_minutes": {"low": ticket.estimate.low, "high": ticket.estimate.high},
    }


def ticket_public(session: Session, ticket: Ticket, *, now: datetime) -> dict[str, Any]:
    """The ticket as anyone holding its public id may see it: no personal data."""
    waiting = ticket.status == TicketStatus.WAITING
    ahead = tickets.position(session, ticket) if waiting else 0
    estimate = tickets.wait_estimate(session, ticket.service, ahead) if waiting else None
    names = line_names(session, ticket.service_id)
    return {
        "public_id": ticket.public_id,
        "label": ticket.label,
        "centre": names.centre,
        "centre_name": names.centre_name,
        "service": names.service,
        "service_name": names.service_name,
        "procedure": ticket.procedure.code if ticket.procedure else None,
        "source": ticket.source.value,
        "priority": ticket.priority.value,
        "status": ticket.status.value,
        "queue_time": iso(ticket.queue_time),
        "issued_at": iso(ticket.issued_at),
        "called_at": iso(ticket.called_at),
        "counter": ticket.counter.number if ticket.counter else None,
        "position": ahead,
        "eta_minutes": {"low": estimate.low, "high": estimate.high} if estimate else None,
    }
