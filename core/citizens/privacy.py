"""Erasure of citizens' personal data on schedule (Law 91/2025/QH15: keep the minimum,
delete on schedule).

After the retention period, past appointments lose the holder's name, phone, e-mail and
citizen-ID hash; tickets their contact details and hash; outbox rows their recipient and
message text; citizen standings with no running suspension go. What stays is anonymous:
statuses, times, centres, lines — and so every statistic. Idempotent: a second run finds
nothing left to erase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.models import (
    Appointment,
    AppointmentStatus,
    CitizenStanding,
    Notification,
    Ticket,
    TicketStatus,
)

# Only finished things are erased: an appointment still booked (far in the future) or a
# ticket still in a line keeps what it needs to be served.
_APPOINTMENT_OPEN = (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)
_TICKET_OPEN = (TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.SERVING)


@dataclass
class PurgeReport:
    appointments: int = 0
    tickets: int = 0
    notifications: int = 0
    standings: int = 0

    @property
    def total(self) -> int:
        return self.appointments + self.tickets + self.notifications + self.standings

    def __str__(self) -> str:
        return (
            f"erased {self.appointments} appointments, {self.tickets} tickets, "
            f"{self.notifications} notifications; removed {self.standings} citizen standings"
        )


def purge_personal_data(session: Session, *, now: datetime, retention_days: int) -> PurgeReport:
    """Erase personal data older than `retention_days`; counts what was erased."""
    cutoff = now - timedelta(days=retention_days)
    report = PurgeReport()
    old_appointments = (
        select(Appointment.id)
        .where(Appointment.ends_at < cutoff, Appointment.status.not_in(_APPOINTMENT_OPEN))
        .scalar_subquery()
    )
    report.notifications = _rowcount(
        session,
        update(Notification)
        .where(
            Notification.recipient != "",
            or_(
                Notification.created_at < cutoff, Notification.appointment_id.in_(old_appointments)
            ),
        )
        .values(recipient="", payload={}),
    )
    report.appointments = _rowcount(
        session,
        update(Appointment)
        .where(
            Appointment.ends_at < cutoff,
            Appointment.status.not_in(_APPOINTMENT_OPEN),
            Appointment.purged_at.is_(None),
        )
        .values(full_name="", phone="", email=None, citizen_hash="", purged_at=now),
    )
    report.tickets = _rowcount(
        session,
        update(Ticket)
        .where(
            Ticket.issued_at < cutoff,
            Ticket.status.not_in(_TICKET_OPEN),
            or_(
                Ticket.citizen_hash.is_not(None),
                Ticket.contact_name.is_not(None),
                Ticket.contact_phone.is_not(None),
            ),
        )
        .values(citizen_hash=None, contact_name=None, contact_phone=None),
    )
    report.standings = _rowcount(
        session,
        delete(CitizenStanding).where(
            CitizenStanding.updated_at < cutoff,
            or_(CitizenStanding.suspended_until.is_(None), CitizenStanding.suspended_until < now),
        ),
    )
    return report


def _rowcount(session: Session, statement) -> int:  # type: ignore[no-untyped-def]
    result = session.execute(statement.execution_options(synchronize_session=False))
    return max(result.rowcount, 0)
