"""The evening before the day: officers for the counters, bookings made ahead, and the
dispatch plan accepted."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.booking import appointments as booking
from core.booking.slots import SlotPolicy, counter_weights
from core.common.db import transaction
from core.common.errors import Conflict
from core.models import (
    Centre,
    Counter,
    CounterService,
    Role,
    Slot,
    Staff,
)
from core.operations.balancing import BalancingPolicy, CentreDay, load
from core.operations.dispatch import AcceptReport, DispatchPlan, accept_plan, dispatch_plan
from core.operations.simulation.demand import Citizen, Demand, Seat

# Scratch accounts cannot log in: no password hash has this form.
NO_LOGIN = "!simulated"


# --- staff and bookings -----------------------------------------------------------------------


def staff_counters(
    session: Session, *, now: datetime, centre_ids: Iterable[int] | None = None, pool: int = 0
) -> int:
    """An officer of its centre for every counter that serves a line: the centre's own
    officers first, scratch ones (who cannot log in) for the rest; plus `pool` officers in
    the mobile pool. Returns the officers created. Commits."""
    with transaction(session):
        q = select(Centre).where(Centre.active.is_(True)).order_by(Centre.code)
        if centre_ids is not None:
            q = q.where(Centre.id.in_(list(centre_ids)))
        centres = list(
            session.scalars(
                q.options(selectinload(Centre.counters).selectinload(Counter.service_links))
            )
        )
        have: dict[int, int] = defaultdict(int)
        for centre_id, n in session.execute(
            select(Staff.centre_id, func.count())
            .where(
                Staff.role == Role.OFFICER, Staff.active.is_(True), Staff.in_mobile_pool.is_(False)
            )
            .group_by(Staff.centre_id)
        ):
            have[centre_id] = n
        created = []
        for centre in centres:
            staffed = sum(1 for c in centre.counters if c.active and c.service_links)
            for n in range(have[centre.id] + 1, staffed + 1):
                created.append(_scratch_officer(f"sim.{centre.code}.{n}", centre.id, now))
        for n in range(1, pool + 1):
            officer = _scratch_officer(f"sim.pool.{n}", None, now)
            officer.in_mobile_pool = True
            created.append(officer)
        session.add_all(created)
    return len(created)


def _scratch_officer(username: str, centre_id: int | None, now: datetime) -> Staff:
    return Staff(
        username=username,
        full_name=f"Cán bộ mô phỏng {username.rsplit('.', 1)[-1]}",
        password_hash=NO_LOGIN,
        role=Role.OFFICER,
        centre_id=centre_id,
        created_at=now,
    )


@dataclass
class BookingReport:
    booked: int = 0
    # Wanted to book, found the day's line full: they come as walk-ins at the time they wanted.
    day_full: int = 0


def book_ahead(
    session: Session,
    demand: Demand,
    *,
    now: datetime,
    rules: booking.BookingRules,
    secret: str,
    key: bytes,
) -> BookingReport:
    """Every booker books the slot of their line nearest the time they want that still has a
    seat, through `core.booking.appointments.book`, one transaction each (as the booking API does).
    Fills `demand.seats`."""
    report = BookingReport()
    free: dict[int, int] = {}
    by_line: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for sid, service_id, starts, ends, capacity, booked in session.execute(
        select(Slot.id, Slot.service_id, Slot.starts_at, Slot.ends_at, Slot.capacity, Slot.booked)
        .where(Slot.day == demand.day, Slot.starts_at > now)
        .order_by(Slot.starts_at, Slot.id)
    ):
        free[sid] = capacity - booked
        by_line[service_id].append((starts + (ends - starts) / 2, sid))
    session.rollback()  # end the read: each booking is its own write transaction
    for citizen in demand.citizens:
        if not citizen.books:
            continue
        nearest = sorted(
            by_line[citizen.service_id], key=lambda s: (abs(s[0] - citizen.arrives), s[0])
        )
        seat = _book_one(
            session,
            citizen,
            [sid for _, sid in nearest],
            free,
            now=now,
            rules=rules,
            secret=secret,
            key=key,
        )
        if seat is None:
            report.day_full += 1
        else:
            demand.seats[citizen.number] = seat
            report.booked += 1
    return report


def _book_one(
    session: Session,
    citizen: Citizen,
    slot_ids: list[int],
    free: dict[int, int],
    *,
    now: datetime,
    rules: booking.BookingRules,
    secret: str,
    key: bytes,
) -> Seat | None:
    """Book the first of `slot_ids` with a seat left; None when none has."""
    phone = f"09{citizen.number % 10**8:08d}"
    applicant = booking.validate_applicant(
        full_name="Nguyễn Văn An",
        phone=phone,
        # A distinct valid CCCD per citizen: HCMC, born 1985–1994.
        citizen_id=f"0790{85 + citizen.number // 10**6 % 10:02d}{citizen.number % 10**6:06d}",
        email=None,
        consent=True,
        now=now,
        key=key,
    )
    for slot_id in slot_ids:
        if free[slot_id] <= 0:
            continue
        try:
            with transaction(session):
                booked = booking.book(
                    session,
                    slot_id=slot_id,
                    procedure_code=citizen.procedure_code,
                    applicant=applicant,
                    now=now,
                    rules=rules,
                    secret=secret,
                )
        except Conflict as exc:
            if exc.code != "slot_full":
                raise
            free[slot_id] = 0
            continue
        free[slot_id] -= 1
        assert booked.slot is not None
        return Seat(booked.code, phone[-4:], booked.slot.starts_at)
    return None


# --- the dispatch plan ------------------------------------------------------------------------


@dataclass
class PlanOutcome:
    plan: DispatchPlan
    loads: dict[int, CentreDay]  # centre id → the day's load as the plan saw it
    accepted: AcceptReport
    desks: dict[int, int]  # centre id → desks set up for officers sent there

    @property
    def touched(self) -> set[int]:
        """Centres whose day the plan changes: those receiving and those lending officers."""
        out = set()
        for move in self.plan.moves:
            out.add(move.to_centre_id)
            if move.from_centre_id is not None:
                out.add(move.from_centre_id)
        return out


def plan_and_accept(
    session: Session,
    demand: Demand,
    *,
    now: datetime,
    policy: BalancingPolicy,
    slot_policy: SlotPolicy,
    learnt: bool = True,
) -> PlanOutcome:
    """The day's dispatch plan (core.operations.dispatch on core.operations.balancing's load), accepted as an
    operator accepts it, and a desk at the receiving centre for every officer sent there.

    `learnt`: the forecast sees the walk-in history such days leave (`Demand.history`);
    otherwise only the bookings and the configured flat volume. Commits.
    """
    history = demand.history(policy, now) if learnt else None
    centre_ids = sorted(demand.factors)
    report = load(session, centre_ids, demand.day, 1, now=now, policy=policy, history=history)
    plan = dispatch_plan(session, report, now=now, policy=policy)
    with transaction(session):
        accepted = accept_plan(session, plan, now=now, slot_policy=slot_policy)
    arriving: dict[int, int] = defaultdict(int)
    for move in plan.moves:
        arriving[move.to_centre_id] += move.officers
    with transaction(session):
        for centre_id, n in sorted(arriving.items()):
            _add_desks(session, centre_id, n)
    loads = {c.centre_id: c for c in report.centre_days(demand.day)}
    return PlanOutcome(plan, loads, accepted, dict(arriving))


def _add_desks(session: Session, centre_id: int, count: int) -> None:
    """`count` extra counters for officers sent to the centre. A visiting officer takes
    every line (balancing sizes a centre with its lines pooled); each desk prefers the line
    with the most counters per desk already preferring it (D'Hondt), which only breaks ties
    of queue time."""
    centre = session.get(Centre, centre_id)
    assert centre is not None
    weights = counter_weights(centre.counters)
    lines = sorted(
        (s for s in centre.services if s.active and weights.get(s.id, 0) > 0),
        key=lambda s: (-weights[s.id], s.prefix),
    )
    top = max((c.number for c in centre.counters), default=0)
    given: dict[int, int] = defaultdict(int)
    for k in range(1, count + 1):
        lead = max(lines, key=lambda s: (weights[s.id] / (given[s.id] + 1), -lines.index(s)))
        given[lead.id] += 1
        desk = Counter(centre_id=centre_id, number=top + k, name=f"Quầy tăng cường {k}")
        session.add(desk)
        session.flush()
        order = [lead, *(s for s in lines if s.id != lead.id)]
        session.add_all(
            CounterService(counter_id=desk.id, service_id=s.id, rank=rank)
            for rank, s in enumerate(order)
        )
