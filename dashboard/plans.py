"""Operations API: load per centre and line, daily statistics, dispatch plans.

Managers see their own centre; operators and admins the whole city. Dispatch plans are
the city's, so only operators and admins see and accept them. Officers and devices are
refused. Answers are never cached: they change with every booking and ticket.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import g
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.common.timeutil import iso
from core.models import (
    DispatchDecision,
    Staff,
    StaffAssignment,
)
from core.operations import balancing, dispatch, forecast
from dashboard.figures import balancing_policy


def compute_plan(session: Session, day: date, *, now: datetime) -> dispatch.DispatchPlan:
    policy = balancing_policy()
    history = forecast.cached_history(session, now=now, policy=policy)
    loads = balancing.load(session, None, day, 1, now=now, policy=policy, history=history)
    return dispatch.dispatch_plan(session, loads, now=now, policy=policy)


def find_decision(session: Session, plan_id: str, day: date) -> DispatchDecision | None:
    return session.scalars(
        select(DispatchDecision).where(
            DispatchDecision.plan_id == plan_id, DispatchDecision.day == day
        )
    ).one_or_none()


def decision_body(session: Session, decision: DispatchDecision) -> dict[str, Any]:
    staff = session.get(Staff, decision.staff_id) if decision.staff_id else None
    return {
        "status": decision.status,
        "by": staff.full_name if staff else None,
        "at": iso(decision.decided_at),
    }


def decide(session: Session, plan_id: str, day: date, status: str, *, now: datetime) -> None:
    """Record (or change) the caller's decision on plan `plan_id` for `day`."""
    staff_id = g.actor.staff.id
    decision = find_decision(session, plan_id, day)
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


def accepted_before(session: Session, plan_id: str, day: date) -> int:
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
