"""Slot generation: counters × opening hours × intake minutes, less the walk-in share."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, case, delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from core.common.timeutil import local_day, local_to_utc
from core.models import Appointment, Centre, Closure, Counter, Slot, Staff, StaffAssignment
from core.places.calendar import is_open_day, opening_periods


@dataclass(frozen=True)
class SlotPolicy:
    window_minutes: int = 30
    walk_in_share: float = 0.4


@dataclass
class GenerationReport:
    created: int = 0
    resized: int = 0
    removed: int = 0
    kept_booked: int = 0
    days_skipped: int = 0


@dataclass(frozen=True)
class PlannedSlot:
    service_id: int
    starts_at: datetime
    ends_at: datetime
    day: date
    capacity: int


def counter_weights(counters: list[Counter]) -> dict[int, float]:
    """Counter-equivalents per service: an open-able counter's time split over its services."""
    weights: dict[int, float] = defaultdict(float)
    for counter in counters:
        if not counter.active or not counter.service_links:
            continue
        share = 1.0 / len(counter.service_links)
        for link in counter.service_links:
            weights[link.service_id] += share
    return weights


def plan_centre_day(
    centre: Centre, day: date, weights: dict[int, float], policy: SlotPolicy
) -> list[PlannedSlot]:
    """The bookable slots of one centre on one open day (pure: no database)."""
    planned = []
    window = timedelta(minutes=policy.window_minutes)
    for service in centre.services:
        if not service.active or weights.get(service.id, 0) <= 0:
            continue
        share = service.walk_in_share if service.walk_in_share is not None else policy.walk_in_share
        per_window = weights[service.id] * policy.window_minutes / max(service.intake_minutes, 1)
        capacity = math.floor(per_window * (1.0 - share) + 1e-9)
        if capacity <= 0:
            continue
        for start, end in opening_periods(centre, day):
            at = local_to_utc(day, start)
            stop = local_to_utc(day, end)
            while at + window <= stop:
                planned.append(PlannedSlot(service.id, at, at + window, day, capacity))
                at += window
    return planned


def _new_slot(centre_id: int, p: PlannedSlot) -> dict[str, object]:
    """The row of a planned slot not in the database yet."""
    return {
        "centre_id": centre_id,
        "service_id": p.service_id,
        "day": p.day,
        "starts_at": p.starts_at,
        "ends_at": p.ends_at,
        "capacity": p.capacity,
        "booked": 0,
    }


def generate_slots(
    session: Session,
    *,
    now: datetime,
    days: int = 14,
    policy: SlotPolicy | None = None,
    centre_ids: list[int] | None = None,
) -> GenerationReport:
    """Create or resize slots from today for `days` days; idempotent.

    Never duplicates a slot, never removes or shrinks one below its bookings; unbooked
    future slots that the plan no longer has (closure added, counter removed) are removed.
    """
    policy = policy or SlotPolicy()
    report = GenerationReport()
    first = local_day(now)
    days_range = [first + timedelta(days=i) for i in range(days)]
    centres_q = (
        select(Centre)
        .where(Centre.active.is_(True))
        .options(
            selectinload(Centre.services),
            selectinload(Centre.counters).selectinload(Counter.service_links),
        )
    )
    if centre_ids is not None:
        centres_q = centres_q.where(Centre.id.in_(centre_ids))
    centres = session.scalars(centres_q).all()
    closures = _closures(session, first, days_range[-1])
    # Officers dispatched in or lent away by an accepted plan keep their extra (or fewer) seats.
    extra = dispatched_officers(session, first, days_range[-1], centre_ids)
    for centre in centres:
        weights = counter_weights(centre.counters)
        planned: list[PlannedSlot] = []
        for day in days_range:
            closed = closures.get(centre.id, set()) | closures.get(None, set())
            if not is_open_day(centre, day, closed):
                report.days_skipped += 1
                continue
            day_plan = plan_centre_day_dispatched(
                centre, day, weights, policy, extra.get((centre.id, day), 0)
            )
            planned.extend(p for p in day_plan if p.starts_at > now)
        _apply(session, centre, planned, now, days_range, report)
    return report


def _closures(session: Session, first: date, last: date) -> dict[int | None, set[date]]:
    rows = session.execute(
        select(Closure.centre_id, Closure.day).where(Closure.day.between(first, last))
    ).all()
    out: dict[int | None, set[date]] = defaultdict(set)
    for centre_id, day in rows:
        out[centre_id].add(day)
    return out


def _apply(
    session: Session,
    centre: Centre,
    planned: list[PlannedSlot],
    now: datetime,
    days_range: list[date],
    report: GenerationReport,
) -> None:
    existing = {
        (row.service_id, row.starts_at): row
        for row in session.execute(
            select(Slot.id, Slot.service_id, Slot.starts_at, Slot.capacity, Slot.booked).where(
                Slot.centre_id == centre.id,
                Slot.day.between(days_range[0], days_range[-1]),
                Slot.starts_at > now,
            )
        )
    }
    to_insert = []
    for p in planned:
        row = existing.pop((p.service_id, p.starts_at), None)
        if row is None:
            to_insert.append(_new_slot(centre.id, p))
        elif row.capacity != p.capacity:
            new_capacity = max(p.capacity, row.booked)
            if new_capacity != row.capacity:
                session.execute(update(Slot).where(Slot.id == row.id).values(capacity=new_capacity))
                report.resized += 1
    if to_insert:
        session.execute(insert(Slot), to_insert)
        report.created += len(to_insert)
    stale = [row.id for row in existing.values() if row.booked == 0]
    report.kept_booked += sum(1 for row in existing.values() if row.booked > 0)
    if stale:
        # A slot once booked (even if cancelled since) stays: appointments point at it.
        referenced = select(Appointment.id).where(Appointment.slot_id == Slot.id).exists()
        result = session.execute(
            delete(Slot).where(Slot.id.in_(stale), Slot.booked == 0, ~referenced)
        )
        report.removed += result.rowcount


# --- Dispatched officers: extra (or fewer) counter-equivalents on one day -------------------


def dispatched_officers(
    session: Session, first: date, last: date, centre_ids: list[int] | None = None
) -> dict[tuple[int, date], int]:
    """Net officers moved in by staff assignments, per (centre id, local day).

    An assignment away from a staff member's home centre counts +1 where they go and −1
    at home; the mobile pool has no home, and an assignment at home changes nothing.
    """
    rows = session.execute(
        select(StaffAssignment.centre_id, Staff.centre_id, StaffAssignment.day)
        .join(Staff, Staff.id == StaffAssignment.staff_id)
        .where(StaffAssignment.day.between(first, last))
    ).all()
    net: dict[tuple[int, date], int] = defaultdict(int)
    for to_centre, home, day in rows:
        if to_centre == home:
            continue
        net[(to_centre, day)] += 1
        if home is not None:
            net[(home, day)] -= 1
    wanted = set(centre_ids) if centre_ids is not None else None
    return {k: v for k, v in net.items() if v and (wanted is None or k[0] in wanted)}


def plan_centre_day_dispatched(
    centre: Centre, day: date, weights: dict[int, float], policy: SlotPolicy, extra: int = 0
) -> list[PlannedSlot]:
    """`plan_centre_day` with `extra` officers (negative: lent away) shared by the lines.

    Each extra officer is a counter-equivalent split over the centre's services in the
    proportion of their counters. With no extra this is exactly `plan_centre_day`. With
    some, a line's capacity (after the walk-in share) is spread over the day's windows by
    running totals, so a fraction of a citizen per window still adds up to whole citizens
    over the day instead of being floored away window by window.
    """
    total = sum(w for w in weights.values() if w > 0)
    if extra == 0 or total <= 0:
        return plan_centre_day(centre, day, weights, policy)
    planned = []
    window = timedelta(minutes=policy.window_minutes)
    for service in centre.services:
        weight = weights.get(service.id, 0)
        if not service.active or weight <= 0:
            continue
        share = service.walk_in_share if service.walk_in_share is not None else policy.walk_in_share
        officers = max(weight + extra * weight / total, 0.0)
        per_window = officers * policy.window_minutes / max(service.intake_minutes, 1)
        per_window *= 1.0 - share
        index = 0
        for start, end in opening_periods(centre, day):
            at = local_to_utc(day, start)
            stop = local_to_utc(day, end)
            while at + window <= stop:
                index += 1
                capacity = math.floor(index * per_window + 1e-9) - math.floor(
                    (index - 1) * per_window + 1e-9
                )
                if capacity > 0:
                    planned.append(PlannedSlot(service.id, at, at + window, day, capacity))
                at += window
    return planned


def apply_dispatch(
    session: Session,
    centre_ids: list[int],
    day: date,
    *,
    now: datetime,
    policy: SlotPolicy | None = None,
) -> GenerationReport:
    """Resize the future slots of `centre_ids` on `day` to their counters plus dispatched
    officers; idempotent.

    Creates missing slots, raises or lowers capacities, never below what is booked, and
    removes nothing (a window the plan drops is closed at its bookings). Closed days are
    left alone.
    """
    policy = policy or SlotPolicy()
    report = GenerationReport()
    extra = dispatched_officers(session, day, day, centre_ids)
    centres = session.scalars(
        select(Centre)
        .where(Centre.id.in_(centre_ids), Centre.active.is_(True))
        .order_by(Centre.id)
        .options(
            selectinload(Centre.services),
            selectinload(Centre.counters).selectinload(Counter.service_links),
        )
    ).all()
    closures = _closures(session, day, day)
    for centre in centres:
        closed = closures.get(centre.id, set()) | closures.get(None, set())
        if not is_open_day(centre, day, closed):
            report.days_skipped += 1
            continue
        weights = counter_weights(centre.counters)
        planned = [
            p
            for p in plan_centre_day_dispatched(
                centre, day, weights, policy, extra.get((centre.id, day), 0)
            )
            if p.starts_at > now
        ]
        _apply_resize(session, centre, day, planned, now, report)
    return report


def _apply_resize(
    session: Session,
    centre: Centre,
    day: date,
    planned: list[PlannedSlot],
    now: datetime,
    report: GenerationReport,
) -> None:
    existing = {
        (row.service_id, row.starts_at): row
        for row in session.execute(
            select(Slot.id, Slot.service_id, Slot.starts_at, Slot.capacity, Slot.booked).where(
                Slot.centre_id == centre.id, Slot.day == day, Slot.starts_at > now
            )
        )
    }
    to_insert = []
    targets: dict[int, int] = {}
    for p in planned:
        row = existing.pop((p.service_id, p.starts_at), None)
        if row is None:
            to_insert.append(_new_slot(centre.id, p))
        elif max(p.capacity, row.booked) != row.capacity:
            targets[row.id] = max(p.capacity, row.booked)
    for row in existing.values():
        if row.capacity != row.booked:
            targets[row.id] = row.booked
    if targets:
        table = Slot.__table__
        target = bindparam("target")
        # A booking may land between the read and the write: never go below it.
        session.execute(
            update(table)
            .where(table.c.id == bindparam("slot_id"))
            .values(capacity=case((table.c.booked > target, table.c.booked), else_=target)),
            [{"slot_id": k, "target": v} for k, v in targets.items()],
        )
    report.resized += len(targets)
    if to_insert:
        session.execute(insert(Slot), to_insert)
        report.created += len(to_insert)
