"""Dispatch plans: cover officer deficits from the mobile pool, then the nearest centres.

A plan is computed from a load report (core.operations.balancing) and named staff: the mobile pool
and the officers on each centre's roll not already assigned elsewhere that day. Accepting
it writes staff assignments and resizes slots (core.booking.slots.apply_dispatch). Nothing here
commits.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.booking.availability import haversine_km
from core.booking.slots import SlotPolicy, apply_dispatch
from core.common.errors import Conflict
from core.common.timeutil import local_day
from core.models import Role, Staff, StaffAssignment
from core.operations.balancing import BalancingPolicy, CentreDay, LoadReport


@dataclass(frozen=True)
class Move:
    """Officers sent to a centre for a day: from the mobile pool (`from_centre_id` None) or
    lent by another centre."""

    day: date
    to_centre_id: int
    to_centre_code: str
    from_centre_id: int | None
    from_centre_code: str | None
    staff_ids: tuple[int, ...]
    distance_km: float | None
    wait_p90_before: float | None
    wait_p90_after: float | None

    @property
    def officers(self) -> int:
        return len(self.staff_ids)


@dataclass(frozen=True)
class Shortfall:
    day: date
    centre_id: int
    centre_code: str
    officers: int


@dataclass(frozen=True)
class DispatchPlan:
    """Moves in a deterministic order; `id` is a digest of them, so a plan recomputed on
    unchanged data has the same id (an accept endpoint can check what it was shown)."""

    id: str
    moves: tuple[Move, ...]
    unmet: tuple[Shortfall, ...]


def dispatch_plan(
    session: Session,
    loads: LoadReport,
    *,
    now: datetime,
    policy: BalancingPolicy | None = None,
) -> DispatchPlan:
    """Cover each centre-day's officer deficit: mobile pool first, then the nearest centres
    (within `max_dispatch_km`) with officers beyond their own need, never below it.

    Largest deficits first; ties by centre code, pool staff and lent officers by id.
    Named staff are required (an assignment needs one): a centre lends at most the
    officers on its roll who are not already assigned elsewhere that day.
    """
    policy = policy or BalancingPolicy()
    today = local_day(now)
    days = sorted({d for _, d in loads.centres if d >= today})
    if not days:
        return DispatchPlan(_digest(()), (), ())
    busy = _assigned_staff(session, days[0], days[-1])
    pool = list(
        session.scalars(
            select(Staff.id)
            .where(Staff.active.is_(True), Staff.in_mobile_pool.is_(True))
            .where(Staff.role == Role.OFFICER)
            .order_by(Staff.id)
        )
    )
    roll: dict[int, list[int]] = defaultdict(list)
    for staff_id, centre_id in session.execute(
        select(Staff.id, Staff.centre_id)
        .where(Staff.active.is_(True), Staff.in_mobile_pool.is_(False))
        .where(Staff.role == Role.OFFICER, Staff.centre_id.is_not(None))
        .order_by(Staff.id)
    ):
        roll[centre_id].append(staff_id)
    moves: list[Move] = []
    unmet: list[Shortfall] = []
    for day in days:
        free_pool = [s for s in pool if (s, day) not in busy]
        lendable = {c: [s for s in ids if (s, day) not in busy] for c, ids in roll.items()}
        _plan_day(loads.centre_days(day), free_pool, lendable, policy, moves, unmet)
    return DispatchPlan(_digest(moves), tuple(moves), tuple(unmet))


def _assigned_staff(session: Session, first: date, last: date) -> set[tuple[int, date]]:
    return {
        (staff_id, day)
        for staff_id, day in session.execute(
            select(StaffAssignment.staff_id, StaffAssignment.day).where(
                StaffAssignment.day.between(first, last)
            )
        )
    }


def _plan_day(
    centre_days: list[CentreDay],
    pool: list[int],
    lendable: dict[int, list[int]],
    policy: BalancingPolicy,
    moves: list[Move],
    unmet: list[Shortfall],
) -> None:
    spare = {c.centre_id: min(c.surplus, len(lendable.get(c.centre_id, []))) for c in centre_days}
    receivers = sorted(
        (c for c in centre_days if c.deficit > 0), key=lambda c: (-c.deficit, c.centre_code)
    )
    for receiver in receivers:
        officers, left = receiver.officers, receiver.deficit
        if pool and left:
            k = min(left, len(pool))
            taken = pool[:k]
            del pool[:k]
            moves.append(_move(receiver, None, taken, officers, None))
            officers += k
            left -= k
        for donor, km in _donors(receiver, centre_days, spare, policy):
            if not left:
                break
            k = min(left, spare[donor.centre_id])
            taken = lendable[donor.centre_id][:k]
            lendable[donor.centre_id] = lendable[donor.centre_id][k:]
            spare[donor.centre_id] -= k
            moves.append(_move(receiver, donor, taken, officers, km))
            officers += k
            left -= k
        if left:
            unmet.append(Shortfall(receiver.day, receiver.centre_id, receiver.centre_code, left))


def _donors(
    receiver: CentreDay,
    centre_days: list[CentreDay],
    spare: dict[int, int],
    policy: BalancingPolicy,
) -> list[tuple[CentreDay, float]]:
    if receiver.lat is None or receiver.lon is None:
        return []
    near = []
    for c in centre_days:
        if c.centre_id == receiver.centre_id or spare.get(c.centre_id, 0) <= 0:
            continue
        if c.lat is None or c.lon is None:
            continue
        km = haversine_km(receiver.lat, receiver.lon, c.lat, c.lon)
        if km <= policy.max_dispatch_km:
            near.append((c, km))
    near.sort(key=lambda pair: (pair[1], pair[0].centre_code))
    return near


def _move(
    receiver: CentreDay,
    donor: CentreDay | None,
    staff_ids: list[int],
    officers_before: int,
    km: float | None,
) -> Move:
    return Move(
        receiver.day,
        receiver.centre_id,
        receiver.centre_code,
        donor.centre_id if donor else None,
        donor.centre_code if donor else None,
        tuple(staff_ids),
        round(km, 2) if km is not None else None,
        receiver.p90_with(officers_before),
        receiver.p90_with(officers_before + len(staff_ids)),
    )


def _digest(moves: Iterable[Move]) -> str:
    text = ";".join(
        f"{m.day}:{m.from_centre_id}>{m.to_centre_id}:{','.join(map(str, m.staff_ids))}"
        for m in moves
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- accepting a plan -----------------------------------------------------------------------


@dataclass
class AcceptReport:
    assignments_created: int = 0
    assignments_kept: int = 0
    slots_created: int = 0
    slots_resized: int = 0


def accept_plan(
    session: Session,
    plan: DispatchPlan,
    *,
    now: datetime,
    slot_policy: SlotPolicy | None = None,
) -> AcceptReport:
    """Write the plan's staff assignments and resize the slots of every centre it touches
    (more at the receiving centre, fewer where an officer was lent); idempotent.

    Raises Conflict `staff_already_assigned` (nothing written) when one of its staff has
    been assigned to another centre that day since the plan was made.
    """
    report = AcceptReport()
    wanted = {(sid, m.day): m for m in plan.moves for sid in m.staff_ids}
    if not wanted:
        return report
    days = sorted({d for _, d in wanted})
    existing = {
        (a.staff_id, a.day): a.centre_id
        for a in session.execute(
            select(StaffAssignment.staff_id, StaffAssignment.day, StaffAssignment.centre_id).where(
                StaffAssignment.staff_id.in_({sid for sid, _ in wanted}),
                StaffAssignment.day.between(days[0], days[-1]),
            )
        )
    }
    for key, move in sorted(wanted.items()):
        if key in existing and existing[key] != move.to_centre_id:
            raise Conflict("staff_already_assigned", staff_id=key[0], day=key[1].isoformat())
    for (staff_id, day), move in sorted(wanted.items()):
        if (staff_id, day) in existing:
            report.assignments_kept += 1
            continue
        session.add(
            StaffAssignment(
                staff_id=staff_id,
                centre_id=move.to_centre_id,
                day=day,
                reason=_reason(move, plan),
                created_at=now,
            )
        )
        report.assignments_created += 1
    session.flush()
    touched: dict[date, set[int]] = defaultdict(set)
    for m in plan.moves:
        touched[m.day].add(m.to_centre_id)
        if m.from_centre_id is not None:
            touched[m.day].add(m.from_centre_id)
    for day, ids in sorted(touched.items()):
        resized = apply_dispatch(session, sorted(ids), day, now=now, policy=slot_policy)
        report.slots_created += resized.created
        report.slots_resized += resized.resized
    return report


def _reason(move: Move, plan: DispatchPlan) -> str:
    origin = f"từ {move.from_centre_code}" if move.from_centre_code else "từ tổ lưu động"
    return f"Điều động {origin} (kế hoạch {plan.id})"
