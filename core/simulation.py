"""A simulated city day driven through the real engine, on a clock faster than real time.

Demand is drawn once from a seed: per centre and line, walk-ins by the hour following the
walk-in forecast's daily shape, and citizens who book ahead into the real slots; a few
central centres draw 2–3× their share (location independence moves crowds there). The
day is a discrete-event simulation: the injected clock (`app.config["CLOCK"]`) jumps from
event to event, and every action is the core function an API handler calls, in its own
transaction as the handler runs it — booking, kiosk check-in, walk-in tickets, opening and
closing counters, call next, recall, start, complete. Only citizens are simulated: whether
and when they come, how patient they are, how long their business takes.

Unlike a domain operation the driver commits: it plays the edges. It acts on the session
it is given and knows nothing of scratch databases or processes: xephang/simulate.py builds
those and never hands it an operator's database.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core import booking, counters, kiosk_lookup, tickets
from core.availability import haversine_km
from core.balancing import BalancingPolicy, CentreDay, load
from core.calendar_days import is_open_day, opening_periods
from core.db import transaction
from core.dispatch import AcceptReport, DispatchPlan, accept_plan, dispatch_plan
from core.errors import Conflict
from core.forecast import History, forecast_walk_ins, open_minutes_by_hour
from core.models import (
    Centre,
    CentreKind,
    Closure,
    Counter,
    CounterService,
    PriorityClass,
    Procedure,
    Role,
    Service,
    Slot,
    Staff,
    StaffAssignment,
    Ticket,
    TicketEvent,
    TicketSequence,
    TicketStatus,
    service_fields,
    service_procedures,
)
from core.slots import SlotPolicy, counter_weights
from core.timeutil import local_day, local_to_utc

# Near Bến Thành market: where "central" is measured from.
CITY_CENTRE = (10.7725, 106.6980)
# Scratch accounts cannot log in: no password hash has this form.
NO_LOGIN = "!simulated"


class SimClock:
    """The injected clock: callable like `app.config["CLOCK"]` wants, moved by the driver."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# --- demand -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandOptions:
    """How the day's citizens are drawn. Shares are of citizens; minutes are local minutes."""

    seed: int = 1
    scale: float = 1.0
    booked_share: float = 0.4
    # Share of centres made popular (at least one), drawn among the wards nearest `central`.
    popular_share: float = 0.05
    popular_factor: tuple[float, float] = (2.0, 3.0)
    # Everyone else: the crowds that went central came from somewhere.
    others_factor: tuple[float, float] = (0.75, 1.05)
    popular_codes: tuple[str, ...] = ()  # pins the popular centres instead of drawing them
    central: tuple[float, float] = CITY_CENTRE
    priority_share: float = 0.05
    booking_no_show: float = 0.08
    late_share: float = 0.15
    late_minutes: tuple[float, float] = (5.0, 45.0)
    early_minutes: tuple[float, float] = (0.0, 20.0)
    # Not at hand when called, however short the wait (stepped out, gave up early).
    absent_share: float = 0.02
    patience_minutes: tuple[float, float, float] = (30.0, 240.0, 90.0)  # low, high, mode
    walk_minutes: tuple[float, float] = (0.3, 1.5)
    service_cv: float = 0.5  # spread of service times around the line's intake minutes


@dataclass(frozen=True)
class Citizen:
    """One person with business at a centre on the day."""

    number: int
    centre_id: int
    service_id: int
    procedure_id: int
    procedure_code: str
    # Walk-ins: when they reach the kiosk. Bookers: the time they would like to come.
    arrives: datetime
    books: bool
    # Bookers: arrival relative to their slot's start, in minutes; None: never comes.
    offset_minutes: float | None
    priority: PriorityClass
    patience_minutes: float
    absent: bool
    walk_minutes: float
    service_minutes: float


@dataclass(frozen=True)
class Seat:
    """A booking made ahead: what the citizen types at the kiosk, and when the slot starts."""

    code: str
    last4: str
    starts_at: datetime


@dataclass
class Demand:
    day: date
    citizens: list[Citizen]
    factors: dict[int, float]  # centre id → demand relative to its usual share
    popular: list[int]
    # Expected walk-ins per (centre id, service id, local hour): the arrivals' mean.
    walk_ins: dict[tuple[int, int, int], float]
    seats: dict[int, Seat] = field(default_factory=dict)  # citizen number → booking

    def history(self, policy: BalancingPolicy, now: datetime) -> History:
        """The walk-in history that `policy.history_weeks` weeks of days like this one would
        have left: what the forecast learns once the city has run a while (a scratch
        database has no past)."""
        weeks = policy.history_weeks
        weekday = self.day.weekday()
        counts = {(c, s, weekday, h): round(v * weeks) for (c, s, h), v in self.walk_ins.items()}
        days = {(c, weekday): weeks for c in {c for c, _, _ in self.walk_ins}}
        return History(counts, days, weeks, policy.sources, local_day(now))

    def of_centres(self, centre_ids: Iterable[int]) -> Demand:
        """The part of the demand at these centres (a batch of a run)."""
        wanted = set(centre_ids)
        citizens = [c for c in self.citizens if c.centre_id in wanted]
        numbers = {c.number for c in citizens}
        return Demand(
            self.day,
            citizens,
            {k: v for k, v in self.factors.items() if k in wanted},
            [c for c in self.popular if c in wanted],
            {k: v for k, v in self.walk_ins.items() if k[0] in wanted},
            {n: s for n, s in self.seats.items() if n in numbers},
        )


def open_centres(
    session: Session, day: date, centre_ids: Iterable[int] | None = None
) -> list[Centre]:
    """Active centres open on `day` (holidays and closures count), by code, with their lines
    and counters loaded."""
    q = (
        select(Centre)
        .where(Centre.active.is_(True))
        .order_by(Centre.code)
        .options(
            selectinload(Centre.services),
            selectinload(Centre.counters).selectinload(Counter.service_links),
        )
    )
    if centre_ids is not None:
        q = q.where(Centre.id.in_(list(centre_ids)))
    closed: dict[int | None, set[date]] = defaultdict(set)
    for centre_id, d in session.execute(select(Closure.centre_id, Closure.day)):
        closed[centre_id].add(d)
    return [
        c
        for c in session.scalars(q)
        if is_open_day(c, day, closed.get(c.id, set()) | closed.get(None, set()))
    ]


def draw_demand(
    session: Session,
    day: date,
    options: DemandOptions,
    policy: BalancingPolicy,
    centre_ids: Iterable[int] | None = None,
) -> Demand:
    """The day's citizens at every open centre, from `options.seed` alone (same seed, same
    database: same citizens, in the same order)."""
    # Seeded on purpose: the same seed must draw the same day (nothing secret here).
    rng = random.Random(options.seed)  # noqa: S311
    centres = open_centres(session, day, centre_ids)
    factors, popular = _skew(centres, options, rng)
    procedures = _procedures_by_line(session, [s for c in centres for s in c.services])
    demand = Demand(day, [], factors, popular, {})
    for centre in centres:
        hours = open_minutes_by_hour(centre, day)
        weights = counter_weights(centre.counters)
        for service in sorted(centre.services, key=lambda s: s.prefix):
            if not service.active or weights.get(service.id, 0) <= 0 or not procedures[service.id]:
                continue
            shape = forecast_walk_ins(
                History(), centre, service.id, day, weights[service.id], policy, hours
            )
            rate = {h: v * factors[centre.id] * options.scale for h, v in shape.items()}
            for h, v in rate.items():
                demand.walk_ins[(centre.id, service.id, h)] = v
            total = sum(rate.values())
            walk_ins = _poisson(rng, total)
            bookers = _poisson(rng, total * options.booked_share / (1 - options.booked_share))
            for books in [False] * walk_ins + [True] * bookers:
                demand.citizens.append(
                    _citizen(
                        rng,
                        len(demand.citizens) + 1,
                        centre,
                        service,
                        day,
                        rate,
                        books,
                        procedures[service.id],
                        options,
                    )
                )
    return demand


def _skew(
    centres: list[Centre], options: DemandOptions, rng: random.Random
) -> tuple[dict[int, float], list[int]]:
    wards = [
        c for c in centres if c.kind is CentreKind.WARD and c.lat is not None and c.lon is not None
    ]
    if options.popular_codes:
        chosen = {c.id for c in centres if c.code in options.popular_codes}
    elif wards:
        k = min(len(wards), max(1, round(len(centres) * options.popular_share)))
        lat, lon = options.central
        near = sorted(wards, key=lambda c: (haversine_km(lat, lon, c.lat, c.lon), c.code))
        chosen = {c.id for c in rng.sample(near[: 3 * k], k)}
    else:
        chosen = set()
    factors = {
        c.id: rng.uniform(*(options.popular_factor if c.id in chosen else options.others_factor))
        for c in centres
    }
    return factors, [c.id for c in centres if c.id in chosen]


def _procedures_by_line(
    session: Session, services: list[Service]
) -> dict[int, list[tuple[int, str]]]:
    """Active procedures each line takes, by code: its fields' at its level, and listed ones."""
    ids = [s.id for s in services]
    by_field: dict[tuple[int, Any], list[tuple[int, str]]] = defaultdict(list)
    for pid, code, field_id, level in session.execute(
        select(Procedure.id, Procedure.code, Procedure.field_id, Procedure.level)
        .where(Procedure.active.is_(True))
        .order_by(Procedure.code)
    ):
        by_field[(field_id, level)].append((pid, code))
        by_field[(field_id, None)].append((pid, code))
    fields_of: dict[int, set[int]] = defaultdict(set)
    for sid, fid in session.execute(
        select(service_fields.c.service_id, service_fields.c.field_id).where(
            service_fields.c.service_id.in_(ids)
        )
    ):
        fields_of[sid].add(fid)
    listed: dict[int, set[tuple[int, str]]] = defaultdict(set)
    for sid, pid, code in session.execute(
        select(service_procedures.c.service_id, Procedure.id, Procedure.code)
        .join(Procedure, Procedure.id == service_procedures.c.procedure_id)
        .where(service_procedures.c.service_id.in_(ids), Procedure.active.is_(True))
    ):
        listed[sid].add((pid, code))
    out: dict[int, list[tuple[int, str]]] = {}
    for s in services:
        found = set(listed[s.id])
        for fid in fields_of[s.id]:
            found.update(by_field.get((fid, s.level), ()))
        out[s.id] = sorted(found, key=lambda p: p[1])
    return out


def _citizen(
    rng: random.Random,
    number: int,
    centre: Centre,
    service: Service,
    day: date,
    rate: dict[int, float],
    books: bool,
    procedures: list[tuple[int, str]],
    o: DemandOptions,
) -> Citizen:
    procedure_id, code = procedures[rng.randrange(len(procedures))]
    arrives = _draw_time(rng, centre, day, rate)
    offset: float | None = None
    if books:
        luck = rng.random()
        if luck < o.booking_no_show:
            offset = None
        elif luck < o.booking_no_show + o.late_share:
            offset = rng.uniform(*o.late_minutes)
        else:
            offset = -rng.uniform(*o.early_minutes)
    priority = (
        PriorityClass.ELDERLY
        if rng.random() < o.priority_share and not books
        else PriorityClass.NONE
    )
    mean = max(service.intake_minutes, 1)
    shape = 1 / (o.service_cv**2)
    return Citizen(
        number=number,
        centre_id=centre.id,
        service_id=service.id,
        procedure_id=procedure_id,
        procedure_code=code,
        arrives=arrives,
        books=books,
        offset_minutes=offset,
        priority=priority,
        patience_minutes=rng.triangular(*o.patience_minutes),
        absent=rng.random() < o.absent_share,
        walk_minutes=rng.uniform(*o.walk_minutes),
        service_minutes=max(1.0, rng.gammavariate(shape, mean / shape)),
    )


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # the normal approximation is close, and exp(-mean) would underflow
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _draw_time(rng: random.Random, centre: Centre, day: date, rate: dict[int, float]) -> datetime:
    """An instant in the centre's opening hours, the hour drawn by `rate`, whole seconds."""
    hours = sorted(rate)
    hour = (
        rng.choices(hours, weights=[rate[h] for h in hours])[0] if sum(rate.values()) else hours[0]
    )
    parts = []
    for start, end in opening_periods(centre, day):
        a = max(start.hour * 60 + start.minute, hour * 60)
        b = min(end.hour * 60 + end.minute, hour * 60 + 60)
        if b > a:
            parts.append((a, b))
    a, b = rng.choices(parts, weights=[b - a for a, b in parts])[0]
    seconds = round(rng.uniform(a, b) * 60)
    return local_to_utc(day, time(0, 0)) + timedelta(seconds=min(seconds, b * 60 - 1))


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
    seat, through `core.booking.book`, one transaction each (as the booking API does).
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
    """The day's dispatch plan (core.dispatch on core.balancing's load), accepted as an
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


# --- the day ----------------------------------------------------------------------------------


@dataclass(eq=False)  # compared and hashed by identity: one per counter
class _Desk:
    """A counter with its officer for the day, as the driver sees it."""

    counter_id: int
    centre_id: int
    number: int
    staff_id: int
    ranks: dict[int, int]  # service id → the counter's preference rank
    period_end: datetime | None = None
    state: str = "closed"  # closed, idle or busy
    ticket: str | None = None  # public id of the ticket called or served here
    citizen: Citizen | None = None


@dataclass
class RunStats:
    """What the driver itself counted: tickets it was handed, people the kiosk turned away
    (after closing), officers at work per centre, and engine actions taken."""

    issued: int = 0
    turned_away: int = 0
    officers: dict[int, int] = field(default_factory=dict)
    actions: int = 0
    events: int = 0


class DayRun:
    """The day at a set of centres: citizens arrive and check in, officers open their
    counters at opening time and call, recall, start and complete until closing."""

    def __init__(
        self,
        session: Session,
        clock: SimClock,
        demand: Demand,
        *,
        rules: tickets.FloorRules,
        secret: str,
        centre_ids: Iterable[int] | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        self.demand = demand
        self.rules = rules
        self.secret = secret
        self.centre_ids = sorted(demand.factors if centre_ids is None else centre_ids)
        self.stats = RunStats()
        self._heap: list[tuple[datetime, int, Callable[..., None], Any]] = []
        self._seq = 0
        self._idle: dict[int, set[_Desk]] = defaultdict(set)
        self._desks: dict[int, list[_Desk]] = defaultdict(list)
        self._citizen_of: dict[int, Citizen] = {}
        self._periods: dict[int, list[tuple[datetime, datetime]]] = {}

    def run(self) -> RunStats:
        """Play the whole day; returns what the driver counted."""
        day = self.demand.day
        centres = open_centres(self.session, day, self.centre_ids)
        for centre in centres:
            self._periods[centre.id] = [
                (local_to_utc(day, a), local_to_utc(day, b))
                for a, b in opening_periods(centre, day)
            ]
        self._seat(centres)
        self.session.rollback()
        for centre_id, periods in self._periods.items():
            for start, end in periods:
                self._at(start, self._open, (centre_id, end))
                self._at(end, self._close_period, centre_id)
        wanted = set(self._periods)
        for citizen in self.demand.citizens:
            if citizen.centre_id not in wanted:
                continue
            seat = self.demand.seats.get(citizen.number)
            if seat is None:
                self._at(citizen.arrives, self._walk_in, citizen)
            elif citizen.offset_minutes is not None:
                at = seat.starts_at + timedelta(minutes=citizen.offset_minutes)
                self._at(at.replace(microsecond=0), self._check_in, citizen)
        while self._heap:
            at, _, action, arg = heapq.heappop(self._heap)
            self.clock.now = at
            self.stats.events += 1
            action(arg)
        return self.stats

    # -- plumbing --

    def _at(self, at: datetime, action: Callable[..., None], arg: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, action, arg))

    def _after(self, minutes: float, action: Callable[..., None], arg: Any) -> None:
        self._at(self.clock.now + timedelta(seconds=round(minutes * 60)), action, arg)

    def _act(self, fn: Callable[[Session], Any]) -> Any:
        """One engine action in its own transaction, as an API handler runs it."""
        self.stats.actions += 1
        with transaction(self.session) as session:
            return fn(session)

    def _staff(self, session: Session, desk: _Desk) -> Staff:
        staff = session.get(Staff, desk.staff_id)
        assert staff is not None
        return staff

    # -- who works where --

    def _seat(self, centres: list[Centre]) -> None:
        """Officers working at each centre today take its counters: its own officers not
        lent elsewhere, then those sent there; a centre short of officers leaves the
        counters of its best-covered lines closed."""
        ids = [c.id for c in centres]
        day = self.demand.day
        sent = dict(
            self.session.execute(
                select(StaffAssignment.staff_id, StaffAssignment.centre_id).where(
                    StaffAssignment.day == day
                )
            ).all()
        )
        officers: dict[int, list[int]] = defaultdict(list)
        home = self.session.execute(
            select(Staff.id, Staff.centre_id)
            .where(Staff.role == Role.OFFICER, Staff.active.is_(True), Staff.centre_id.in_(ids))
            .where(Staff.in_mobile_pool.is_(False))
            .order_by(Staff.id)
        ).all()
        for staff_id, centre_id in home:
            if sent.get(staff_id, centre_id) == centre_id:
                officers[centre_id].append(staff_id)
        home_of = dict(home)
        for staff_id, centre_id in sorted(sent.items()):
            if centre_id in self._periods and home_of.get(staff_id) != centre_id:
                officers[centre_id].append(staff_id)
        for centre in centres:
            ordered = _opening_order(centre)
            for counter, staff_id in zip(ordered, officers[centre.id], strict=False):
                ranks = {link.service_id: link.rank for link in counter.service_links}
                self._desks[centre.id].append(
                    _Desk(counter.id, centre.id, counter.number, staff_id, ranks)
                )
            self.stats.officers[centre.id] = len(self._desks[centre.id])

    # -- counters --

    def _open(self, arg: tuple[int, datetime]) -> None:
        centre_id, end = arg
        day = self.demand.day
        for desk in self._desks[centre_id]:
            if desk.state != "closed":  # still busy from the last period: carries on
                desk.period_end = end
                continue

            def open_(session: Session, desk: _Desk = desk) -> None:
                staff = self._staff(session, desk)
                counter = counters.counter_for(session, desk.counter_id, staff, day=day)
                counters.open_counter(session, counter, staff, now=self.clock.now)

            self._act(open_)
            desk.period_end = end
            desk.state = "busy"
            self._at(self.clock.now, self._call, desk)

    def _close_period(self, centre_id: int) -> None:
        for desk in sorted(self._idle[centre_id], key=lambda d: d.number):
            self._close(desk)
        self._idle[centre_id].clear()

    def _close(self, desk: _Desk) -> None:
        def close(session: Session) -> None:
            staff = self._staff(session, desk)
            counter = counters.counter_for(session, desk.counter_id, staff, day=self.demand.day)
            counters.close_counter(session, counter, staff, now=self.clock.now)

        self._act(close)
        desk.state, desk.ticket, desk.citizen = "closed", None, None

    def _wake(self, centre_id: int, service_id: int) -> None:
        """A new ticket: the idle counter preferring its line calls."""
        idle = [d for d in self._idle[centre_id] if service_id in d.ranks]
        if not idle:
            return
        desk = min(idle, key=lambda d: (d.ranks[service_id], d.number))
        self._idle[centre_id].discard(desk)
        desk.state = "busy"
        self._at(self.clock.now, self._call, desk)

    def _call(self, desk: _Desk) -> None:
        """Call next (which completes the citizen served here, if any); past the end of
        opening hours, close the counter instead."""
        assert desk.period_end is not None
        if self.clock.now >= desk.period_end:
            self._close(desk)
            return

        def call(session: Session) -> tuple[int, str, datetime] | None:
            staff = self._staff(session, desk)
            counter = counters.held_counter(
                session, desk.counter_id, staff, day=self.demand.day, lock=True
            )
            ticket = tickets.call_next(
                session, counter, now=self.clock.now, rules=self.rules, staff_id=staff.id
            )
            return None if ticket is None else (ticket.id, ticket.public_id, ticket.issued_at)

        called = self._act(call)
        if called is None:
            desk.state, desk.ticket, desk.citizen = "idle", None, None
            self._idle[desk.centre_id].add(desk)
            return
        ticket_id, public_id, issued_at = called
        citizen = self._citizen_of[ticket_id]
        desk.ticket, desk.citizen = public_id, citizen
        waited = (self.clock.now - issued_at).total_seconds() / 60
        if citizen.absent or waited > citizen.patience_minutes:
            self._after(1, self._recall, desk)  # nobody comes: call again in a minute
        else:
            self._after(citizen.walk_minutes, self._start, desk)

    def _recall(self, desk: _Desk) -> None:
        def recall(session: Session) -> TicketStatus:
            staff = self._staff(session, desk)
            counter = counters.held_counter(session, desk.counter_id, staff, day=self.demand.day)
            ticket = tickets.recall(
                session, counter, now=self.clock.now, rules=self.rules, staff_id=staff.id
            )
            return ticket.status

        if self._act(recall) is TicketStatus.NO_SHOW:
            self._call(desk)
        else:
            self._after(1, self._recall, desk)

    def _on_ticket(self, session: Session, desk: _Desk, action: Callable[..., None]) -> None:
        staff = self._staff(session, desk)
        assert desk.ticket is not None
        ticket = tickets.ticket_for_staff(session, desk.ticket, staff, now=self.clock.now)
        action(session, ticket, now=self.clock.now, staff_id=staff.id)

    def _start(self, desk: _Desk) -> None:
        self._act(lambda session: self._on_ticket(session, desk, tickets.start))
        assert desk.citizen is not None
        self._after(desk.citizen.service_minutes, self._finish, desk)

    def _finish(self, desk: _Desk) -> None:
        assert desk.period_end is not None
        if self.clock.now < desk.period_end:
            self._call(desk)
            return
        # Past the end of opening hours: finish with this citizen, call nobody else.
        self._act(lambda session: self._on_ticket(session, desk, tickets.complete))
        self._close(desk)

    # -- citizens --

    def _walk_in(self, citizen: Citizen) -> None:
        def issue(session: Session) -> Ticket:
            centre = session.get(Centre, citizen.centre_id)
            # The citizen names their line at the kiosk along with the procedure, as the
            # tickets API allows (finding the line from the procedure alone costs a load of
            # every line's fields: the same line, much slower).
            return tickets.issue_walk_in(
                session,
                centre,
                now=self.clock.now,
                procedure=session.get(Procedure, citizen.procedure_id),
                service=session.get(Service, citizen.service_id),
                priority=citizen.priority,
            )

        self._issue(citizen, issue)

    def _check_in(self, citizen: Citizen) -> None:
        seat = self.demand.seats[citizen.number]

        def check_in(session: Session) -> Ticket:
            centre = session.get(Centre, citizen.centre_id)
            assert centre is not None
            done = kiosk_lookup.check_in_at_kiosk(
                session,
                centre,
                now=self.clock.now,
                rules=self.rules,
                secret=self.secret,
                code=seat.code,
                last4=seat.last4,
            )
            return done.ticket

        self._issue(citizen, check_in, late=self._walk_in)

    def _issue(
        self,
        citizen: Citizen,
        issue: Callable[[Session], Ticket],
        late: Callable[[Citizen], None] | None = None,
    ) -> None:
        def issued(session: Session) -> tuple[int, int]:
            ticket = issue(session)
            return ticket.id, ticket.service_id

        try:
            ticket_id, service_id = self._act(issued)
        except Conflict as exc:
            if exc.code == "too_late" and late is not None:
                late(citizen)  # the kiosk offers a walk-in ticket instead
                return
            if exc.code != "centre_closed_now":
                raise
            later = self._next_opening(citizen.centre_id)
            if later is None:
                self.stats.turned_away += 1
            else:
                self._at(later, self._walk_in, citizen)  # waits outside until it opens
            return
        self.stats.issued += 1
        self._citizen_of[ticket_id] = citizen
        self._wake(citizen.centre_id, service_id)

    def _next_opening(self, centre_id: int) -> datetime | None:
        return next((a for a, _ in self._periods[centre_id] if a > self.clock.now), None)


def _opening_order(centre: Centre) -> list[Counter]:
    """Counters in the order a centre short of officers opens them: each next one goes to
    the line with the most work (counter share × intake minutes) per counter opened so far
    (D'Hondt), so no line is left with far less than its share."""
    weights = counter_weights(centre.counters)
    intake = {s.id: max(s.intake_minutes, 1) for s in centre.services}
    groups: dict[int, list[Counter]] = defaultdict(list)
    for c in sorted(centre.counters, key=lambda c: c.number):
        if c.active and c.service_links:
            lead = min(c.service_links, key=lambda link: (link.rank, link.service_id))
            groups[lead.service_id].append(c)
    work = {sid: weights.get(sid, 0.0) * intake.get(sid, 10) for sid in groups}
    opened: dict[int, int] = defaultdict(int)
    order: list[Counter] = []
    for _ in range(sum(len(g) for g in groups.values())):
        sid = max(
            (s for s in groups if opened[s] < len(groups[s])),
            key=lambda s: (work[s] / (opened[s] + 1), -s),
        )
        order.append(groups[sid][opened[sid]])
        opened[sid] += 1
    return order


# --- what happened ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketRow:
    """One ticket of the day, as the database has it after closing."""

    centre_id: int
    line: str  # the line's letter
    source: str
    status: str
    wait_minutes: float  # queue time → first call; still waiting: → closing (a lower bound)


def ticket_rows(session: Session, day: date, centre_ids: Iterable[int]) -> list[TicketRow]:
    """Every ticket of the day at these centres with its wait."""
    ids = list(centre_ids)
    closing = {
        c.id: max((local_to_utc(day, b) for _, b in opening_periods(c, day)), default=None)
        for c in session.scalars(select(Centre).where(Centre.id.in_(ids)))
    }
    first_call = (
        select(TicketEvent.ticket_id, func.min(TicketEvent.at).label("at"))
        .where(TicketEvent.kind == "called")
        .group_by(TicketEvent.ticket_id)
        .subquery()
    )
    rows = []
    for centre_id, line, source, status, queued, called in session.execute(
        select(
            Ticket.centre_id,
            Service.prefix,
            Ticket.source,
            Ticket.status,
            Ticket.queue_time,
            first_call.c.at,
        )
        .join(Service, Service.id == Ticket.service_id)
        .outerjoin(first_call, first_call.c.ticket_id == Ticket.id)
        .where(Ticket.day == day, Ticket.centre_id.in_(ids))
        .order_by(Ticket.id)
    ):
        until = called if called is not None else closing[centre_id]
        wait = max((until - queued).total_seconds() / 60, 0.0) if until else 0.0
        rows.append(TicketRow(centre_id, line, source.value, status.value, round(wait, 2)))
    return rows


@dataclass(frozen=True)
class CentreResult:
    tickets: int
    served: int
    no_shows: int
    waiting: int  # still waiting at closing time
    p50: float | None
    p90: float | None
    over_30: int  # citizens who waited more than 30 minutes to be called (or still wait)


def centre_results(rows: Iterable[TicketRow]) -> dict[int, CentreResult]:
    """Per centre: tickets, how they ended and the waits."""
    by_centre: dict[int, list[TicketRow]] = defaultdict(list)
    for row in rows:
        by_centre[row.centre_id].append(row)
    return {centre_id: summarise(group) for centre_id, group in by_centre.items()}


def summarise(rows: list[TicketRow]) -> CentreResult:
    waits = sorted(r.wait_minutes for r in rows)
    return CentreResult(
        tickets=len(rows),
        served=sum(1 for r in rows if r.status == TicketStatus.DONE.value),
        no_shows=sum(1 for r in rows if r.status == TicketStatus.NO_SHOW.value),
        waiting=sum(1 for r in rows if r.status == TicketStatus.WAITING.value),
        p50=percentile(waits, 0.5),
        p90=percentile(waits, 0.9),
        over_30=sum(1 for w in waits if w > 30),
    )


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values, one decimal; None for none."""
    if not ordered:
        return None
    return round(ordered[max(math.ceil(q * len(ordered)) - 1, 0)], 1)


@dataclass(frozen=True)
class Audit:
    """What must hold after any day, whatever the load."""

    tickets: int
    issued_events: int
    unfinished: int  # called or serving after closing: a counter left something behind
    other_endings: int  # cancelled or transferred: the driver does neither
    label_problems: tuple[str, ...]  # duplicate labels, gaps, sequences out of step
    completed_twice: int
    appointments_twice: int  # an appointment with more than one ticket

    @property
    def ok(self) -> bool:
        return (
            self.tickets == self.issued_events
            and not self.unfinished
            and not self.other_endings
            and not self.label_problems
            and not self.completed_twice
            and not self.appointments_twice
        )


def audit(session: Session, day: date, centre_ids: Iterable[int]) -> Audit:
    """Check the day's tickets at these centres: every one ended served, no-show or still
    waiting; labels unique and gap-free per line; nobody served twice."""
    ids = list(centre_ids)
    mine = Ticket.day == day, Ticket.centre_id.in_(ids)
    statuses = dict(
        session.execute(
            select(Ticket.status, func.count()).where(*mine).group_by(Ticket.status)
        ).all()
    )
    events = dict(
        session.execute(
            select(TicketEvent.kind, func.count())
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(*mine, TicketEvent.kind.in_(["issued", "completed"]))
            .group_by(TicketEvent.kind)
        ).all()
    )
    twice = session.scalar(
        select(func.count()).select_from(
            select(TicketEvent.ticket_id)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(*mine, TicketEvent.kind == "completed")
            .group_by(TicketEvent.ticket_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    appointments = session.scalar(
        select(func.count()).select_from(
            select(Ticket.appointment_id)
            .where(*mine, Ticket.appointment_id.is_not(None))
            .group_by(Ticket.appointment_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    return Audit(
        tickets=sum(statuses.values()),
        issued_events=events.get("issued", 0),
        unfinished=statuses.get(TicketStatus.CALLED, 0) + statuses.get(TicketStatus.SERVING, 0),
        other_endings=statuses.get(TicketStatus.CANCELLED, 0)
        + statuses.get(TicketStatus.TRANSFERRED, 0),
        label_problems=tuple(_label_problems(session, day, ids)),
        completed_twice=int(twice or 0),
        appointments_twice=int(appointments or 0),
    )


def _label_problems(session: Session, day: date, centre_ids: list[int]) -> Iterable[str]:
    numbers: dict[int, list[tuple[int, str]]] = defaultdict(list)
    prefix = dict(
        session.execute(
            select(Service.id, Service.prefix).where(Service.centre_id.in_(centre_ids))
        ).all()
    )
    for service_id, number, label in session.execute(
        select(Ticket.service_id, Ticket.number, Ticket.label)
        .where(Ticket.day == day, Ticket.centre_id.in_(centre_ids))
        .order_by(Ticket.service_id, Ticket.number)
    ):
        numbers[service_id].append((number, label))
    last = dict(
        session.execute(
            select(TicketSequence.service_id, TicketSequence.last_number).where(
                TicketSequence.day == day, TicketSequence.service_id.in_(list(prefix))
            )
        ).all()
    )
    for service_id, issued in sorted(numbers.items()):
        labels = [label for _, label in issued]
        if [n for n, _ in issued] != list(range(1, len(issued) + 1)):
            yield f"line {service_id}: numbers not 1..{len(issued)}"
        if len(set(labels)) != len(labels):
            yield f"line {service_id}: duplicate labels"
        if any(label != tickets.label_for(prefix[service_id], n) for n, label in issued):
            yield f"line {service_id}: a label does not match its number"
        if last.get(service_id) != len(issued):
            yield f"line {service_id}: sequence at {last.get(service_id)}, {len(issued)} tickets"
