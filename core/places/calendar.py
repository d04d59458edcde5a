"""Which local days a centre is open, and its opening periods on a day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time
from functools import lru_cache

import holidays

from core.models import Centre


@lru_cache(maxsize=16)
def _vn_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=year)


def is_public_holiday(day: date) -> bool:
    """Vietnamese public holiday (the `holidays` package, country VN)."""
    return day in _vn_holidays(day.year)


def holiday_name(day: date) -> str | None:
    return _vn_holidays(day.year).get(day)


def opening_periods(centre: Centre, day: date) -> list[tuple[time, time]]:
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
