"""Centres with room for a procedure on a day, ranked for a citizen: the balancing pass's
view of load steers citizens away from overloaded centres."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.booking.availability import haversine_km, takes_procedure
from core.catalogue.search import ProcedureEntry
from core.models import Centre, Service, Slot
from core.operations.balancing import BalancingPolicy, LoadReport, load
from core.operations.forecast import History


@dataclass(frozen=True)
class CentreRoom:
    """A centre taking the procedure on a day, with its free seats and load."""

    centre_id: int
    centre_code: str
    centre_name: str
    distance_km: float | None
    remaining: int
    utilisation: float
    overloaded: bool
    reason: str  # "nearest", "room_nearby" or "overloaded"


def centres_with_room(
    session: Session,
    proc: ProcedureEntry,
    day: date,
    *,
    now: datetime,
    lat: float | None = None,
    lon: float | None = None,
    policy: BalancingPolicy | None = None,
    history: History | None = None,
    limit: int = 10,
) -> list[CentreRoom]:
    """Centres with free seats for `proc` on `day`, ranked for a citizen near (lat, lon).

    Overloaded centres (the procedure's services past the threshold, or too few officers for
    the service-level target) go after every centre with room, however near; among the rest,
    kilometres plus ten per unit of utilisation, so a half-empty centre 3 km further
    beats a nearly full one next door.
    """
    policy = policy or BalancingPolicy()
    free = _free_seats(session, proc, day, now)
    if not free:
        return []
    report = load(session, list(free), day, 1, now=now, policy=policy, history=history)
    util = _utilisation(session, proc, report)
    rows = []
    for c in session.scalars(select(Centre).where(Centre.id.in_(list(free)))).all():
        km = None
        if lat is not None and lon is not None and c.lat is not None and c.lon is not None:
            km = round(haversine_km(lat, lon, c.lat, c.lon), 2)
        u = util.get(c.id, 0.0)
        day_load = report.centres.get((c.id, day))
        over = u > policy.overload_threshold or (day_load is not None and day_load.overloaded)
        rows.append((c, km, u, over))
    rows.sort(key=lambda r: (r[3], (r[1] or 0.0) + 10.0 * min(r[2], 10.0), r[0].code))
    nearest = min((r[1] or 0.0 for r in rows if not r[3]), default=None)
    out = []
    for c, km, u, over in rows[:limit]:
        reason = "overloaded" if over else "nearest" if (km or 0.0) == nearest else "room_nearby"
        out.append(CentreRoom(c.id, c.code, c.name, km, int(free[c.id]), round(u, 3), over, reason))
    return out


def _free_seats(session: Session, proc: ProcedureEntry, day: date, now: datetime) -> dict:
    """Free seats per centre id in slots of `day` still ahead and open for booking."""
    return dict(
        session.execute(
            select(Slot.centre_id, func.sum(Slot.capacity - Slot.booked))
            .join(Service, Service.id == Slot.service_id)
            .where(
                Slot.day == day,
                Slot.starts_at > now,
                Slot.booked < Slot.capacity,
                or_(Slot.opens_at.is_(None), Slot.opens_at <= now),
                takes_procedure(proc),
            )
            .group_by(Slot.centre_id)
        ).all()
    )


def _utilisation(session: Session, proc: ProcedureEntry, report: LoadReport) -> dict[int, float]:
    """Per centre, the highest utilisation among its services that take `proc`."""
    taking = set(
        session.scalars(select(Service.id).where(Service.active.is_(True), takes_procedure(proc)))
    )
    util: dict[int, float] = defaultdict(float)
    for s in report.services:
        if s.service_id in taking:
            util[s.centre_id] = max(util[s.centre_id], s.utilisation)
    return util
