"""Operations API: load per centre and line, daily statistics, dispatch plans.

Managers see their own centre; operators and admins the whole city. Dispatch plans are
the city's, so only operators and admins see and accept them. Officers and devices are
refused. Answers are never cached: they change with every booking and ticket.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Response, g
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.common.errors import Conflict, Forbidden, NotFound
from core.common.timeutil import local_day
from core.models import (
    Centre,
    DispatchDecision,
    Role,
)
from core.operations import dispatch
from dashboard import centre_stats, city, plans
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


def _answer(body: Any, status: int = 200) -> Response:
    return json_response(body, status, _PRIVATE)


# --- Load ---------------------------------------------------------------------------------------


@blp.route("/load")
@managers
@blp.arguments(s.LoadQuery, location="query")
@blp.response(200, s.LoadAnswer)
@_documented("Not a manager, operator or admin (officers and devices are refused)")
def get_load(args: dict[str, Any]):
    """Capacity, bookings, forecast walk-ins and overload per centre, line and open day."""
    now = clock()
    ids = _scope()
    body = city.load_body(db.session, ids, _day(args, now), args["days"], now=now)
    return _answer(body)


# --- Statistics ---------------------------------------------------------------------------------


@blp.route("/stats/centres")
@managers
@blp.arguments(s.DayQuery, location="query")
@blp.response(200, s.StatsAnswer)
@_documented("Not a manager, operator or admin (officers and devices are refused)")
def get_centre_stats(args: dict[str, Any]):
    """Tickets issued, served and no-shows, waits, service time and estimate accuracy."""
    now = clock()
    ids = _scope()
    return _answer(city.stats_body(db.session, ids, _day(args, now), now=now))


# --- Dispatch plans -----------------------------------------------------------------------------


@blp.route("/dispatch-plan")
@operators
@blp.arguments(s.DayQuery, location="query")
@blp.response(200, s.PlanAnswer)
@_documented("Not an operator or admin (managers, officers and devices are refused)")
def get_dispatch_plan(args: dict[str, Any]):
    """The moves that cover the day's officer deficits: mobile pool first, then neighbours."""
    now = clock()
    day = _day(args, now)
    plan = plans.compute_plan(db.session, day, now=now)
    decisions = db.session.scalars(
        select(DispatchDecision)
        .where(DispatchDecision.day == day)
        .order_by(DispatchDecision.decided_at.desc(), DispatchDecision.id.desc())
    ).all()
    this = next((d for d in decisions if d.plan_id == plan.id), None)
    body = plans.plan_body(plan, day, plans.decision_body(db.session, this) if this else None)
    # Accepting a plan changes the day (officers moved), so the next plan is a new one: the
    # decisions on the day's earlier plans say what was done already.
    body["earlier"] = [
        {"plan": d.plan_id, **plans.decision_body(db.session, d)}
        for d in decisions
        if d.plan_id != plan.id
    ]
    return _answer(body)


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
            plan = plans.compute_plan(session, day, now=now)
            if plan.id != plan_id:
                kept = (
                    plans.accepted_before(session, plan_id, day)
                    if _PLAN_ID.fullmatch(plan_id)
                    else 0
                )
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
                plans.decide(session, plan.id, day, ACCEPTED, now=now)
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
        known = plans.find_decision(session, plan_id, day) if _PLAN_ID.fullmatch(plan_id) else None
        if known is not None and known.status == ACCEPTED:
            raise Conflict("plan_already_accepted")
        if known is None:
            plan = plans.compute_plan(session, day, now=now)
            if plan.id != plan_id:
                raise Conflict("plan_changed", plan=plan.id)
            try:
                plans.decide(session, plan_id, day, DECLINED, now=now)
            except IntegrityError:  # a concurrent decision on the same plan (PostgreSQL)
                raise Conflict("plan_changed") from None
    return _answer({"plan": plan_id, "date": day.isoformat(), "declined": True})


# --- Statistics of one centre over a range of days ----------------------------------------------
#
# Over one day every figure is the stored (or live-folded) cell itself. Over several days the
# counts are summed and each average or percentile is the mean of the days' values weighted by
# what it was computed over (waits, tickets served, estimates): exact for the averages, a close
# approximation for the percentiles, which cannot be merged without the tickets themselves.


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
    first, last = centre_stats.stats_range(args, now)
    return _answer(centre_stats.centre_stats_body(db.session, centre, first, last, now=now))


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
    first, last = centre_stats.stats_range(args, now)
    excel = bool(args.get("excel"))
    body = centre_stats.centre_stats_csv(db.session, centre, first, last, now=now, excel=excel)
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
