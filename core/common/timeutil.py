"""Time helpers: everything is stored in UTC and shown in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# The days a request may name. Every real question fits (the service began in 2025, bookings
# reach weeks ahead, statistics years back), and date arithmetic on them (weeks of history,
# days ahead, UTC offsets) stays far from date.min and date.max, where it would overflow.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime."""
    return datetime.now(UTC)


def to_local(moment: datetime) -> datetime:
    """The same instant in Ho Chi Minh City time."""
    return moment.astimezone(LOCAL_TZ)


def local_day(moment: datetime) -> date:
    """The calendar day in Ho Chi Minh City on which `moment` falls."""
    return to_local(moment).date()


def local_to_utc(day: date, at: time) -> datetime:
    """The UTC instant of a local wall-clock time on a local day."""
    return datetime.combine(day, at, tzinfo=LOCAL_TZ).astimezone(UTC)


def day_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of a local day."""
    start = local_to_utc(day, time(0, 0))
    return start, start + timedelta(days=1)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in Ho Chi Minh City time (+07:00), as the API promises."""
    return to_local(moment).isoformat() if moment is not None else None
