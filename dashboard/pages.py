"""Dashboard pages: the city overview, the dispatch plan and a centre's statistics.

The overview and the dispatch plan are shells whose figures come from the operations API
(`/api/v1/load`, `/api/v1/dispatch-plan`) over fetch with the staff session; a centre's
statistics are rendered here from the same functions the API answers with, so their tables
read without JavaScript and the charts draw from the same numbers.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _
from sqlalchemy import select

from core.common.errors import InvalidInput
from core.common.timeutil import local_day
from core.models import Centre
from dashboard import centre_stats, city, strings
from dashboard.access import dashboard_page, forbidden, may_see, me, refused, sees_city
from dashboard.schemas import DayQuery, RangeQuery
from web.clock import clock
from web.extensions import db
from web.messages import message

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

OUTLOOK_DAYS = 7
# Utilisation from which a centre-day is shown busy, and above which overloaded (the
# balancing's own overload flag turns it red as well).
BUSY_FROM, FULL_ABOVE = 0.7, 0.9


def load_level(entry: dict[str, Any] | None) -> str:
    """ok | busy | over | closed: the colour of a centre-day of `/load`."""
    if entry is None:
        return "closed"
    utilisation = entry["utilisation"]
    if entry["overloaded"] or utilisation is None or utilisation > FULL_ABOVE:
        return "over"
    return "busy" if utilisation >= BUSY_FROM else "ok"


def _weekday(day: date, *, short: bool) -> str:
    if short:
        names = (_("T2"), _("T3"), _("T4"), _("T5"), _("T6"), _("T7"), _("CN"))
    else:
        names = (
            _("Thứ Hai"),
            _("Thứ Ba"),
            _("Thứ Tư"),
            _("Thứ Năm"),
            _("Thứ Sáu"),
            _("Thứ Bảy"),
            _("Chủ Nhật"),
        )
    return names[day.weekday()]


def day_labels(first: date, days: int) -> list[dict[str, str]]:
    """The days from `first` with their short ("T2 07/12") and long labels."""
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        out.append(
            {
                "date": day.isoformat(),
                "short": f"{_weekday(day, short=True)} {day:%d/%m}",
                "long": f"{_weekday(day, short=False)}, {day:%d/%m/%Y}",
            }
        )
    return out


def _directory() -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Centre.code, Centre.name, Centre.lat, Centre.lon)
        .where(Centre.active.is_(True))
        .order_by(Centre.code)
    )
    return [{"code": c, "name": n, "lat": lat, "lon": lon} for c, n, lat, lon in rows]


def _centre(code: str) -> Centre | None:
    if len(code) > 16:
        return None
    return db.session.scalars(
        select(Centre).where(Centre.code == code, Centre.active.is_(True))
    ).one_or_none()


def _not_found():
    return refused(404, _("Không tìm thấy trung tâm"), message("centre_not_found"))


# ---------------------------------------------------------------- the city overview


@bp.get("")
@dashboard_page()
def overview():
    """Operators: every centre's load for a week; a manager goes to their centre's page."""
    staff = me()
    if not sees_city(staff):
        centre = db.session.get(Centre, staff.centre_id)
        return redirect(url_for(".centre", code=centre.code))
    today = local_day(clock())
    return render_template(
        "dashboard/overview.html",
        today=today,
        days=day_labels(today, OUTLOOK_DAYS),
        directory=_directory(),
        thresholds={"busy": BUSY_FROM, "full": FULL_ABOVE},
        strings=strings.overview(),
    )


# ---------------------------------------------------------------- the dispatch plan


@bp.get("/dispatch")
@dashboard_page(city=True)
def dispatch():
    """The day's recommended moves and shortfalls, to accept or decline."""
    today = local_day(clock())
    error = None
    try:
        day = DayQuery().load(request.args).get("date") or today
    except ma.ValidationError:
        day, error = today, message("invalid_date")
    names = {c["code"]: c["name"] for c in _directory()}
    return render_template(
        "dashboard/dispatch.html",
        day=day,
        today=today,
        label=day_labels(day, 1)[0],
        names=names,
        error=error,
        strings=strings.dispatch(),
    ), (422 if error else 200)


# ---------------------------------------------------------------- one centre's statistics


def _range(args: Any, now) -> tuple[date, date, str | None]:
    """The days asked for, or the default week and why the request was refused."""
    try:
        return (*centre_stats.stats_range(RangeQuery().load(args), now), None)
    except ma.ValidationError:
        error = message("invalid_date")
    except InvalidInput as err:
        error = err.details.get("detail") or message("invalid")
    return (*centre_stats.stats_range({}, now), error)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0." + "#" * digits)


def _share(part: int, whole: int) -> str:
    return "—" if not whole else format_percent(part / whole, format="#,##0%")


bp.add_app_template_filter(_num, "dash_num")
bp.add_app_template_filter(_share, "dash_share")
bp.add_app_template_global(load_level, "dash_load_level")


@bp.get("/centres/<code>")
@dashboard_page()
def centre(code: str):
    """Figures of one centre over a range of days, by source, line and hour, and its load."""
    now = clock()
    place = _centre(code)
    if place is None:
        return _not_found()
    if not may_see(me(), place):
        return forbidden()
    first, last, error = _range(request.args, now)
    stats = centre_stats.centre_stats_body(db.session, place, first, last, now=now)
    today = local_day(now)
    outlook = city.load_body(db.session, [place.id], today, OUTLOOK_DAYS, now=now)
    by_day = {entry["date"]: entry for entry in outlook["centres"]}
    days = day_labels(today, OUTLOOK_DAYS)
    return render_template(
        "dashboard/centre.html",
        centre=place,
        stats=stats,
        first=first,
        last=last,
        error=error,
        outlook=[(day, by_day.get(day["date"])) for day in days],
        labels={d["date"]: d["short"] for d in day_labels(first, (last - first).days + 1)},
        max_days=centre_stats.MAX_RANGE_DAYS,
        strings=strings.centre(),
        csv_url=url_for(
            "dashboard_api.get_one_centre_stats_csv",
            code=place.code,
            **{"from": first.isoformat(), "to": last.isoformat()},
        ),
        excel_csv_url=url_for(
            "dashboard_api.get_one_centre_stats_csv",
            code=place.code,
            excel="true",
            **{"from": first.isoformat(), "to": last.isoformat()},
        ),
    ), (422 if error else 200)
