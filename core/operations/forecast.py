"""Walk-in forecast: unscheduled arrivals per centre, line, weekday and local hour.

Walk-in and same-day remote tickets of the last weeks, averaged over the days of that
weekday the centre issued tickets at all; a centre with too few such days gets a
configured volume per counter instead, spread over its opening hours.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from core.common.cache import TTLCache
from core.common.timeutil import LOCAL_TZ, local_day
from core.models import Centre, Ticket, TicketSource
from core.places.calendar import opening_periods

if TYPE_CHECKING:
    from core.operations.balancing import BalancingPolicy


@dataclass
class History:
    """Unscheduled arrivals seen per (centre, service, weekday, local hour), and on how many
    distinct days per (centre, weekday) the centre issued tickets at all."""

    counts: dict[tuple[int, int, int, int], int] = field(default_factory=dict)
    days: dict[tuple[int, int], int] = field(default_factory=dict)
    # What it was loaded for: the local day it precedes, its span and the sources counted.
    weeks: int = 0
    sources: tuple[TicketSource, ...] = ()
    day: date | None = None


def load_history(
    session: Session,
    *,
    now: datetime,
    policy: BalancingPolicy,
    centre_ids: list[int] | None = None,
) -> History:
    """Two queries over the tickets of the last `history_weeks` weeks before today (of all
    centres when `centre_ids` is None)."""
    last = local_day(now) - timedelta(days=1)
    first = last - timedelta(days=7 * policy.history_weeks - 1)
    dow = extract("dow", Ticket.day)  # 0 = Sunday on PostgreSQL and SQLite alike
    hour = extract("hour", Ticket.issued_at)  # stored as UTC
    where = [Ticket.day.between(first, last)]
    if centre_ids is not None:
        where.append(Ticket.centre_id.in_(centre_ids))
    counts_q = (
        select(Ticket.centre_id, Ticket.service_id, dow, hour, func.count())
        .where(
            *where,
            Ticket.source.in_(policy.sources),
            Ticket.transferred_from_id.is_(None),
        )
        .group_by(Ticket.centre_id, Ticket.service_id, dow, hour)
    )
    # Distinct (centre, day) pairs are few (centres × days); weekdays are counted here.
    days_q = select(Ticket.centre_id, Ticket.day).where(*where).distinct()
    offset = _utc_offset_hours()
    history = History(weeks=policy.history_weeks, sources=policy.sources, day=local_day(now))
    for centre_id, service_id, d, h, n in session.execute(counts_q):
        key = (centre_id, service_id, (int(d) + 6) % 7, (int(h) + offset) % 24)
        history.counts[key] = history.counts.get(key, 0) + n
    for centre_id, day in session.execute(days_q):
        key = (centre_id, day.weekday())
        history.days[key] = history.days.get(key, 0) + 1
    return history


class HistoryCache:
    """The city's history, loaded once per local day and policy.

    Past days do not change during the day (the tickets of today are not history yet), so a
    scheduler or a suggestions endpoint keeps one of these and skips the two scans of the
    tickets table on every pass but the first of the day. Thread-safe enough: a race costs
    one extra load, never a wrong answer.
    """

    def __init__(self) -> None:
        self._history: History | None = None

    def get(self, session: Session, *, now: datetime, policy: BalancingPolicy) -> History:
        cached = self._history
        if (
            cached is None
            or cached.day != local_day(now)
            or cached.weeks != policy.history_weeks
            or cached.sources != policy.sources
        ):
            cached = load_history(session, now=now, policy=policy)
            self._history = cached
        return cached

    def clear(self) -> None:
        self._history = None


# Past days do not change within a day; ten minutes bounds how long a purge or an import of
# old tickets goes unseen. Keyed by database URL (core.common.cache), emptied by the app factory.
_HISTORY: TTLCache[History] = TTLCache(ttl=600)


def cached_history(session: Session, *, now: datetime, policy: BalancingPolicy) -> History:
    """The city's history for today under `policy`, shared by the requests of a process."""
    key = ("history", local_day(now), policy.history_weeks, policy.sources)
    return _HISTORY.get(session, key, lambda: load_history(session, now=now, policy=policy))


def _utc_offset_hours() -> int:
    # Ho Chi Minh City keeps UTC+7 all year (no daylight saving).
    offset = datetime(2026, 1, 1, tzinfo=LOCAL_TZ).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 3600)


def open_minutes_by_hour(centre: Centre, day: date) -> dict[int, float]:
    """Minutes the centre is open in each local hour of `day`."""
    minutes: dict[int, float] = defaultdict(float)
    for start, end in opening_periods(centre, day):
        at = start.hour * 60 + start.minute
        stop = end.hour * 60 + end.minute
        while at < stop:
            step = min(stop, (at // 60 + 1) * 60) - at
            minutes[at // 60] += step
            at += step
    return dict(minutes)


def forecast_walk_ins(
    history: History,
    centre: Centre,
    service_id: int,
    day: date,
    counter_equivalents: float,
    policy: BalancingPolicy,
    hours: dict[int, float] | None = None,
) -> dict[int, float]:
    """Expected unscheduled arrivals at a line per local hour of `day`.

    With at least `min_history_days` days of this weekday on record: the mean count per
    hour over those days. Otherwise the configured volume (`walk_ins_per_counter` × the
    line's counters), spread over the opening hours. `hours`: the day's
    `open_minutes_by_hour`, when the caller has it already.
    """
    weekday = day.weekday()
    seen = history.days.get((centre.id, weekday), 0)
    if hours is None:
        hours = open_minutes_by_hour(centre, day)
    if not hours:
        return {}
    if seen >= policy.min_history_days:
        return {
            h: history.counts.get((centre.id, service_id, weekday, h), 0) / seen
            for h in sorted(hours)
        }
    daily = policy.walk_ins_per_counter * counter_equivalents
    open_total = sum(hours.values())
    return {h: daily * m / open_total for h, m in sorted(hours.items())}
