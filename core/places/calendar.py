"""Whether a centre is open: its opening periods, public holidays and closures.

One rule, in one place: a centre is open at a moment when that local day is not a public
holiday, no closure covers the centre (or every centre) that day, and the moment falls in
one of the day's opening periods. `closed_clause` is the closure test in SQL, for reads that
fold it into their statement; `open_at` applies the whole rule to what such a read found;
`centre_open_now` asks the database itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, Protocol

import holidays
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from core.common.timeutil import local_day, local_to_utc
from core.models import Centre, Closure


class HasHours(Protocol):
    """A centre, or plain values read for one: its weekly opening hours."""

    opening_hours: dict[str, Any]


@lru_cache(maxsize=16)
def _vn_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=year)


def is_public_holiday(day: date) -> bool:
    """Vietnamese public holiday (the `holidays` package, country VN)."""
    return day in _vn_holidays(day.year)


def holiday_name(day: date) -> str | None:
    return _vn_holidays(day.year).get(day)


def opening_periods(centre: HasHours, day: date) -> list[tuple[time, time]]:
    """Local (start, end) opening periods of `centre` on `day`, ignoring closures."""
    periods = (centre.opening_hours or {}).get(str(day.weekday()), [])
    return [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in periods]


def is_open_day(centre: Centre, day: date, closed_days: Iterable[date] = ()) -> bool:
    """Open on `day`: has opening hours, not a public holiday, not a closure."""
    return (
        bool(opening_periods(centre, day))
        and not is_public_holiday(day)
        and (day not in set(closed_days))
    )


def within_hours(centre: HasHours, day: date, now: datetime) -> bool:
    """Whether `now` falls in an opening period of `day`."""
    return any(
        local_to_utc(day, start) <= now < local_to_utc(day, end)
        for start, end in opening_periods(centre, day)
    )


def closed_clause(centre_id: Any, day: Any) -> ColumnElement[bool]:
    """SQL: a closure covers the centre (or every centre) on `day` (columns, values or
    bound parameters)."""
    return exists().where(
        Closure.day == day, or_(Closure.centre_id == centre_id, Closure.centre_id.is_(None))
    )


def open_at(centre: HasHours, now: datetime, *, closed: bool) -> bool:
    """The rule, on what a read found: `closed` is `closed_clause` for the day of `now`."""
    day = local_day(now)
    return not closed and not is_public_holiday(day) and within_hours(centre, day, now)


def centre_open_now(session: Session, centre: Centre, now: datetime) -> bool:
    """Whether `centre` is open at `now` (holidays and closures count)."""
    closed = session.scalar(select(closed_clause(centre.id, local_day(now))))
    return open_at(centre, now, closed=bool(closed))
