"""Plain JSON shapes of domain objects shared by the APIs, boards and pages.

Public shapes carry labels and times, never a citizen's name or phone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core import tickets
from core.models import Ticket, TicketStatus
from core.timeutil import to_local


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in Ho Chi Minh City time (+07:00), as the API promises."""
    return to_local(moment).isoformat() if moment is not None else None


def ticket_public(session: Session, ticket: Ticket, *, now: datetime) -> dict[str, Any]:
    """The ticket as anyone holding its public id may see it: no personal data."""
    waiting = ticket.status == TicketStatus.WAITING
    ahead = tickets.position(session, ticket) if waiting else 0
    estimate = tickets.wait_estimate(session, ticket.service, ahead) if waiting else None
    return {
        "public_id": ticket.public_id,
        "label": ticket.label,
        "centre": ticket.centre.code,
        "centre_name": ticket.centre.name,
        "service": ticket.service.prefix,
        "service_name": ticket.service.name,
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
