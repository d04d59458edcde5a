"""Finding a procedure, a centre and a slot: the read-only steps before the booking form.

The centre and slot steps are shared with rescheduling, so they are built as plain context
dictionaries here and the views only choose where the links lead.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from booking.formatting import NEARLY_FULL
from booking.forms import parse_day, parse_float, parse_int, parse_page
from core.booking.availability import (
    FreeSlot,
    RankedCentre,
    free_slots,
    rank_centres,
    takes_procedure,
)
from core.catalogue.search import ProcedureEntry, index
from core.common.errors import NotFound
from core.common.text import fold
from core.common.timeutil import local_day, to_local
from core.models import Centre, Field, Service
from core.places import load as load_snapshot
from core.places.directory import get_centre, search_centres
from web.clock import clock
from web.extensions import db

RESULTS_PER_PAGE = 10
CENTRES_PER_PAGE = 8
EXAMPLE_SEARCHES = ("khai sinh", "kết hôn", "hộ tịch", "chứng thực", "cư trú")


@dataclass(frozen=True)
class Origin:
    """Where the citizen starts from, for distances."""

    lat: float
    lon: float
    label: str


def origin_at(centre: Centre) -> Origin | None:
    """Distances measured from a centre (the citizen's own ward, or the current booking)."""
    if centre.lat is None or centre.lon is None:
        return None
    return Origin(centre.lat, centre.lon, centre.name)


def procedure_or_404(code: str) -> ProcedureEntry:
    proc = index.get(db.session, code)
    if proc is None:
        raise NotFound("procedure_not_found", field="procedure")
    return proc


def centre_or_404(code: str) -> Centre:
    centre = get_centre(db.session, code)
    if centre is None or not centre.active:
        raise NotFound("centre_not_found", field="centre")
    return centre


def centre_takes(centre: Centre, proc: ProcedureEntry) -> bool:
    """Whether any active line at `centre` receives `proc`."""
    found = db.session.scalar(
        select(Service.id)
        .where(Service.centre_id == centre.id, Service.active.is_(True), takes_procedure(proc))
        .limit(1)
    )
    return found is not None


def service_takes(service_id: int, proc: ProcedureEntry) -> bool:
    """Whether the line `service_id` receives `proc`."""
    found = db.session.scalar(
        select(Service.id).where(Service.id == service_id, takes_procedure(proc)).limit(1)
    )
    return found is not None


def _fields() -> list[tuple[int, str]]:
    rows = db.session.execute(select(Field.id, Field.name)).all()
    return sorted(((r[0], r[1]) for r in rows), key=lambda r: fold(r[1]))


def search():
    """Home page: find a procedure by words (diacritics optional) or code, optionally by field."""
    q = request.args.get("q", "").strip()[:200]
    field_id = parse_int(request.args.get("field"))
    page = parse_page(request.args.get("page"))
    results = None
    if q or field_id:
        results = index.search(
            db.session,
            q,
            field_id=field_id,
            offset=(page - 1) * RESULTS_PER_PAGE,
            limit=RESULTS_PER_PAGE,
        )
    return render_template(
        "booking/search.html",
        q=q,
        field_id=field_id,
        fields=_fields(),
        results=results,
        page=page,
        pages=math.ceil(results.total / RESULTS_PER_PAGE) if results else 0,
        examples=EXAMPLE_SEARCHES,
    )


def _origin(args: Mapping[str, str]) -> tuple[Origin | None, list[Centre], str | None]:
    """The citizen's starting point from ?near=<centre>, ?lat=&lon= or ?place=<ward name>.

    Returns the origin (if known), ward matches to choose from, and a notice to show.
    """
    near = args.get("near", "").strip()
    centre = get_centre(db.session, near) if near else None
    if centre is not None and (origin := origin_at(centre)):
        return origin, [], None
    lat = parse_float(args.get("lat"), -90, 90)
    lon = parse_float(args.get("lon"), -180, 180)
    if lat is not None and lon is not None:
        return Origin(lat, lon, _("vị trí hiện tại của bạn")), [], None
    place = args.get("place", "").strip()[:100]
    if not place:
        return None, [], None
    matches = [c for c in search_centres(db.session, place, limit=8) if origin_at(c)]
    if len(matches) == 1:
        return origin_at(matches[0]), [], None
    if not matches:
        return None, [], _("Không tìm thấy phường, xã nào có tên “%(place)s”.", place=place)
    return None, matches, None


def _crowded(ranked: list[RankedCentre], origin: Origin | None) -> RankedCentre | None:
    """The centre the citizen would go to first, if it is nearly full."""
    if not ranked:
        return None
    with_distance = [r for r in ranked if r.distance_km is not None]
    first = (
        min(with_distance, key=lambda r: r.distance_km or 0)
        if origin and with_distance
        else ranked[0]
    )
    return first if first.load >= NEARLY_FULL or first.overloaded else None


def centre_choice(
    proc: ProcedureEntry, args: Mapping[str, str], *, now: datetime, default: Origin | None = None
) -> dict:
    """Context for the centre step: centres taking `proc`, ranked from the citizen's origin."""
    origin, matches, notice = _origin(args)
    origin = origin or default
    ranked = rank_centres(
        db.session,
        proc,
        now=now,
        lat=origin.lat if origin else None,
        lon=origin.lon if origin else None,
    )
    page = parse_page(args.get("page"))
    start = (page - 1) * CENTRES_PER_PAGE
    return {
        "proc": proc,
        "origin": origin,
        "matches": matches,
        "notice": notice,
        "place": args.get("place", "").strip()[:100],
        "ranked": ranked[start : start + CENTRES_PER_PAGE],
        "total": len(ranked),
        "page": page,
        "pages": max(math.ceil(len(ranked) / CENTRES_PER_PAGE), 1),
        "crowded": _crowded(ranked, origin),
        "nearly_full": NEARLY_FULL,
    }


def centres(code: str):
    proc = procedure_or_404(code)
    return render_template(
        "booking/centres.html", flow="book", **centre_choice(proc, request.args, now=clock())
    )


@dataclass(frozen=True)
class Day:
    day: date
    free: int
    capacity: int

    @property
    def booked_share(self) -> float:
        return 1 - self.free / self.capacity if self.capacity else 1.0


def _by_day(slots: list[FreeSlot]) -> OrderedDict[date, list[FreeSlot]]:
    days: OrderedDict[date, list[FreeSlot]] = OrderedDict()
    for slot in slots:
        days.setdefault(local_day(slot.starts_at), []).append(slot)
    return days


def _overloaded(centre: Centre, day: date, now: datetime) -> bool:
    """The last balancing pass found `centre` overloaded on `day` (core.places.load)."""
    found = load_snapshot.read(db.session, day, day, now=now, centre_ids=[centre.id])
    day_load = found.get((centre.id, day))
    return day_load is not None and day_load.overloaded


def slot_choice(
    proc: ProcedureEntry, centre: Centre, day_raw: str | None, *, now: datetime
) -> dict:
    """Context for the slot step: day tabs over the booking window and the chosen day's slots."""
    horizon = current_app.config["BOOKING_DAYS"]
    slots = free_slots(
        db.session,
        proc,
        now=now,
        centre_id=centre.id,
        first_day=local_day(now),
        days=horizon,
        limit=5000,
        include_full=True,
    )
    by_day = _by_day(slots)
    days = [
        Day(d, sum(s.remaining for s in day), sum(s.capacity for s in day))
        for d, day in by_day.items()
    ]
    wanted = parse_day(day_raw)
    selected = next((d for d in days if d.day == wanted), None) or next(
        (d for d in days if d.free), days[0] if days else None
    )
    chosen = by_day.get(selected.day, []) if selected else []
    overloaded = selected is not None and _overloaded(centre, selected.day, now)
    nearby: list[RankedCentre] = []
    if selected and (selected.booked_share >= NEARLY_FULL or overloaded) and centre.lat is not None:
        nearby = [
            r
            for r in rank_centres(
                db.session, proc, now=now, lat=centre.lat, lon=centre.lon, limit=6
            )
            if r.centre.id != centre.id and r.next_free_slot is not None and not r.overloaded
        ][:3]
    return {
        "proc": proc,
        "centre": centre,
        "days": days,
        "selected": selected,
        "morning": [s for s in chosen if to_local(s.starts_at).hour < 12],
        "afternoon": [s for s in chosen if to_local(s.starts_at).hour >= 12],
        "several_services": len({s.service_prefix for s in chosen}) > 1,
        "nearby": nearby,
        "overloaded": overloaded,
        "takes": bool(slots) or centre_takes(centre, proc),
    }


def slots(code: str, centre_code: str):
    proc = procedure_or_404(code)
    centre = centre_or_404(centre_code)
    ctx = slot_choice(proc, centre, request.args.get("day"), now=clock())
    status = 200 if ctx["takes"] else 422
    return render_template("booking/slots.html", flow="book", **ctx), status
