"""The load the last balancing pass found, stored per centre and day (core.models.CentreDayLoad).

The 15-minute balancing job computes forecasts, capacities and Erlang C for the whole city
(about a second for 168 centres × 14 days) and keeps the result here; booking suggestions
and the dashboard read it with one indexed query. A snapshot older than `max_age` is ignored:
callers then rank on bookings alone rather than on a stale picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.models import CentreDayLoad

if TYPE_CHECKING:  # core.balancing imports core.availability, which reads snapshots
    from core.balancing import LoadReport

# Twice the balancing interval: one missed run is tolerated, two are not.
MAX_AGE = timedelta(minutes=30)


@dataclass(frozen=True)
class DayLoad:
    utilisation: float | None
    overloaded: bool
    officers: int
    needed: int


def store(session: Session, report: LoadReport, *, now: datetime) -> int:
    """Replace the snapshot rows of every (centre, day) in `report`; returns rows written.

    Days the report covers but a centre is closed on lose their old row, so a closure
    declared since the last pass does not leave a stale figure behind.
    """
    if not report.centres:
        return 0
    days = sorted({day for _, day in report.centres})
    centre_ids = sorted({centre_id for centre_id, _ in report.centres})
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
        for c in report.centres.values()
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
