"""The load the last balancing pass found, stored per centre and day (core.models.CentreDayLoad).

The 15-minute balancing job computes forecasts, capacities and Erlang C for the whole city
(about a second for 168 centres × 14 days) and keeps the result here; booking suggestions
and the dashboard read it with one indexed query. A snapshot older than `max_age` is ignored:
callers then rank on bookings alone rather than on a stale picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.models import CentreDayLoad


class CentreDayFigures(Protocol):
    """What a balancing pass found for one centre and day (core.operations.balancing)."""

    centre_id: int
    day: date
    utilisation: float
    overloaded: bool
    officers: int
    needed: int


# Twice the balancing interval: one missed run is tolerated, two are not.
MAX_AGE = timedelta(minutes=30)


@dataclass(frozen=True)
class DayLoad:
    utilisation: float | None
    overloaded: bool
    officers: int
    needed: int


def store(
    session: Session, centres: Mapping[tuple[int, date], CentreDayFigures], *, now: datetime
) -> int:
    """Replace the snapshot rows of every (centre, day) in `centres` (a balancing report's
    figures); returns rows written.

    Days the report covers but a centre is closed on lose their old row, so a closure
    declared since the last pass does not leave a stale figure behind.
    """
    if not centres:
        return 0
    days = sorted({day for _, day in centres})
    centre_ids = sorted({centre_id for centre_id, _ in centres})
    session.execute(
        delete(CentreDayLoad).where(
            CentreDayLoad.day >= days[0],
            CentreDayLoad.day <= days[-1],
            CentreDayLoad.centre_id.in_(centre_ids),
        )
    )
    rows = [
        {
            "centre_id": c.centre_id,
            "day": c.day,
            "utilisation": None if math.isinf(c.utilisation) else round(c.utilisation, 4),
            "overloaded": c.overloaded,
            "officers": c.officers,
            "needed": c.needed,
            "computed_at": now,
        }
        for c in centres.values()
    ]
    session.execute(insert(CentreDayLoad), rows)
    return len(rows)


def read(
    session: Session,
    first: date,
    last: date,
    *,
    now: datetime,
    centre_ids: Iterable[int] | None = None,
    max_age: timedelta = MAX_AGE,
) -> dict[tuple[int, date], DayLoad]:
    """Fresh snapshot rows from `first` to `last` (inclusive), by (centre id, day)."""
    q = select(
        CentreDayLoad.centre_id,
        CentreDayLoad.day,
        CentreDayLoad.utilisation,
        CentreDayLoad.overloaded,
        CentreDayLoad.officers,
        CentreDayLoad.needed,
    ).where(
        CentreDayLoad.day >= first,
        CentreDayLoad.day <= last,
        CentreDayLoad.computed_at >= now - max_age,
    )
    if centre_ids is not None:
        q = q.where(CentreDayLoad.centre_id.in_(list(centre_ids)))
    return {(r[0], r[1]): DayLoad(r[2], r[3], r[4], r[5]) for r in session.execute(q)}
