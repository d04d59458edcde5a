"""Operations API: load per centre and line, daily statistics, dispatch plans.

Managers see their own centre; operators and admins the whole city. Dispatch plans are
the city's, so only operators and admins see and accept them. Officers and devices are
refused. Answers are never cached: they change with every booking and ticket.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.common.errors import InvalidInput
from core.common.timeutil import local_day
from core.models import (
    Centre,
    DailyStatistic,
    Field,
    Service,
)
from core.operations import statistics
from dashboard.figures import SOURCES

MAX_RANGE_DAYS = 31


DEFAULT_RANGE_DAYS = 7


_COUNTS = ("issued", "served", "no_show", "cancelled", "waits", "estimates", "estimates_within")


_WEIGHTED = {
    "wait_p50": "waits",
    "wait_p90": "waits",
    "service_avg": "served",
    "eta_error_minutes": "estimates",
}


_CELL_KEYS = ("day", "service_id", "source", "hour", "by_field", "field_id", *_COUNTS, *_WEIGHTED)


CSV_COLUMNS = (
    "date",
    "centre",
    "service",
    "service_name",
    "source",
    "hour",
    "field",
    "issued",
    "served",
    "no_show",
    "cancelled",
    "waits",
    "wait_p50",
    "wait_p90",
    "service_avg",
    "estimates",
    "estimates_within",
    "eta_error_minutes",
)


def stats_range(args: dict[str, Any], now: datetime) -> tuple[date, date]:
    """The days asked for: `to` defaults to today, `from` to a week ending on `to`; at most
    MAX_RANGE_DAYS days, `from` not after `to` (else InvalidInput)."""
    last = args.get("to") or local_day(now)
    first = args.get("from_") or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if first > last:
        raise InvalidInput(
            {"from": "out_of_range"}, detail=_("Ngày bắt đầu phải trước hoặc trùng ngày kết thúc.")
        )
    if (last - first).days >= MAX_RANGE_DAYS:
        raise InvalidInput(
            {"to": "out_of_range"},
            detail=_("Chỉ xem được tối đa %(days)s ngày một lần.", days=MAX_RANGE_DAYS),
        )
    return first, last


def range_cells(
    session: Session, centre: Centre, first: date, last: date, *, now: datetime
) -> tuple[list[dict[str, Any]], set[date]]:
    """Every cell of the centre's days from `first` to `last`: the stored rows, and for each
    day up to today without any, its tickets folded now (nothing written). Returns the cells
    and the days folded live."""
    stored = session.scalars(
        select(DailyStatistic).where(
            DailyStatistic.centre_id == centre.id, DailyStatistic.day.between(first, last)
        )
    )
    cells = [{k: getattr(row, k) for k in _CELL_KEYS} for row in stored]
    have = {cell["day"] for cell in cells}
    live: set[date] = set()
    day, today = first, local_day(now)
    while day <= min(last, today):
        if day not in have:
            folded = statistics.fold_day(session, day, [centre.id])
            cells.extend(
                {k: row[k] for k in _CELL_KEYS}
                for row in (cell.row(key, day, now) for key, cell in folded.items())
            )
            live.add(day)
        day += timedelta(days=1)
    return cells, live


def combine(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """One set of figures from cells of the same grouping on different days."""
    out: dict[str, Any] = {name: sum(cell[name] for cell in cells) for name in _COUNTS}
    for name, weight in _WEIGHTED.items():
        pairs = [(c[name], c[weight]) for c in cells if c[name] is not None and c[weight]]
        total = sum(w for _value, w in pairs)
        out[name] = round(sum(v * w for v, w in pairs) / total, 2) if total else None
    return out


def _level(
    cells: list[dict[str, Any]], *, service: bool = False, source: bool = False, hour: bool = False
) -> list[dict[str, Any]]:
    """The cells grouped by exactly these keys (the others being roll-ups, None), outside
    the by-field level (whose keys are all None too: see `_by_field`)."""
    return [
        c
        for c in cells
        if not c["by_field"]
        and (c["service_id"] is not None) == service
        and (c["source"] is not None) == source
        and (c["hour"] is not None) == hour
    ]


def _by_field(cells: list[dict[str, Any]]) -> dict[int | None, list[dict[str, Any]]]:
    """The by-field cells per field (None: tickets whose field is not known)."""
    out: dict[int | None, list[dict[str, Any]]] = {}
    for cell in cells:
        if cell["by_field"]:
            out.setdefault(cell["field_id"], []).append(cell)
    return out


def _field_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return dict(session.execute(select(Field.id, Field.name).where(Field.id.in_(wanted))).all())


def _lines(session: Session, centre: Centre, seen: set[int]) -> list[tuple[int, str, str]]:
    """(id, prefix, name) of the centre's active lines and of any other line in `seen`."""
    q = select(Service.id, Service.prefix, Service.name).where(
        (Service.centre_id == centre.id) & Service.active.is_(True) | Service.id.in_(seen)
    )
    return sorted(((i, p, n) for i, p, n in session.execute(q)), key=lambda line: line[1:])


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def centre_stats_body(
    session: Session, centre: Centre, first: date, last: date, *, now: datetime
) -> dict[str, Any]:
    """The centre's figures from `first` to `last`: in all, per day, source, line and hour."""
    cells, live = range_cells(session, centre, first, last, now=now)
    whole = {c["day"]: c for c in _level(cells)}
    by_service: dict[int, list[dict[str, Any]]] = {}
    for cell in _level(cells, service=True):
        by_service.setdefault(cell["service_id"], []).append(cell)
    by_hour: dict[int, list[dict[str, Any]]] = {}
    for cell in _level(cells, hour=True):
        by_hour.setdefault(cell["hour"], []).append(cell)
    sources = _level(cells, source=True)
    per_field = _by_field(cells)
    names = _field_names(session, per_field)
    by_field = [
        {"field_id": fid, "field": names.get(fid) if fid is not None else None, **combine(rows)}
        for fid, rows in per_field.items()
    ]
    # Most tickets first; the unknown bucket after the named fields it ties with.
    by_field.sort(key=lambda f: (-f["issued"], f["field"] is None, f["field"] or ""))
    return {
        "centre": centre.code,
        "name": centre.name,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "total": combine(list(whole.values())),
        "days": [
            {"date": d.isoformat(), "live": d in live, **combine([whole[d]] if d in whole else [])}
            for d in _days(first, last)
        ],
        "by_source": {src: combine([c for c in sources if c["source"] == src]) for src in SOURCES},
        "by_service": [
            {"service": prefix, "name": name, **combine(by_service.get(sid, []))}
            for sid, prefix, name in _lines(session, centre, set(by_service))
        ],
        "by_hour": [{"hour": h, **combine(by_hour[h])} for h in sorted(by_hour)],
        "by_field": by_field,
    }


def _csv_text(value: Any, decimal: str = ".") -> Any:
    """A cell as text a spreadsheet will not run as a formula; None as empty; a float with
    `decimal` as its decimal mark."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, float) and decimal != ".":
        return repr(value).replace(".", decimal)
    return value


def centre_stats_csv(
    session: Session,
    centre: Centre,
    first: date,
    last: date,
    *,
    now: datetime,
    excel: bool = False,
) -> str:
    """One row per day × line × source × hour (`field` empty), then per day one row per
    field (`field` filled: its name, or "not known"; line, source and hour empty). UTF-8 with
    a byte-order mark (so that Excel reads the Vietnamese names right). Figures only: no
    names of people, no citizen data. `excel`: semicolons between cells and decimal commas,
    as Excel expects under Vietnamese regional settings (a comma-separated file opens there
    as one column)."""
    cells, _live = range_cells(session, centre, first, last, now=now)
    finest = _level(cells, service=True, source=True, hour=True)
    lines = {sid: (prefix, name) for sid, prefix, name in _lines(session, centre, set())}
    missing = {c["service_id"] for c in finest} - set(lines)
    if missing:
        lines.update(
            {sid: (prefix, name) for sid, prefix, name in _lines(session, centre, missing)}
        )
    finest.sort(key=lambda c: (c["day"], lines[c["service_id"]][0], c["source"], c["hour"]))
    per_field = [c for c in cells if c["by_field"]]
    names = _field_names(session, {c["field_id"] for c in per_field})
    unknown = _("Chưa rõ lĩnh vực")
    per_field.sort(key=lambda c: (c["day"], c["field_id"] is None, names.get(c["field_id"], "")))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n")
    decimal = "," if excel else "."
    writer.writerow(CSV_COLUMNS)
    rows = [(c, *lines[c["service_id"]], c["source"], c["hour"], None) for c in finest]
    rows += [(c, None, None, None, None, names.get(c["field_id"], unknown)) for c in per_field]
    rows.sort(key=lambda row: (row[0]["day"], row[5] is not None))  # stable: keeps the orders
    for c, prefix, name, source, hour, field_name in rows:
        head = (c["day"].isoformat(), centre.code, prefix, name, source, hour, field_name)
        figures = (c[column] for column in CSV_COLUMNS[7:])
        writer.writerow([_csv_text(v, decimal) for v in (*head, *figures)])
    return "\ufeff" + out.getvalue()
