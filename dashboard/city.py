"""Operations API: load per centre and line, daily statistics, dispatch plans.

Managers see their own centre; operators and admins the whole city. Dispatch plans are
the city's, so only operators and admins see and accept them. Officers and devices are
refused. Answers are never cached: they change with every booking and ticket.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import (
    Centre,
    DailyStatistic,
    Service,
)
from core.operations import balancing, forecast, statistics
from dashboard.figures import SOURCES, active_centres, balancing_policy, finite_or_none


def _names(session: Session, model: type[Centre] | type[Service], ids: set[int]) -> dict:
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


def load_body(
    session: Session, ids: list[int] | None, day: date, days: int, *, now: datetime
) -> dict[str, Any]:
    policy = balancing_policy()
    history = forecast.cached_history(session, now=now, policy=policy)
    report = balancing.load(session, ids, day, days, now=now, policy=policy, history=history)
    names = _names(session, Centre, {c.centre_id for c in report.centres.values()})
    service_names = _names(session, Service, {line.service_id for line in report.services})
    lines: dict[tuple[int, date], list[dict[str, Any]]] = {}
    for line in report.services:
        lines.setdefault((line.centre_id, line.day), []).append(
            {
                "service": line.service_prefix,
                "name": service_names.get(line.service_id),
                "capacity": line.capacity,
                "bookable": line.bookable,
                "booked": line.booked,
                "forecast": line.forecast,
                "utilisation": finite_or_none(line.utilisation),
                "overloaded": line.overloaded,
            }
        )
    centres = [
        {
            "centre": c.centre_code,
            "name": names.get(c.centre_id),
            "date": c.day.isoformat(),
            "lat": c.lat,
            "lon": c.lon,
            "officers": c.officers,
            "needed": c.needed,
            "demand": c.demand,
            "utilisation": finite_or_none(c.utilisation),
            "overloaded": c.overloaded,
            "wait_p90": c.wait_p90,
            "services": sorted(
                lines.get((c.centre_id, c.day), []), key=lambda line: line["service"]
            ),
        }
        for c in sorted(report.centres.values(), key=lambda c: (c.centre_code, c.day))
    ]
    return {"date": day.isoformat(), "days": days, "centres": centres}


_FIGURES = (
    "issued",
    "served",
    "no_show",
    "cancelled",
    "wait_p50",
    "wait_p90",
    "service_avg",
    "eta_error_minutes",
)


_EMPTY = {
    name: 0 if name in ("issued", "served", "no_show", "cancelled") else None for name in _FIGURES
}


def _stored(session: Session, ids: list[int] | None, day: date) -> list[dict[str, Any]]:
    q = select(DailyStatistic).where(
        DailyStatistic.day == day,
        DailyStatistic.service_id.is_(None),
        DailyStatistic.hour.is_(None),
        DailyStatistic.by_field.is_(False),  # the by-field rows have the same None keys
    )
    if ids is not None:
        q = q.where(DailyStatistic.centre_id.in_(ids))
    return [
        {"centre_id": r.centre_id, "source": r.source, **{n: getattr(r, n) for n in _FIGURES}}
        for r in session.scalars(q)
    ]


def _folded(session: Session, ids: list[int] | None, day: date, now: datetime):
    cells = statistics.fold_day(session, day, ids)
    out = []
    for key, cell in cells.items():
        centre_id, service_id, source, hour, by_field, _field_id = key
        if service_id is None and hour is None and not by_field:
            row = cell.row(key, day, now)
            out.append({"centre_id": centre_id, "source": source, **{n: row[n] for n in _FIGURES}})
    return out


def stats_body(
    session: Session, ids: list[int] | None, day: date, *, now: datetime
) -> dict[str, Any]:
    """The day's figures per centre and source: the aggregated rows, or (for a day not
    aggregated yet, today say) the tickets folded now without writing anything."""
    exists = select(func.count()).select_from(DailyStatistic).where(DailyStatistic.day == day)
    if ids is not None:
        exists = exists.where(DailyStatistic.centre_id.in_(ids))
    live = not session.scalar(exists)
    rows = _folded(session, ids, day, now) if live else _stored(session, ids, day)
    by_centre: dict[int, dict[str | None, dict[str, Any]]] = {}
    for row in rows:
        figures = {n: row[n] for n in _FIGURES}
        by_centre.setdefault(row["centre_id"], {})[row["source"]] = figures
    centres = []
    for centre in active_centres(session, ids):
        cells = by_centre.get(centre.id, {})
        centres.append(
            {
                "centre": centre.code,
                "name": centre.name,
                **cells.get(None, _EMPTY),
                "by_source": {src: cells.get(src, _EMPTY) for src in SOURCES},
            }
        )
    return {"date": day.isoformat(), "live": live, "centres": centres}
