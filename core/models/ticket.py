"""Queue tickets, their per-service daily sequence and their audit trail."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.common.errors import Conflict
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


class TicketStateError(Conflict):
    """The ticket is not in a state that allows the action."""

    code = "ticket_wrong_state"


class TicketSequence(Base):
    """Last number issued per service per local day: labels are gap-free and unique."""

    __tablename__ = "ticket_sequences"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


_WAITING_TRANSFERRED = "status = 'waiting' AND target_counter_id IS NOT NULL"
_WAITING_PRIORITY = "status = 'waiting' AND priority <> 'none'"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("service_id", "day", "number"),
        Index("ix_tickets_waiting", "centre_id", "status", "queue_time"),
        # Position in a line and the head of a counter's queue: one line, one day, waiting.
        Index("ix_tickets_line", "service_id", "day", "status", "queue_time"),
        # Recent service times of a line, newest first, for wait estimates.
        Index("ix_tickets_finished", "service_id", "status", "finished_at"),
        # The ticket called to or served at a counter (every call, recall, open and close).
        Index("ix_tickets_counter", "counter_id", "status"),
        # The head of a counter's queue (core.floor.tickets.head_of_queue): the waiting tickets
        # transferred to a counter and the waiting priority tickets are found without reading
        # the rest of the queue.
        Index(
            "ix_tickets_waiting_transferred",
            "target_counter_id",
            "queue_time",
            postgresql_where=text(_WAITING_TRANSFERRED),
            sqlite_where=text(_WAITING_TRANSFERRED),
        ),
        Index(
            "ix_tickets_waiting_priority",
            "centre_id",
            "queue_time",
            postgresql_where=text(_WAITING_PRIORITY),
            sqlite_where=text(_WAITING_PRIORITY),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    procedure_id: Mapped[int | None] = mapped_column(ForeignKey("procedures.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), index=True)
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
    # A transfer closes this ticket and issues a new one that keeps the queue time.
    transferred_from_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Set when transferred to one counter: only that counter calls it.
    target_counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))

    centre: Mapped[Centre] = relationship()
    service: Mapped[Service] = relationship()
    procedure: Mapped[Procedure | None] = relationship()
    appointment: Mapped[Appointment | None] = relationship()
    counter: Mapped[Counter | None] = relationship(foreign_keys=[counter_id])
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )

    @property
    def is_priority(self) -> bool:
        return self.priority != PriorityClass.NONE

    def _require(self, action: str, *allowed: TicketStatus) -> None:
        if self.status not in allowed:
            raise TicketStateError(action=action, status=self.status.value, label=self.label)

    def call(self, counter_id: int, *, at: datetime) -> None:
        """Waiting → called to `counter_id`."""
        self._require("call", TicketStatus.WAITING)
        self.status = TicketStatus.CALLED
        self.counter_id = counter_id
        self.called_at = at
        self.call_count = 1

    def recall(self, *, at: datetime) -> None:
        """Call a called ticket once more (the citizen did not come yet)."""
        self._require("recall", TicketStatus.CALLED)
        self.call_count += 1
        self.called_at = at

    def start(self, *, at: datetime) -> None:
        """Called → serving: the citizen is at the counter."""
        self._require("start", TicketStatus.CALLED)
        self.status = TicketStatus.SERVING
        self.started_at = at

    def complete(self, *, at: datetime) -> None:
        """Serving → done."""
        self._require("complete", TicketStatus.SERVING)
        self.status = TicketStatus.DONE
        self.finished_at = at

    def mark_no_show(self, *, at: datetime) -> None:
        """Called (or left waiting past the day) → no-show."""
        self._require("no_show", TicketStatus.CALLED, TicketStatus.WAITING)
        self.status = TicketStatus.NO_SHOW
        self.finished_at = at

    def cancel(self, *, at: datetime) -> None:
        self._require("cancel", TicketStatus.WAITING, TicketStatus.CALLED)
        self.status = TicketStatus.CANCELLED
        self.finished_at = at

    def mark_transferred(self, *, at: datetime) -> None:
        self._require("transfer", TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.SERVING)
        self.status = TicketStatus.TRANSFERRED
        self.finished_at = at


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
