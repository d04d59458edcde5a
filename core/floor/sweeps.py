"""The no-show sweep: appointments nobody came for, tickets called in vain, lines left at
closing time — and the citizen standing that repeated no-shows earn (DESIGN §4).

Every function takes `now`, changes rows through the public operations of core.floor.tickets
(so audit rows and domain events are written as at a counter) and does not commit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.common.timeutil import day_bounds_utc, local_day, local_to_utc
from core.floor import tickets
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    CitizenStanding,
    Ticket,
    TicketStatus,
)
from core.places.calendar import opening_periods


@dataclass(frozen=True)
class NoShowPolicy:
    """When a booking counts as missed, and what repeated misses cost."""

    # An appointment is missed once the kiosk would refuse it: the later of slot end +
    # grace and slot start + the kiosk's late limit (sweeping earlier would turn away a
    # citizen the kiosk still accepts).
    grace_minutes: int = 15
    late_limit_minutes: int = 90
    # A called ticket with max_calls calls becomes a no-show this long after its last call.
    max_calls: int = 3
    called_timeout_minutes: int = 5
    # Tickets still waiting this long after a centre's last closing time are closed.
    closing_minutes: int = 60
    # `limit` missed appointments within `window_days` suspend booking for `suspension_days`.
    limit: int = 3
    window_days: int = 30
    suspension_days: int = 30
    # Rows handled per run and kind, so one run stays a short transaction.
    batch: int = 500


@dataclass
class SweepReport:
    appointments: int = 0
    called: int = 0
    closed_waiting: int = 0
    closed_called: int = 0
    suspended: int = 0

    def __str__(self) -> str:
        return (
            f"{self.appointments} appointments no-show, {self.called} called tickets no-show, "
            f"{self.closed_waiting} waiting tickets cancelled and {self.closed_called} called "
            f"tickets no-show at closing, {self.suspended} citizens suspended"
        )


def sweep(session: Session, *, now: datetime, policy: NoShowPolicy) -> SweepReport:
    """Run every part of the sweep once; what it changed, counted."""
    report = SweepReport()
    missed = sweep_appointments(session, now=now, policy=policy)
    report.appointments = len(missed)
    report.suspended = record_no_shows(session, missed, now=now, policy=policy)
    report.called = sweep_called(session, now=now, policy=policy)
    report.closed_waiting, report.closed_called = sweep_closed_lines(
        session, now=now, policy=policy
    )
    return report


# --- appointments -------------------------------------------------------------------------


def appointment_deadline(starts_at: datetime, ends_at: datetime, policy: NoShowPolicy) -> datetime:
    """The instant after which a still-booked appointment is a no-show."""
    return max(
        ends_at + timedelta(minutes=policy.grace_minutes),
        starts_at + timedelta(minutes=policy.late_limit_minutes),
    )


def sweep_appointments(session: Session, *, now: datetime, policy: NoShowPolicy) -> list[str]:
    """Booked appointments past their deadline → no-show; the citizen hashes of those changed.

    The status is changed by a conditional UPDATE (still booked), so a check-in that wins
    the race keeps its appointment and is not counted.
    """
    # Coarse filter in SQL (slot starts before now − the shorter of the two margins), exact
    # deadline in Python: the two margins depend on each slot's length.
    margin = timedelta(minutes=min(policy.grace_minutes, policy.late_limit_minutes))
    candidates = session.execute(
        select(Appointment.id, Appointment.starts_at, Appointment.ends_at)
        .where(Appointment.status == AppointmentStatus.BOOKED, Appointment.starts_at < now - margin)
        .order_by(Appointment.starts_at)
        .limit(policy.batch)
    ).all()
    due = [
        row.id
        for row in candidates
        if appointment_deadline(row.starts_at, row.ends_at, policy) < now
    ]
    if not due:
        return []
    changed = session.execute(
        update(Appointment)
        .where(Appointment.id.in_(due), Appointment.status == AppointmentStatus.BOOKED)
        .values(status=AppointmentStatus.NO_SHOW)
        .returning(Appointment.citizen_hash)
        .execution_options(synchronize_session=False)
    ).scalars()
    return [h for h in changed if h]


def record_no_shows(
    session: Session, citizen_hashes: list[str], *, now: datetime, policy: NoShowPolicy
) -> int:
    """Count each missed appointment against its citizen; suspend booking for those with
    `policy.limit` misses within the window. Returns how many got a (new or longer)
    suspension."""
    per_citizen: dict[str, int] = defaultdict(int)
    for hashed in citizen_hashes:
        per_citizen[hashed] += 1
    suspended = 0
    for hashed, missed in sorted(per_citizen.items()):
        _bump_standing(session, hashed, missed, now)
        if recent_no_shows(session, hashed, now=now, policy=policy) >= policy.limit:
            until = now + timedelta(days=policy.suspension_days)
            session.execute(
                update(CitizenStanding)
                .where(
                    CitizenStanding.citizen_hash == hashed,
                    or_(
                        CitizenStanding.suspended_until.is_(None),
                        CitizenStanding.suspended_until < until,
                    ),
                )
                .values(suspended_until=until, updated_at=now)
            )
            suspended += 1
    return suspended


def _bump_standing(session: Session, hashed: str, missed: int, now: datetime) -> None:
    """Add `missed` to the citizen's no-show count, creating the standing row if needed."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(CitizenStanding).values(
        citizen_hash=hashed, no_show_count=missed, suspended_until=None, updated_at=now
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CitizenStanding.citizen_hash],
            set_={"no_show_count": CitizenStanding.no_show_count + missed, "updated_at": now},
        )
    )


def recent_no_shows(
    session: Session, citizen_hash: str, *, now: datetime, policy: NoShowPolicy
) -> int:
    """Missed appointments of a citizen whose slot started within the window."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(
                Appointment.citizen_hash == citizen_hash,
                Appointment.status == AppointmentStatus.NO_SHOW,
                Appointment.starts_at >= now - timedelta(days=policy.window_days),
            )
        )
        or 0
    )


# --- tickets ------------------------------------------------------------------------------


def _locked(session: Session, query):  # type: ignore[no-untyped-def]
    """Rows of `query` locked for this transaction; on PostgreSQL skipping rows a counter
    holds right now (the next run gets them), on SQLite the write lock covers it."""
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Ticket)
    return session.scalars(query).all()


def sweep_called(session: Session, *, now: datetime, policy: NoShowPolicy) -> int:
    """Tickets called `max_calls` times whose last call is older than the timeout → no-show."""
    stale = now - timedelta(minutes=policy.called_timeout_minutes)
    found = _locked(
        session,
        select(Ticket)
        .where(
            Ticket.status == TicketStatus.CALLED,
            Ticket.call_count >= policy.max_calls,
            Ticket.called_at < stale,
        )
        .order_by(Ticket.id)
        .limit(policy.batch),
    )
    for ticket in found:
        tickets.no_show(session, ticket, now=now, automatic=True)
    return len(found)


def sweep_closed_lines(session: Session, *, now: datetime, policy: NoShowPolicy) -> tuple[int, int]:
    """Close what is left in lines once a centre's day is over (last closing time +
    `closing_minutes`, or any earlier day).

    Waiting tickets are *cancelled*, not no-shows: nobody called them, so the citizen did
    not fail to come — the centre ran out of day. Counting them as no-shows would blame
    citizens in the statistics for the centre's shortfall. An appointment behind such a
    ticket is cancelled with it. Tickets called but never started (fewer calls than the
    limit) become automatic no-shows: they were called and did not come.
    """
    today = local_day(now)
    open_rows = session.execute(
        select(Ticket.centre_id, Ticket.day)
        .where(Ticket.status.in_((TicketStatus.WAITING, TicketStatus.CALLED)), Ticket.day <= today)
        .group_by(Ticket.centre_id, Ticket.day)
    ).all()
    over = [(c, d) for c, d in open_rows if _day_over(session, c, d, now, policy)]
    if not over:
        return 0, 0
    found = _locked(
        session,
        select(Ticket)
        .where(
            Ticket.status.in_((TicketStatus.WAITING, TicketStatus.CALLED)),
            or_(*(and_(Ticket.centre_id == c, Ticket.day == d) for c, d in over)),
        )
        .order_by(Ticket.id)
        .limit(policy.batch),
    )
    waiting = called = 0
    for ticket in found:
        if ticket.status == TicketStatus.WAITING:
            tickets.cancel(session, ticket, now=now)
            _cancel_appointment(session, ticket, now)
            waiting += 1
        else:
            tickets.no_show(session, ticket, now=now, automatic=True)
            called += 1
    return waiting, called


def _day_over(
    session: Session, centre_id: int, day: date, now: datetime, policy: NoShowPolicy
) -> bool:
    if day < local_day(now):
        return True
    centre = session.get(Centre, centre_id)
    periods = opening_periods(centre, day) if centre is not None else []
    closing = local_to_utc(day, periods[-1][1]) if periods else day_bounds_utc(day)[0]
    return now >= closing + timedelta(minutes=policy.closing_minutes)


def _cancel_appointment(session: Session, ticket: Ticket, now: datetime) -> None:
    if ticket.appointment_id is None:
        return
    session.execute(
        update(Appointment)
        .where(
            Appointment.id == ticket.appointment_id,
            Appointment.status == AppointmentStatus.CHECKED_IN,
        )
        .values(status=AppointmentStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
