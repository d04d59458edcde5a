"""Where and when a procedure can be booked: free slots, centre ranking, alternatives."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    bindparam,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from core.catalogue.search import ProcedureEntry
from core.common.timeutil import day_bounds_utc, local_day
from core.models import (
    Centre,
    Procedure,
    Service,
    Slot,
    takes_clause,
)
from core.places import load as load_snapshot
from core.places.calendar import closed_clause

HORIZON_DAYS = 14
# Centres looked at for alternatives to a full slot, nearest first.
_NEARBY = 8


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def takes_procedure(proc: ProcedureEntry) -> ColumnElement[bool]:
    """SQL condition: the service in the query (`Service`) takes procedure `proc`."""
    return _takes(proc.field_id, proc.level, proc.id)


def _takes(field_id: Any, level: Any, procedure_id: Any) -> ColumnElement[bool]:
    """`takes_procedure` over values or bound parameters."""
    return takes_clause(
        Service.id, Service.level, procedure_id=procedure_id, field_id=field_id, level=level
    )


@dataclass(frozen=True)
class FreeSlot:
    id: int
    centre_code: str
    centre_name: str
    service_prefix: str
    service_name: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    remaining: int


def _bookable(takes: ColumnElement[bool], now: Any) -> Select:
    """Slots open for booking at `now` at active centres' services meeting `takes` (see
    `takes_procedure`), with what a FreeSlot shows (not ordered, not limited)."""
    return (
        select(
            Slot.id,
            Centre.code,
            Centre.name,
            Service.prefix,
            Service.name,
            Slot.starts_at,
            Slot.ends_at,
            Slot.capacity,
            Slot.booked,
        )
        .join(Service, Service.id == Slot.service_id)
        .join(Centre, Centre.id == Slot.centre_id)
        .where(
            Slot.starts_at > now,
            takes,
            Centre.active.is_(True),
            or_(Slot.opens_at.is_(None), Slot.opens_at <= now),
            # A closure declared after the slots were generated leaves slots nobody may book.
            ~closed_clause(Slot.centre_id, Slot.day),
        )
    )


def _free_slot(row: Row) -> FreeSlot:
    return FreeSlot(*row[:8], max(row[7] - row[8], 0))


def free_slots(
    session: Session,
    proc: ProcedureEntry,
    *,
    now: datetime,
    centre_id: int | None = None,
    centre_ids: list[int] | None = None,
    first_day: date | None = None,
    days: int = 1,
    limit: int = 500,
    include_full: bool = False,
) -> list[FreeSlot]:
    """Slots at services taking `proc`, from `first_day` for `days` days, soonest first."""
    q = _bookable(takes_procedure(proc), now).order_by(Slot.starts_at, Service.prefix).limit(limit)
    if centre_id is not None:
        q = q.where(Slot.centre_id == centre_id)
    if centre_ids is not None:
        q = q.where(Slot.centre_id.in_(centre_ids))
    if first_day is not None:
        start, _ = day_bounds_utc(first_day)
        _, end = day_bounds_utc(first_day + timedelta(days=max(days, 1) - 1))
        q = q.where(Slot.starts_at >= start, Slot.starts_at < end)
    if not include_full:
        q = q.where(Slot.booked < Slot.capacity)
    return [_free_slot(r) for r in session.execute(q)]


def _proc_params(proc: ProcedureEntry, now: datetime) -> dict[str, Any]:
    return {"p_field": proc.field_id, "p_level": proc.level, "p_procedure": proc.id, "p_now": now}


# Alternatives to a full slot, built once (a 409 is common when a popular slot fills up),
# over bound parameters (`_proc_params`).
_NOW = bindparam("p_now", type_=Slot.starts_at.type)
_TAKES = _takes(
    bindparam("p_field", type_=Procedure.field_id.type),
    bindparam("p_level", type_=Service.level.type),
    bindparam("p_procedure", type_=Procedure.id.type),
)


def _soonest_free(centre_id: Any, limit: Any) -> Select:
    """The soonest free slots at one centre (the bound procedure, at `p_now`)."""
    return (
        _bookable(_TAKES, _NOW)
        .where(Slot.centre_id == centre_id, Slot.booked < Slot.capacity)
        .order_by(Slot.starts_at, Service.prefix)
        .limit(limit)
    )


_FIRST_FREE_HERE = _soonest_free(bindparam("p_centre"), bindparam("p_limit"))
# The soonest free slot at each centre of `p_centres`: for each, one index walk along the
# centre's slots in time order (ix_slots_centre_starts) that stops at the first free one, then
# those slots' rows. A window numbering every free slot of the centres read and sorted them all
# (1,272 of 5,562 rows for 8 centres of the city: 6.7 ms of a 409's 18).
_near = Centre.__table__.alias("near")
_first_free_at = (
    _soonest_free(_near.c.id, 1).with_only_columns(Slot.id).correlate(_near).scalar_subquery()
)
_firsts = (
    select(_first_free_at.label("slot_id"))
    .where(_near.c.id.in_(bindparam("p_centres", expanding=True)))
    .subquery("firsts")
)
_FIRST_FREE_AT_EACH = (
    select(*_bookable(_TAKES, _NOW).selected_columns)
    .select_from(_firsts)
    .join(Slot, Slot.id == _firsts.c.slot_id)
    .join(Service, Service.id == Slot.service_id)
    .join(Centre, Centre.id == Slot.centre_id)
)
# Nearest first by the equirectangular distance (exact enough across a city): `p_k` is the
# cosine of the latitude, so that degrees of longitude count for what they measure there.
_dlat, _dlon = Centre.lat - bindparam("p_lat"), (Centre.lon - bindparam("p_lon")) * bindparam("p_k")
_NEAREST_CENTRES = (
    select(Centre.id, Centre.code)
    .where(Centre.active.is_(True), Centre.id != bindparam("p_centre"), Centre.lat.is_not(None))
    .order_by(_dlat * _dlat + _dlon * _dlon, Centre.code)
    .limit(bindparam("p_limit"))
)


def first_free_at_each(
    session: Session, proc: ProcedureEntry, *, now: datetime, centre_ids: list[int]
) -> dict[str, FreeSlot]:
    """The soonest free slot for `proc` at each of `centre_ids` that has one, by centre code,
    in one query that reads only those slots (`_FIRST_FREE_AT_EACH`)."""
    if not centre_ids:
        return {}
    params = {**_proc_params(proc, now), "p_centres": list(centre_ids)}
    return {row[1]: _free_slot(row) for row in session.execute(_FIRST_FREE_AT_EACH, params)}


@dataclass(frozen=True)
class RankedCentre:
    centre: Centre
    distance_km: float | None
    next_free_slot: datetime | None
    load: float  # booked / capacity over the horizon, 0..1
    score: float
    # The last balancing pass found the centre overloaded on the day of its first free slot
    # (bookings plus forecast walk-ins beyond what its officers serve in time).
    overloaded: bool = False


# Score added for a centre the balancing pass found overloaded on the day: worth crossing
# this many kilometres to a centre with room (HCMC's urban wards are 1–3 km apart).
OVERLOAD_PENALTY_KM = 20.0


def rank_score(
    distance_km: float | None,
    next_free: datetime | None,
    load: float,
    now: datetime,
    overloaded: bool = False,
) -> float:
    """Lower is better: kilometres, plus 3 km per day of waiting, plus penalties for crowding.

    A citizen will cross a few wards to be served days earlier; a centre above 85% booked
    is pushed down so the crowd spreads before it forms, and one whose officers cannot
    serve the day's bookings and forecast walk-ins in time (the balancing pass's overload
    flag) goes behind every centre with room within OVERLOAD_PENALTY_KM.
    """
    if next_free is None:
        return math.inf
    wait_days = max((next_free - now).total_seconds(), 0) / 86400
    crowding = max(load - 0.85, 0) * 40
    penalty = OVERLOAD_PENALTY_KM if overloaded else 0.0
    return (distance_km or 0.0) + 3.0 * wait_days + crowding + penalty


def rank_centres(
    session: Session,
    proc: ProcedureEntry,
    *,
    now: datetime,
    lat: float | None = None,
    lon: float | None = None,
    limit: int | None = None,
    snapshot: Mapping[tuple[int, date], load_snapshot.DayLoad] | None = None,
) -> list[RankedCentre]:
    """Centres taking `proc`, ranked by distance, earliest free slot and load.

    Load is the centre's bookings over the horizon and, where the last balancing pass is
    fresh (core.places.load), whether it is overloaded on the day of its first free slot.
    A caller that reads the snapshot for more days itself passes it as `snapshot`.
    """
    horizon = now + timedelta(days=HORIZON_DAYS)
    agg = (
        select(
            Slot.centre_id,
            func.min(case((Slot.booked < Slot.capacity, Slot.starts_at))),
            func.sum(Slot.booked),
            func.sum(Slot.capacity),
        )
        .join(Service, Service.id == Slot.service_id)
        .where(
            Slot.starts_at > now,
            Slot.starts_at < horizon,
            takes_procedure(proc),
            or_(Slot.opens_at.is_(None), Slot.opens_at <= now),
        )
        .group_by(Slot.centre_id)
    )
    stats = {row[0]: row[1:] for row in session.execute(agg)}
    centres = session.scalars(
        select(Centre).where(Centre.active.is_(True), Centre.id.in_(list(stats)))
    ).all()
    if snapshot is None:
        today = local_day(now)
        snapshot = load_snapshot.read(
            session, today, today + timedelta(days=HORIZON_DAYS), now=now, centre_ids=list(stats)
        )
    ranked = []
    for centre in centres:
        first_free, booked, capacity = stats[centre.id]
        if isinstance(first_free, str):
            first_free = Slot.__table__.c.starts_at.type.process_result_value(first_free, None)
        day_load = snapshot.get((centre.id, local_day(first_free))) if first_free else None
        overloaded = day_load is not None and day_load.overloaded
        distance = None
        if (
            lat is not None
            and lon is not None
            and centre.lat is not None
            and centre.lon is not None
        ):
            distance = haversine_km(lat, lon, centre.lat, centre.lon)
        load = (booked or 0) / capacity if capacity else 1.0
        score = rank_score(distance, first_free, load, now, overloaded)
        ranked.append(RankedCentre(centre, distance, first_free, load, score, overloaded))
    ranked.sort(key=lambda r: (r.score, r.centre.code))
    return ranked[:limit] if limit else ranked


class Place(Protocol):
    """Where a centre is: a Centre, or a row with these columns."""

    id: int
    lat: float | None
    lon: float | None


def alternatives(
    session: Session,
    proc: ProcedureEntry,
    *,
    now: datetime,
    centre: Place,
    after: datetime,
    limit: int = 5,
) -> list[FreeSlot]:
    """Free slots to offer instead of a full one: same centre first, then the nearest centres."""
    here = {**_proc_params(proc, now), "p_centre": centre.id, "p_limit": limit}
    same = [
        s
        for s in map(_free_slot, session.execute(_FIRST_FREE_HERE, here))
        if s.starts_at >= after - timedelta(hours=12)
    ]
    if len(same) >= limit or centre.lat is None or centre.lon is None:
        return same[:limit]
    # The nearest centres, then one query for the soonest free slot at each, nearest first.
    nearest = session.execute(
        _NEAREST_CENTRES,
        {
            "p_centre": centre.id,
            "p_lat": centre.lat,
            "p_lon": centre.lon,
            "p_k": math.cos(math.radians(centre.lat)),
            "p_limit": _NEARBY,
        },
    ).all()
    firsts = first_free_at_each(session, proc, now=now, centre_ids=[c.id for c in nearest])
    same.extend(firsts[c.code] for c in nearest if c.code in firsts)
    return same[:limit]
