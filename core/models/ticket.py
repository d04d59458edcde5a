"""Queue tickets, their per-service daily sequence and their audit trail."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, enum_column

if TYPE_CHECKING:
    from core.models.appointment import Appointment
    from core.models.catalogue import Procedure
    from core.models.centre import Centre
    from core.models.service import Counter, Service


class TicketSource(enum.Enum):
    APPOINTMENT = "appointment"
    WALK_IN = "walk_in"
    REMOTE = "remote"


class TicketStatus(enum.Enum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"


class PriorityClass(enum.Enum):
    NONE = "none"
    ELDERLY = "elderly"
    DISABILITY = "disability"
    PREGNANT = "pregnant"
    MERITORIOUS = "meritorious"
    YOUNG_CHILD = "young_child"


class TicketSequence(Base):
    """Last number issued per service per local day: labels are gap-free and unique."""

    __tablename__ = "ticket_sequences"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("service_id", "day", "number"),
        Index("ix_tickets_waiting", "centre_id", "status", "queue_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    procedure_id: Mapped[int | None] = mapped_column(ForeignKey("procedures.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), unique=True)
    day: Mapped[date]
    number: Mapped[int]
    label: Mapped[str] = mapped_column(String(8))
    source: Mapped[TicketSource] = mapped_column(enum_column(TicketSource, "ticket_source"))
    priority: Mapped[PriorityClass] = mapped_column(
        enum_column(PriorityClass, "priority_class"), default=PriorityClass.NONE
    )
    status: Mapped[TicketStatus] = mapped_column(
        enum_column(TicketStatus, "ticket_status"), default=TicketStatus.WAITING
    )
    queue_time: Mapped[datetime]
    issued_at: Mapped[datetime]
    called_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    call_count: Mapped[int] = mapped_column(default=0)
    # The wait range promised when the ticket was issued, to report estimate accuracy.
    eta_low_minutes: Mapped[int | None]
    eta_high_minutes: Mapped[int | None]
    # Remote tickets only; purged with the rest of personal data.
    citizen_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    contact_name: Mapped[str | None] = mapped_column(String(120))
    contact_phone: Mapped[str | None] = mapped_column(String(16))

    centre: Mapped[Centre] = relationship()
    service: Mapped[Service] = relationship()
    procedure: Mapped[Procedure | None] = relationship()
    appointment: Mapped[Appointment | None] = relationship()
    counter: Mapped[Counter | None] = relationship()
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )


class TicketEvent(Base):
    """One change of a ticket: who did what, when, at which counter."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
