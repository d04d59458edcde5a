"""Operations API: load per centre and line, daily statistics, dispatch plans.

Managers see their own centre; operators and admins the whole city. Dispatch plans are
the city's, so only operators and admins see and accept them. Officers and devices are
refused. Answers are never cached: they change with every booking and ticket.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from flask import Response, current_app, g
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.common.timeutil import iso, local_day
from core.models import (
    Centre,
    DailyStatistic,
    DispatchDecision,
    Field,
    Role,
    Service,
    Staff,
    StaffAssignment,
)
from core.operations import balancing, dispatch, forecast, statistics
from dashboard import schemas as s
from web.api import ApiBlueprint, Problem, json_response, secured
from web.auth import require
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.settings import slot_policy

blp = ApiBlueprint(
    "dashboard_api",
    __name__,
    url_prefix="/api/v1",
    description="Operations: load, statistics and dispatch plans",
)
CITY_ROLES = (Role.OPERATOR, Role.ADMIN)
managers = require(roles=(Role.MANAGER, *CITY_ROLES))
operators = require(roles=CITY_ROLES)
_PRIVATE = {"Cache-Control": "private, no-store"}


@blp.after_request
def _no_store(response: Response) -> Response:
    """Every answer, refusals included, is private and never stored."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


_PLAN_ID = re.compile(r"[0-9a-f]{1,64}")
ACCEPTED, DECLINED = "accepted", "declined"
SOURCES = ("appointment", "walk_in", "remote")


def _documented(
    forbidden: str, *extra: tuple[int, str]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the auth refusals, bad input and `extra` problem answers, and the bearer."""
    errors = (
        (401, "No or unknown token, or not signed in"),
        (403, forbidden),
        (422, "Malformed date, or days out of 1–14"),
        *extra,
    )

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for status, description in errors:
            func = blp.alt_response(status, schema=Problem, description=description)(func)
        return blp.doc(**secured())(func)

    return decorate


def _scope() -> list[int] | None:
    """Centre ids the caller sees: None for the whole city."""
    staff = g.actor.staff
    if staff is None:
        raise Forbidden("forbidden")
    if staff.role in CITY_ROLES:
        return None
    if staff.centre_id is None:
        raise Forbidden("forbidden")
    g.actor.require_centre(staff.centre_id)
    return [staff.centre_id]


def _day(args: dict[str, Any], now: datetime) -> date:
    return args.get("date") or local_day(now)


def _ratio(value: float) -> float | None:
    return None if math.isinf(value) else value


def _policy() -> balancing.BalancingPolicy:
    return balancing.BalancingPolicy.from_config(current_app.config)


def _answer(body: Any, status: int = 200) -> Response:
    return json_response(body, status, _PRIVATE)


def _centres(session: Session, ids: list[int] | None) -> list[Centre]:
    q = select(Centre).where(Centre.active.is_(True)).order_by(Centre.code)
    if ids is not None:
        q = q.where(Centre.id.in_(ids))
    return list(session.scalars(q))


# --- Load ---------------------------------------------------------------------------------------


def _names(session: Session, model: type[Centre] | type[Service], ids: set[int]) -> dict:
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


def load_body(
    session: Session, ids: list[int] | None, day: date, days: int, *, now: datetime
) -> dict[str, Any]:
    policy = _policy()
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
                "utilisation": _ratio(line.utilisation),
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
            "utilisation": _ratio(c.utilisation),
            "overloaded": c.overloaded,
            "wait_p90": c.wait_p90,
            "services": sorted(
                lines.get((c.centre_id, c.day), []), key=lambda line: line["service"]
            ),
        }
        for c in sorted(report.centres.values(), key=lambda c: (c.centre_code, c.day))
    ]
    return {"date": day.isoformat(), "days": days, "centres": centres}


@blp.route("/load")
@managers
@blp.arguments(s.LoadQuery, location="query")
@blp.response(200, s.LoadAnswer)
@_documented("Not a manager, operator or admin (officers and devices are refused)")
def get_load(args: dict[str, Any]):
    """Capacity, bookings, forecast walk-ins and overload per centre, line and open day."""
    now = clock()
    ids = _scope()
    body = load_body(db.session, ids, _day(args, now), args["days"], now=now)
    return _answer(body)


# --- Statistics ---------------------------------------------------------------------------------

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
    for centre in _centres(session, ids):
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


@blp.route("/stats/centres")
@managers
@blp.arguments(s.DayQuery, location="query")
@blp.response(200, s.StatsAnswer)
@_documented("Not a manager, operator or admin (officers and devices are refused)")
def get_centre_stats(args: dict[str, Any]):
    """Tickets issued, served and no-shows, waits, service time and estimate accuracy."""
    now = clock()
    ids = _scope()
    return _answer(stats_body(db.session, ids, _day(args, now), now=now))


# --- Dispatch plans -----------------------------------------------------------------------------


def compute_plan(session: Session, day: date, *, now: datetime) -> dispatch.DispatchPlan:
    policy = _policy()
    history = forecast.cached_history(session, now=now, policy=policy)
    loads = balancing.load(session, None, day, 1, now=now, policy=policy, history=history)
    return dispatch.dispatch_plan(session, loads, now=now, policy=policy)


def _decision(session: Session, plan_id: str, day: date) -> DispatchDecision | None:
    return session.scalars(
        select(DispatchDecision).where(
            DispatchDecision.plan_id == plan_id, DispatchDecision.day == day
        )
    ).one_or_none()


def _decision_body(session: Session, decision: DispatchDecision) -> dict[str, Any]:
    staff = session.get(Staff, decision.staff_id) if decision.staff_id else None
    return {
        "status": decision.status,
        "by": staff.full_name if staff else None,
        "at": iso(decision.decided_at),
    }


def _decide(session: Session, plan_id: str, day: date, status: str, *, now: datetime) -> None:
    """Record (or change) the caller's decision on plan `plan_id` for `day`."""
    staff_id = g.actor.staff.id
    decision = _decision(session, plan_id, day)
    if decision is None:
        decision = DispatchDecision(plan_id=plan_id, day=day)
        session.add(decision)
    decision.status, decision.staff_id, decision.decided_at = status, staff_id, now
    session.flush()


def plan_body(
    plan: dispatch.DispatchPlan, day: date, decision: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": plan.id,
        "date": day.isoformat(),
        "decision": decision,
        "moves": [
            {
                "date": m.day.isoformat(),
                "from_centre": m.from_centre_code,
                "to_centre": m.to_centre_code,
                "officers": m.officers,
                "staff_ids": list(m.staff_ids),
                "distance_km": m.distance_km,
                "wait_p90_before": m.wait_p90_before,
                "wait_p90_after": m.wait_p90_after,
            }
            for m in plan.moves
        ],
        "shortfalls": [
            {"date": u.day.isoformat(), "centre": u.centre_code, "officers": u.officers}
            for u in plan.unmet
        ],
    }


@blp.route("/dispatch-plan")
@operators
@blp.arguments(s.DayQuery, location="query")
@blp.response(200, s.PlanAnswer)
@_documented("Not an operator or admin (managers, officers and devices are refused)")
def get_dispatch_plan(args: dict[str, Any]):
    """The moves that cover the day's officer deficits: mobile pool first, then neighbours."""
    now = clock()
    day = _day(args, now)
    plan = compute_plan(db.session, day, now=now)
    decisions = db.session.scalars(
        select(DispatchDecision)
        .where(DispatchDecision.day == day)
        .order_by(DispatchDecision.decided_at.desc(), DispatchDecision.id.desc())
    ).all()
    this = next((d for d in decisions if d.plan_id == plan.id), None)
    body = plan_body(plan, day, _decision_body(db.session, this) if this else None)
    # Accepting a plan changes the day (officers moved), so the next plan is a new one: the
    # decisions on the day's earlier plans say what was done already.
    body["earlier"] = [
        {"plan": d.plan_id, **_decision_body(db.session, d)}
        for d in decisions
        if d.plan_id != plan.id
    ]
    return _answer(body)


def _accepted_before(session: Session, plan_id: str, day: date) -> int:
    """Assignments already written for plan `plan_id` on `day` (core.operations.dispatch names the plan
    in each assignment's reason)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(StaffAssignment)
            .where(
                StaffAssignment.day == day,
                StaffAssignment.reason.like(f"%(kế hoạch {plan_id})"),
            )
        )
        or 0
    )


@blp.route("/dispatch-plan/<plan_id>/accept", methods=["POST"])
@operators
@blp.arguments(s.DayQuery, location="query")
@blp.response(200, s.AcceptAnswer, description="Assignments written and slots opened")
@_documented(
    "Not an operator or admin (managers, officers and devices are refused)",
    (409, "plan_changed: the plan is no longer the one shown; staff_already_assigned"),
)
def accept_dispatch_plan(args: dict[str, Any], plan_id: str):
    """Accept the plan shown: assign its officers and resize the slots; idempotent.

    The plan is recomputed: if it is no longer the one with this id (bookings, officers or
    assignments changed since), nothing is written and the answer is 409 `plan_changed`.
    Accepting the same plan again answers 200 and writes nothing.
    """
    now = clock()
    day = _day(args, now)
    body: dict[str, Any] = {"plan": plan_id, "date": day.isoformat()}
    try:
        with transaction() as session:
            plan = compute_plan(session, day, now=now)
            if plan.id != plan_id:
                kept = _accepted_before(session, plan_id, day) if _PLAN_ID.fullmatch(plan_id) else 0
                if not kept:
                    raise Conflict("plan_changed", plan=plan.id)
                body.update(
                    already_accepted=True,
                    assignments_created=0,
                    assignments_kept=kept,
                    slots_created=0,
                    slots_resized=0,
                )
            else:
                report = dispatch.accept_plan(session, plan, now=now, slot_policy=slot_policy())
                _decide(session, plan.id, day, ACCEPTED, now=now)
                body.update(
                    already_accepted=bool(plan.moves) and report.assignments_created == 0,
                    assignments_created=report.assignments_created,
                    assignments_kept=report.assignments_kept,
                    slots_created=report.slots_created,
                    slots_resized=report.slots_resized,
                )
    except IntegrityError:
        # Another accept wrote the same assignments at the same moment (PostgreSQL).
        raise Conflict("plan_changed") from None
    return _answer(body)


@blp.route("/dispatch-plan/<plan_id>/decline", methods=["POST"])
@operators
@blp.arguments(s.DayQuery, location="query")
@blp.response(200, s.DeclineAnswer, description="The decline is recorded")
@_documented(
    "Not an operator or admin (managers, officers and devices are refused)",
    (409, "plan_changed: the plan is no longer the one shown; plan_already_accepted"),
)
def decline_dispatch_plan(args: dict[str, Any], plan_id: str):
    """Decline the plan shown: nothing is assigned, and the decision is recorded; idempotent.

    The plan is recomputed: a plan that changed since it was shown is a new plan, and the
    answer is 409 `plan_changed` (unless this one was declined already). A plan that was
    accepted cannot be declined (409 `plan_already_accepted`).
    """
    now = clock()
    day = _day(args, now)
    with transaction() as session:
        known = _decision(session, plan_id, day) if _PLAN_ID.fullmatch(plan_id) else None
        if known is not None and known.status == ACCEPTED:
            raise Conflict("plan_already_accepted")
        if known is None:
            plan = compute_plan(session, day, now=now)
            if plan.id != plan_id:
                raise Conflict("plan_changed", plan=plan.id)
            try:
                _decide(session, plan_id, day, DECLINED, now=now)
            except IntegrityError:  # a concurrent decision on the same plan (PostgreSQL)
                raise Conflict("plan_changed") from None
    return _answer({"plan": plan_id, "date": day.isoformat(), "declined": True})


# --- Statistics of one centre over a range of days ----------------------------------------------
#
# Over one day every figure is the stored (or live-folded) cell itself. Over several days the
# counts are summed and each average or percentile is the mean of the days' values weighted by
# what it was computed over (waits, tickets served, estimates): exact for the averages, a close
# approximation for the percentiles, which cannot be merged without the tickets themselves.

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


def centre_in_scope(session: Session, code: str) -> Centre:
    """The active centre with this code, if the caller may see it (NotFound, Forbidden)."""
    ids = _scope()
    centre = None
    if len(code) <= 16:
        centre = session.scalars(
            select(Centre).where(Centre.code == code, Centre.active.is_(True))
        ).one_or_none()
    if centre is None:
        raise NotFound("centre_not_found")
    if ids is not None and centre.id not in ids:
        raise Forbidden("forbidden")
    return centre


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


@blp.route("/stats/centres/<code>")
@managers
@blp.arguments(s.RangeQuery, location="query")
@blp.response(200, s.CentreRangeAnswer)
@_documented(
    "Not a manager, operator or admin, or a manager of another centre",
    (404, "centre_not_found: no active centre has this code"),
)
def get_one_centre_stats(args: dict[str, Any], code: str):
    """One centre's figures over up to 31 days: in all, per day, source, line and hour.

    `from` and `to` default to the week ending today. Over several days percentiles are the
    days' values weighted by their waits (exact for one day); days not aggregated yet are
    folded live from the tickets (`days[].live`).
    """
    now = clock()
    centre = centre_in_scope(db.session, code)
    first, last = stats_range(args, now)
    return _answer(centre_stats_body(db.session, centre, first, last, now=now))


@blp.route("/stats/centres/<code>.csv")
@managers
@blp.arguments(s.CsvRangeQuery, location="query")
@blp.response(
    200,
    {"type": "string"},
    content_type="text/csv",
    description="One row per day × line × source × hour, then per day one row per field "
    "(`field` column; line, source and hour empty), UTF-8 with BOM, as an attachment; "
    "`excel=true` for semicolons and decimal commas.",
)
@_documented(
    "Not a manager, operator or admin, or a manager of another centre",
    (404, "centre_not_found: no active centre has this code"),
)
def get_one_centre_stats_csv(args: dict[str, Any], code: str):
    """The same figures as a CSV file for spreadsheets, at the finest grouping."""
    now = clock()
    centre = centre_in_scope(db.session, code)
    first, last = stats_range(args, now)
    excel = bool(args.get("excel"))
    body = centre_stats_csv(db.session, centre, first, last, now=now, excel=excel)
    suffix = "-excel" if excel else ""
    name = f"xephang-{centre.code}-{first.isoformat()}-{last.isoformat()}{suffix}.csv"
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Type": "text/csv; charset=utf-8",
            **_PRIVATE,
        },
    )
