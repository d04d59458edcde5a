"""How the citizen pages show times, distances and load (Jinja filters).

Everything is stored in UTC; citizens read Ho Chi Minh City wall-clock time, with
"Hôm nay"/"Ngày mai" for the days they think of that way.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from babel.dates import format_date
from babel.numbers import format_decimal
from flask import Blueprint
from flask_babel import get_locale
from flask_babel import gettext as _

from core.common.timeutil import local_day, to_local
from web.clock import clock

# At or above this share booked a centre (or a day) is "nearly full" and we point elsewhere.
NEARLY_FULL = 0.85


def _locale() -> str:
    return str(get_locale() or "vi")


def hhmm(moment: datetime) -> str:
    return to_local(moment).strftime("%H:%M")


def long_date(day: date) -> str:
    """'Thứ Hai, 07/12/2026' (English: 'Monday, 7 Dec 2026')."""
    pattern = "EEEE, dd/MM/yyyy" if _locale() == "vi" else "EEEE, d MMM yyyy"
    return format_date(day, pattern, locale=_locale())


def short_date(day: date) -> str:
    """'Thứ Ba 08/12' for day tabs."""
    pattern = "EEEE dd/MM" if _locale() == "vi" else "EEE d MMM"
    return format_date(day, pattern, locale=_locale())


def day_name(day: date) -> str:
    """'Hôm nay' / 'Ngày mai' for the two nearest days, otherwise the long date."""
    today = local_day(clock())
    if day == today:
        return _("Hôm nay")
    if day == today + timedelta(days=1):
        return _("Ngày mai")
    return long_date(day)


def when(moment: datetime | None) -> str:
    """'Hôm nay, 09:30' or 'Thứ Ba, 08/12/2026, 09:30' in local time."""
    if moment is None:
        return ""
    return f"{day_name(local_day(moment))}, {hhmm(moment)}"


def when_range(starts_at: datetime, ends_at: datetime) -> str:
    """'Hôm nay, 09:30–10:00' or 'Thứ Ba, 08/12/2026, 09:30–10:00' in local time."""
    return f"{day_name(local_day(starts_at))}, {hhmm(starts_at)}–{hhmm(ends_at)}"


def local_date(moment: datetime) -> date:
    return local_day(moment)


def km(distance: float | None) -> str:
    if distance is None:
        return ""
    return format_decimal(round(distance, 1), format="#,##0.0", locale=_locale()) + " km"


def percent(share: float) -> str:
    return f"{round(share * 100)}%"


def bar_width(share: float) -> int:
    """A booked share as a bar's width out of 100 (an SVG attribute, not an inline style)."""
    return max(0, min(100, round(share * 100)))


def load_level(load: float) -> str:
    """A CSS-friendly level for a booked share: 'low', 'medium' or 'high'."""
    if load >= NEARLY_FULL:
        return "high"
    return "medium" if load >= 0.5 else "low"


def load_label(load: float) -> str:
    level = load_level(load)
    if level == "high":
        return _("Gần kín lịch")
    if level == "medium":
        return _("Khá đông")
    return _("Còn nhiều chỗ")


def mask_phone(phone: str) -> str:
    """Show only enough of a phone number for its owner to recognise it."""
    if len(phone) < 7:
        return phone
    return phone[:3] + "•" * (len(phone) - 6) + phone[-3:]


def register(bp: Blueprint) -> None:
    """Make the filters available to every template (error pages use them too)."""
    for fn in (
        hhmm,
        long_date,
        short_date,
        day_name,
        when,
        when_range,
        local_date,
        km,
        percent,
        bar_width,
        load_level,
        load_label,
        mask_phone,
    ):
        bp.add_app_template_filter(fn)
