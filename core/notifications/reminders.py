"""Reminders to citizens: queued once per appointment and kind in the outbox, rendered, and
claimed for sending (see core.notifications for the whole flow)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from core.common.timeutil import local_day, local_to_utc, to_local
from core.models import Appointment, AppointmentStatus, Notification, NotificationStatus

DAY_BEFORE = "reminder_day_before"
HOUR_BEFORE = "reminder_hour_before"


@dataclass(frozen=True)
class ReminderPolicy:
    """When reminders are due, through which channels, and how sending is retried."""

    day_before_at: time = time(18, 0)  # local time on the day before the appointment
    hour_before_minutes: int = 60
    # Channels in order of preference; an appointment gets the first that can reach it
    # ("smtp" needs an e-mail address, "webhook" and "log" a phone number).
    channels: tuple[str, ...] = ("log",)
    max_attempts: int = 5
    retry_minutes: float = 1.0  # first retry after this; doubles each time, at most an hour
    lease_minutes: int = 5
    batch: int = 200

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(minutes=min(self.retry_minutes * 2 ** max(attempts - 1, 0), 60))


# --- queueing -----------------------------------------------------------------------------


def due_times(appointment_starts: datetime, policy: ReminderPolicy) -> dict[str, datetime]:
    """Kind → the instant its reminder is due, for an appointment starting then."""
    eve = local_day(appointment_starts) - timedelta(days=1)
    return {
        DAY_BEFORE: local_to_utc(eve, policy.day_before_at),
        HOUR_BEFORE: appointment_starts - timedelta(minutes=policy.hour_before_minutes),
    }


def _wanted(
    appointment: Appointment, kind: str, due: datetime, now: datetime, policy: ReminderPolicy
) -> bool:
    """A reminder is pointless when the citizen booked after it was due (they just got the
    confirmation) and a day-before one when the hour-before one is already due."""
    if appointment.created_at >= due or appointment.starts_at <= now:
        return False
    if kind == DAY_BEFORE:
        return now < due_times(appointment.starts_at, policy)[HOUR_BEFORE]
    return True


def choose_channel(appointment: Appointment, channels: Iterable[str]) -> tuple[str, str] | None:
    """The first configured channel that reaches the appointment's holder, and the address."""
    for channel in channels:
        if channel == "smtp" and appointment.email:
            return channel, appointment.email
        if channel in ("webhook", "log") and appointment.phone:
            return channel, appointment.phone
    return None


def queue_reminders(session: Session, *, now: datetime, policy: ReminderPolicy) -> int:
    """One outbox row per booked appointment and reminder kind, due at its time; never
    twice (the (appointment, kind) unique constraint, inserts that skip conflicts).
    Looks at appointments starting within two days; returns the rows added."""
    upcoming = session.scalars(
        select(Appointment).where(
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at > now,
            Appointment.starts_at <= now + timedelta(days=2),
        )
    ).all()
    rows = []
    for appointment in upcoming:
        target = choose_channel(appointment, policy.channels)
        if target is None:
            continue
        for kind, due in due_times(appointment.starts_at, policy).items():
            if _wanted(appointment, kind, due, now, policy):
                rows.append(_outbox_row(appointment, kind, target, due, now))
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    added = session.scalars(
        insert(Notification)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["appointment_id", "kind"])
        .returning(Notification.id)
    ).all()
    return len(added)


def _outbox_row(
    appointment: Appointment, kind: str, target: tuple[str, str], due: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "appointment_id": appointment.id,
        "kind": kind,
        "channel": target[0],
        "recipient": target[1],
        # The start it was queued for: a rescheduled appointment moves its reminder.
        "payload": {"starts_at": appointment.starts_at.isoformat()},
        "status": NotificationStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": max(due, now),
        "created_at": now,
        "last_error": "",
    }


# --- messages -----------------------------------------------------------------------------

_TEMPLATES = {
    "vi": {
        "subject": "Nhắc lịch hẹn {code} – {centre}",
        DAY_BEFORE: "Nhắc lịch hẹn: {time} ngày {date} tại {centre} ({address}), thủ tục "
        "{procedure}. Mã đặt lịch: {code}. Vui lòng mang theo CCCD và mã QR để quét tại kiosk.",
        HOUR_BEFORE: "Sắp đến giờ hẹn: {time} hôm nay tại {centre} ({address}). Mã đặt lịch: "
        "{code}. Vui lòng quét mã QR tại kiosk khi đến.",
    },
    "en": {
        "subject": "Appointment reminder {code} – {centre}",
        DAY_BEFORE: "Reminder: your appointment is at {time} on {date} at {centre} ({address}), "
        "procedure {procedure}. Booking code: {code}. Please bring your citizen ID card and the "
        "QR code to scan at the kiosk.",
        HOUR_BEFORE: "Your appointment is soon: {time} today at {centre} ({address}). Booking "
        "code: {code}. Please scan the QR code at the kiosk when you arrive.",
    },
}


@dataclass(frozen=True)
class Message:
    notification_id: int
    kind: str
    channel: str
    recipient: str
    subject: str
    text: str


def render(appointment: Appointment, kind: str) -> tuple[str, str]:
    """Subject and text of a reminder, in Vietnamese (English if the booking was made in
    English). No name in it: the message passes through gateways."""
    lang = "en" if (appointment.locale or "").startswith("en") else "vi"
    start = to_local(appointment.starts_at)
    values = {
        "code": appointment.code,
        "centre": appointment.centre.name,
        "address": appointment.centre.address or appointment.centre.name,
        "procedure": appointment.procedure.name,
        "time": start.strftime("%H:%M"),
        "date": start.strftime("%d/%m/%Y"),
    }
    templates = _TEMPLATES[lang]
    return templates["subject"].format(**values), templates[kind].format(**values)


# --- claiming -----------------------------------------------------------------------------


@dataclass
class Claim:
    """What `claim_due` took: messages to send now, and rows it closed without sending."""

    messages: list[Message] = field(default_factory=list)
    skipped: int = 0
    moved: int = 0


def claim_due(session: Session, *, now: datetime, policy: ReminderPolicy) -> Claim:
    """Lease the due pending rows (one attempt each) and build their messages.

    A row whose appointment is no longer booked, or already started, is closed as failed
    with the reason; one whose appointment moved is pushed to the new due time.
    """
    query = (
        select(Notification)
        .where(
            Notification.status == NotificationStatus.PENDING,
            Notification.next_attempt_at <= now,
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(policy.batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = session.scalars(query).all()
    appointments = _appointments(session, {r.appointment_id for r in rows if r.appointment_id})
    claim = Claim()
    for row in rows:
        appointment = appointments.get(row.appointment_id or 0)
        reason = _reason_to_skip(appointment, now)
        if reason:
            close_row(row, NotificationStatus.FAILED, reason)
            claim.skipped += 1
            continue
        assert appointment is not None
        moved = row.payload.get("starts_at") != appointment.starts_at.isoformat()
        if moved and _move(row, appointment, now, policy):
            claim.moved += 1
            continue
        subject, text = render(appointment, row.kind)
        row.attempts += 1
        row.next_attempt_at = now + timedelta(minutes=policy.lease_minutes)
        claim.messages.append(Message(row.id, row.kind, row.channel, row.recipient, subject, text))
    return claim


def _appointments(session: Session, ids: set[int]) -> dict[int, Appointment]:
    if not ids:
        return {}
    found = session.scalars(
        select(Appointment)
        .where(Appointment.id.in_(ids))
        .options(joinedload(Appointment.centre), joinedload(Appointment.procedure))
    ).all()
    return {a.id: a for a in found}


def _reason_to_skip(appointment: Appointment | None, now: datetime) -> str:
    if appointment is None:
        return "skipped: appointment gone"
    if appointment.status != AppointmentStatus.BOOKED:
        return f"skipped: appointment {appointment.status.value}"
    if appointment.starts_at <= now:
        return "skipped: too late, the appointment has started"
    return ""


def _move(
    row: Notification, appointment: Appointment, now: datetime, policy: ReminderPolicy
) -> bool:
    """Follow a rescheduled appointment; True when the row now waits for a later time."""
    row.payload = {**row.payload, "starts_at": appointment.starts_at.isoformat()}
    due = due_times(appointment.starts_at, policy)[row.kind]
    if due > now:
        row.next_attempt_at = due
        return True
    return False


def close_row(row: Notification, status: NotificationStatus, error: str = "") -> None:
    row.status = status
    row.last_error = error[:500]
