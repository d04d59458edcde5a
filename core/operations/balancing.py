"""Balancing across wards: load per centre, line and day, officers needed, suggestions.

Demand on a day is the appointments booked plus the walk-ins forecast from history
(core.operations.forecast). Each centre-day is sized with Erlang C in its busiest hour: the fewest
officers calling `target.level` of arrivals within `target.minutes`, all lines pooled
(counters are cross-trained; sizing each line apart would overstate the small ones).
Officers on duty are the centre's staffed counters plus the net of dispatched officers.
core.operations.dispatch turns deficits into a plan. Nothing here commits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.booking.slots import dispatched_officers
from core.models import Centre, Closure, Counter, CounterService, Service, Slot, TicketSource
from core.operations.erlang import Target, min_agents, wait_quantile
from core.operations.forecast import History, forecast_walk_ins, load_history, open_minutes_by_hour
from core.places.calendar import is_open_day


@dataclass(frozen=True)
class BalancingPolicy:
    """How demand is forecast, what "overloaded" means and how far officers travel."""

    target: Target = field(default_factory=Target)
    # Share of a day's officer time taken by demand above which a line or centre is flagged.
    overload_threshold: float = 0.9
    history_weeks: int = 8
    # Days of one weekday a centre must have history for before history replaces the
    # configured volume (3: three Mondays, say, before Mondays are forecast from data).
    min_history_days: int = 3
    # Walk-ins a day per counter until then. DESIGN §1: 600–800 visitors a day at 20
    # counters, 30–40 a counter, roughly half of them still without a booking.
    walk_ins_per_counter: float = 15.0
    max_dispatch_km: float = 15.0
    sources: tuple[TicketSource, ...] = (TicketSource.WALK_IN, TicketSource.REMOTE)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> BalancingPolicy:
        """The policy from the app's `BALANCING_*` settings."""
        return cls(
            target=Target(cfg["BALANCING_TARGET_LEVEL"], cfg["BALANCING_TARGET_MINUTES"]),
            overload_threshold=cfg["BALANCING_OVERLOAD_THRESHOLD"],
            history_weeks=cfg["BALANCING_HISTORY_WEEKS"],
            min_history_days=cfg["BALANCING_MIN_HISTORY_DAYS"],
            walk_ins_per_counter=cfg["BALANCING_WALK_INS_PER_COUNTER"],
            max_dispatch_km=cfg["BALANCING_MAX_DISPATCH_KM"],
        )


# --- load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceLoad:
    """One line on one day. `capacity`: citizens its counters serve in the day (walk-in
    share included); `bookable`/`booked`: its slots; `forecast`: expected walk-ins;
    `utilisation`: (booked + forecast) / capacity, `math.inf` for demand at a line with
    no counter left (present it as null)."""

    centre_id: int
    centre_code: str
    service_id: int
    service_prefix: str
    day: date
    capacity: float
    bookable: int
    booked: int
    forecast: float
    utilisation: float
    overloaded: bool


@dataclass(frozen=True)
class CentreDay:
    """A centre on one open day: officers on duty against officers needed."""

    centre_id: int
    centre_code: str
    day: date
    lat: float | None
    lon: float | None
    officers: int
    needed: int  # all lines pooled: what dispatched officers (serving every line) must cover
    demand: float
    utilisation: float
    overloaded: bool
    # Busiest hour: arrivals per minute and the mean service minutes, for Erlang C.
    peak_rate: float
    service_minutes: float
    wait_p90: float | None  # minutes in the busiest hour; None when the queue only grows
    # Each line sized on its own, at its own busiest hour: what the centre keeps when it
    # lends, since its counters mostly serve one line each and do not pool across lines.
    needed_by_line: int = 0

    @property
    def deficit(self) -> int:
        return max(self.needed - self.officers, 0)

    @property
    def surplus(self) -> int:
        return max(self.officers - max(self.needed, self.needed_by_line), 0)

    def p90_with(self, officers: int) -> float | None:
        """The busiest hour's p90 wait with `officers` on duty."""
        return _p90(officers, self.peak_rate * self.service_minutes, self.service_minutes)


@dataclass
class LoadReport:
    services: list[ServiceLoad]
    centres: dict[tuple[int, date], CentreDay]

    def centre_days(self, day: date) -> list[CentreDay]:
        return sorted(
            (c for c in self.centres.values() if c.day == day), key=lambda c: c.centre_code
        )


def _p90(officers: int, traffic: float, service_minutes: float) -> float | None:
    """p90 wait in minutes (one decimal); None when the queue grows without bound."""
    if traffic <= 0:
        return 0.0
    wait = wait_quantile(officers, traffic, service_minutes, 0.9) if officers > 0 else math.inf
    return None if math.isinf(wait) else round(wait, 1)


def load(
    session: Session,
    centre_ids: list[int] | None,
    day_from: date,
    days: int,
    *,
    now: datetime,
    policy: BalancingPolicy | None = None,
    history: History | None = None,
) -> LoadReport:
    """Per centre, line and open day from `day_from`: capacity, bookings, forecast walk-ins,
    utilisation and overload, and per centre-day the officers needed (Erlang C).

    A handful of queries whatever the city's size (two more without `history`: pass the
    day's, e.g. from a `core.operations.forecast.HistoryCache`); the rest is arithmetic in Python.
    """
    policy = policy or BalancingPolicy()
    last = day_from + timedelta(days=days - 1)
    q = (
        select(Centre)
        .where(Centre.active.is_(True))
        .order_by(Centre.code)
        .options(selectinload(Centre.services))
    )
    if centre_ids is not None:
        q = q.where(Centre.id.in_(centre_ids))
    centres = session.scalars(q).all()
    only = [c.id for c in centres] if centre_ids is not None else None
    weights, staffed = _counter_weights(session, only)
    booked = _slot_totals(session, only, day_from, last)
    moved = dispatched_officers(session, day_from, last, only)
    closed = _closed_days(session, day_from, last)
    if history is None:
        history = load_history(session, now=now, policy=policy, centre_ids=only)
    report = LoadReport([], {})
    for centre in centres:
        closed_here = closed.get(centre.id, set()) | closed.get(None, set())
        for offset in range(days):
            day = day_from + timedelta(days=offset)
            if not is_open_day(centre, day, closed_here):
                continue
            _centre_day(
                report,
                centre,
                day,
                weights.get(centre.id, {}),
                staffed.get(centre.id, 0),
                moved.get((centre.id, day), 0),
                booked,
                history,
                policy,
            )
    return report


def _counter_weights(
    session: Session, centre_ids: list[int] | None
) -> tuple[dict[int, dict[int, float]], dict[int, int]]:
    """Per centre: counter-equivalents per line (as `core.booking.slots.counter_weights`, from plain
    rows rather than thousands of ORM objects) and the number of staffed counters."""
    q = (
        select(Counter.centre_id, Counter.id, CounterService.service_id)
        .join(CounterService, CounterService.counter_id == Counter.id)
        .where(Counter.active.is_(True))
        .order_by(Counter.id)
    )
    if centre_ids is not None:
        q = q.where(Counter.centre_id.in_(centre_ids))
    links: dict[tuple[int, int], list[int]] = defaultdict(list)
    for centre_id, counter_id, service_id in session.execute(q):
        links[(centre_id, counter_id)].append(service_id)
    weights: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    staffed: dict[int, int] = defaultdict(int)
    for (centre_id, _), services in links.items():
        staffed[centre_id] += 1
        for service_id in services:
            weights[centre_id][service_id] += 1.0 / len(services)
    return weights, staffed


def _slot_totals(
    session: Session, centre_ids: list[int] | None, first: date, last: date
) -> dict[tuple[int, date], tuple[int, int]]:
    q = select(Slot.service_id, Slot.day, func.sum(Slot.capacity), func.sum(Slot.booked)).where(
        Slot.day.between(first, last)
    )
    if centre_ids is not None:
        q = q.where(Slot.centre_id.in_(centre_ids))
    q = q.group_by(Slot.service_id, Slot.day)
    return {(sid, day): (int(cap or 0), int(bk or 0)) for sid, day, cap, bk in session.execute(q)}


def _closed_days(session: Session, first: date, last: date) -> dict[int | None, set[date]]:
    out: dict[int | None, set[date]] = defaultdict(set)
    for centre_id, day in session.execute(
        select(Closure.centre_id, Closure.day).where(Closure.day.between(first, last))
    ):
        out[centre_id].add(day)
    return out


def _centre_day(
    report: LoadReport,
    centre: Centre,
    day: date,
    weights: dict[int, float],
    staffed: int,
    extra: int,
    slot_totals: dict[tuple[int, date], tuple[int, int]],
    history: History,
    policy: BalancingPolicy,
) -> None:
    hours = open_minutes_by_hour(centre, day)
    open_total = sum(hours.values())
    total_weight = sum(weights.values())
    officers = max(staffed + extra, 0)
    arrivals: dict[int, float] = defaultdict(float)  # per local hour, all lines
    work = demand = 0.0  # officer-minutes and citizens
    by_line = 0  # officers needed with every line sized on its own
    for service in centre.services:
        weight = weights.get(service.id, 0.0)
        if not service.active or weight <= 0:
            continue
        # Dispatched officers join the lines in proportion to their counters.
        share = weight + (extra * weight / total_weight if total_weight else 0.0)
        walk_ins = forecast_walk_ins(history, centre, service.id, day, weight, policy, hours)
        line = _line_load_row(
            centre, service, day, share, slot_totals, walk_ins, open_total, policy
        )
        report.services.append(line)
        line_arrivals = {
            h: walk_ins.get(h, 0.0) + line.booked * m / open_total for h, m in hours.items()
        }
        for h, rate in line_arrivals.items():
            arrivals[h] += rate
        by_line += _busiest_hour(hours, line_arrivals, service.intake_minutes, policy.target)[0]
        citizens = line.booked + sum(walk_ins.values())
        work += citizens * service.intake_minutes
        demand += citizens
    service_minutes = work / demand if demand else 0.0
    needed, peak_rate = _busiest_hour(hours, arrivals, service_minutes, policy.target)
    utilisation = _ratio(work, officers * open_total)
    report.centres[(centre.id, day)] = CentreDay(
        centre.id,
        centre.code,
        day,
        centre.lat,
        centre.lon,
        officers,
        needed,
        round(demand, 1),
        round(utilisation, 3),
        utilisation > policy.overload_threshold or needed > officers,
        peak_rate,
        service_minutes,
        _p90(officers, peak_rate * service_minutes, service_minutes),
        by_line,
    )


def _line_load_row(
    centre: Centre,
    service: Service,
    day: date,
    officers: float,
    slot_totals: dict[tuple[int, date], tuple[int, int]],
    walk_ins: dict[int, float],
    open_total: float,
    policy: BalancingPolicy,
) -> ServiceLoad:
    bookable, booked = slot_totals.get((service.id, day), (0, 0))
    forecast = sum(walk_ins.values())
    capacity = max(officers, 0.0) * open_total / max(service.intake_minutes, 1)
    utilisation = _ratio(booked + forecast, capacity)
    return ServiceLoad(
        centre.id,
        centre.code,
        service.id,
        service.prefix,
        day,
        round(capacity, 1),
        bookable,
        booked,
        round(forecast, 1),
        round(utilisation, 3),
        utilisation > policy.overload_threshold,
    )


def _ratio(demand: float, capacity: float) -> float:
    """Demand over capacity; infinite for demand with no capacity at all."""
    if capacity > 0:
        return demand / capacity
    return math.inf if demand > 0 else 0.0


@lru_cache(maxsize=4096)
def _agents(traffic: float, service_minutes: float, target: Target) -> int:
    # Flat fallback forecasts repeat the same loads across centres and days.
    return min_agents(traffic, service_minutes, target.minutes, target.level)


def _busiest_hour(
    hours: dict[int, float], arrivals: dict[int, float], service_minutes: float, target: Target
) -> tuple[int, float]:
    """Officers needed in the hour needing most, and that hour's arrivals per minute."""
    needed, peak_rate = 0, 0.0
    for h, minutes in sorted(hours.items()):
        rate = arrivals[h] / minutes
        agents = _agents(rate * service_minutes, service_minutes, target)
        if agents > needed or (agents == needed and rate > peak_rate):
            needed, peak_rate = agents, rate
    return needed, peak_rate
