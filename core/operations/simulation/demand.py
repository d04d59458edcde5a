"""Demand: who comes to which centre on the simulated day, drawn once from a seed."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.booking.availability import haversine_km
from core.booking.slots import counter_weights
from core.common.timeutil import local_day, local_to_utc
from core.models import (
    Centre,
    CentreKind,
    Closure,
    Counter,
    PriorityClass,
    Procedure,
    Service,
    service_fields,
    service_procedures,
)
from core.operations.balancing import BalancingPolicy
from core.operations.forecast import History, forecast_walk_ins, open_minutes_by_hour
from core.places.calendar import is_open_day, opening_periods

# Near Bến Thành market: where "central" is measured from.
CITY_CENTRE = (10.7725, 106.6980)


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
