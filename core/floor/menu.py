"""What a centre offers a walk-in citizen: its fields, procedures and ticket lines.

The kiosk's choice screens read from here: fields (lĩnh vực) with how many procedures
the centre takes in each, procedure search limited to what the centre takes (typing
without diacritics works), the lines with their waiting counts, and the wait a new
ticket would face.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.catalogue.search import ProcedureEntry, SearchPage, index
from core.common.errors import NotFound
from core.common.timeutil import local_day
from core.floor import queue_policy, tickets
from core.models import Centre, Field, Procedure, Service, Ticket, TicketStatus, service_takes

# More than any real catalogue holds: search ranks everything, the centre filter trims.
_ALL = 100_000


@dataclass(frozen=True)
class FieldChoice:
    id: int
    name: str
    procedures: int


@dataclass(frozen=True)
class LineChoice:
    """A ticket line (service) a citizen may pick directly."""

    id: int
    prefix: str
    name: str
    waiting: int


@dataclass(frozen=True)
class Choice:
    """What a walk-in ticket is for: a line, and the procedure when one was chosen."""

    service: Service
    procedure: Procedure | None


class CentreOffer:
    """Which catalogue entries the centre's active lines take (`core.models.service_takes`)."""

    def __init__(self, centre: Centre) -> None:
        self._rules = [
            (
                service.level.value if service.level else None,
                {f.id for f in service.fields},
                {p.id for p in service.procedures},
            )
            for service in centre.services
            if service.active
        ]

    def takes(self, entry: ProcedureEntry) -> bool:
        return any(
            service_takes(
                listed=listed,
                fields=fields,
                service_level=level,
                procedure_id=entry.id,
                field_id=entry.field_id,
                level=entry.level,
            )
            for level, fields, listed in self._rules
        )


def procedures_offered(
    session: Session,
    centre: Centre,
    *,
    q: str = "",
    field_id: int | None = None,
    offset: int = 0,
    limit: int = 12,
) -> SearchPage:
    """Procedures the centre takes matching `q` (best first), optionally in one field."""
    offer = CentreOffer(centre)
    found = index.search(session, q, field_id=field_id, limit=_ALL)
    taken = [entry for entry in found.items if offer.takes(entry)]
    if not q.strip():
        # Nothing to rank by: alphabetical reads best on a list people scan by eye.
        taken.sort(key=lambda entry: entry.folded_name)
    return SearchPage(taken[offset : offset + limit], len(taken))


def fields_offered(session: Session, centre: Centre) -> list[FieldChoice]:
    """Fields in which the centre takes at least one procedure, by name."""
    offer = CentreOffer(centre)
    counts: dict[int, int] = {}
    for entry in index.search(session, "", limit=_ALL).items:
        if offer.takes(entry):
            counts[entry.field_id] = counts.get(entry.field_id, 0) + 1
    if not counts:
        return []
    rows = session.execute(select(Field.id, Field.name).where(Field.id.in_(counts))).all()
    return sorted((FieldChoice(fid, name, counts[fid]) for fid, name in rows), key=lambda f: f.name)


def field_offered(session: Session, centre: Centre, field_id: int) -> FieldChoice:
    """One field of the centre's offer; NotFound when the centre takes nothing in it."""
    for field in fields_offered(session, centre):
        if field.id == field_id:
            return field
    raise NotFound("field_not_found", field="field")


def waiting_counts(session: Session, centre: Centre, *, now: datetime) -> dict[int, int]:
    """Waiting tickets per service id at the centre today."""
    rows = session.execute(
        select(Ticket.service_id, func.count())
        .where(
            Ticket.centre_id == centre.id,
            Ticket.day == local_day(now),
            Ticket.status == TicketStatus.WAITING,
        )
        .group_by(Ticket.service_id)
    ).all()
    return {service_id: count for service_id, count in rows}


def lines_offered(session: Session, centre: Centre, *, now: datetime) -> list[LineChoice]:
    """The centre's active ticket lines with how many people wait in each."""
    waiting = waiting_counts(session, centre, now=now)
    return [
        LineChoice(s.id, s.prefix, s.name, waiting.get(s.id, 0))
        for s in centre.services
        if s.active
    ]


def resolve_choice(
    session: Session,
    centre: Centre,
    *,
    procedure_code: str | None = None,
    service_id: int | None = None,
) -> Choice:
    """The line and procedure a walk-in citizen chose at this centre.

    Raises NotFound procedure_not_found / service_not_found, Conflict procedure_not_taken.
    """
    if procedure_code:
        procedure = session.scalars(
            select(Procedure).where(
                Procedure.code == procedure_code.strip(), Procedure.active.is_(True)
            )
        ).first()
        if procedure is None:
            raise NotFound("procedure_not_found", field="procedure")
        return Choice(tickets.service_for(session, centre, procedure), procedure)
    service = session.get(Service, service_id) if service_id is not None else None
    if service is None or service.centre_id != centre.id or not service.active:
        raise NotFound("service_not_found", field="service")
    return Choice(service, None)


def expected_wait(
    session: Session, service: Service, *, now: datetime
) -> tuple[int, queue_policy.WaitEstimate]:
    """(people ahead, wait range) for a regular ticket taken in this line now."""
    ahead = int(
        session.scalar(
            select(func.count()).where(
                Ticket.service_id == service.id,
                Ticket.day == local_day(now),
                Ticket.status == TicketStatus.WAITING,
            )
        )
        or 0
    )
    minutes = queue_policy.typical_service_minutes(
        tickets.recent_service_minutes(session, service.id), float(service.intake_minutes)
    )
    estimate = queue_policy.estimate_wait(
        ahead, tickets.open_counter_weight(session, service.id), minutes
    )
    return ahead, estimate
