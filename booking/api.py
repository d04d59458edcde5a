"""Public booking API: catalogue, availability and appointments (../shared/API.md).

Handlers are thin: parse (schemas), call core (writes inside one `transaction()`), present.
Refusals are domain errors, which the app renders as problem+json in the request's language.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, request, url_for
from flask_babel import get_locale
from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from booking import presenters
from booking import schemas as s
from core.booking import appointments as booking
from core.booking.availability import (
    HORIZON_DAYS,
    FreeSlot,
    RankedCentre,
    alternatives,
    free_slots,
    haversine_km,
    rank_centres,
    rank_score,
    takes_procedure,
)
from core.catalogue.search import ProcedureEntry, index
from core.common import ics, qr
from core.common.errors import Conflict, InvalidInput, NotFound
from core.common.text import fold
from core.common.timeutil import day_bounds_utc, local_day
from core.models import Centre, Closure, Counter, Field, Procedure, ProcedureLevel, Service, Slot
from core.places import load as load_snapshot
from core.places.calendar import holiday_name
from core.places.directory import get_centre
from web.api import ApiBlueprint, Problem, documented_body, json_object, json_response
from web.clock import clock
from web.db import transaction
from web.extensions import db, limiter
from web.links import public_url
from web.messages import message
from web.problems import from_domain
from web.settings import booking_rules, citizen_key, secret

# Conflicts about the chosen slot: the answer carries other slots to pick instead.
SLOT_CONFLICTS = frozenset({"slot_full", "slot_past", "centre_closed", "slot_not_open"})
SUGGESTIONS = 5
_CENTRE_CODE = re.compile(r"[A-Za-z0-9._-]{1,16}")
_BOOKING_CODE = re.compile(r"[A-Za-z0-9]{1,16}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,64}")
_PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
_TOKEN_PARAMS = [
    {
        "in": "header",
        "name": "X-Manage-Token",
        "schema": {"type": "string"},
        "description": "The manage token returned at booking.",
    },
]


# Problem+json parsing errors, and exempt from CSRF: no cookie authenticates a booking call.
blp = ApiBlueprint(
    "booking_api",
    __name__,
    url_prefix="/api/v1",
    description="Catalogue, availability and appointments",
    template_folder="templates",
)
limiter.limit(lambda: current_app.config["RATE_LIMIT_DEFAULT"])(blp)


def _procedure(code: str | None, field: str = "procedure") -> ProcedureEntry:
    entry = index.get(db.session, code or "")
    if entry is None:
        raise NotFound("procedure_not_found", field=field)
    return entry


def _centre(code: str | None, field: str = "centre") -> Centre:
    # Codes are short and plain: anything else cannot exist, so do not ask the database.
    centre = get_centre(db.session, code) if code and _CENTRE_CODE.fullmatch(code) else None
    if centre is None or not centre.active:
        raise NotFound("centre_not_found", field=field)
    return centre


def _first_day(wanted: date | None, now: datetime) -> date:
    # Any day the schema takes (EARLIEST_DAY to LATEST_DAY): one without slots has none.
    return local_day(now) if wanted is None else wanted


def _place(args: dict[str, Any]) -> tuple[float | None, float | None]:
    return args.get("lat"), args.get("lon")


# --- Catalogue -------------------------------------------------------------------------------


def _field_id(value: str) -> int:
    """A field given by id or by name (diacritics optional); -1 when there is no such field."""
    if value.isascii() and value.isdigit():
        return int(value) if len(value) < 10 else -1
    wanted = fold(value)
    for field_id, name in db.session.execute(select(Field.id, Field.name)):
        if fold(name) == wanted:
            return field_id
    return -1


@blp.route("/procedures")
@blp.arguments(s.ProcedureQuery, location="query")
@blp.response(200, s.ProcedurePage)
def list_procedures(args: dict[str, Any]):
    """Search procedures by code or name words, with or without diacritics."""
    page, per_page = args["page"], args["per_page"]
    field_id = _field_id(args["field"]) if args.get("field") else None
    level = ProcedureLevel(args["level"]) if args.get("level") else None
    found = index.search(
        db.session,
        args["q"],
        field_id=field_id,
        level=level,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    items = [presenters.procedure_item(e) for e in found.items]
    return json_response({"items": items, "total": found.total, "page": page, "per_page": per_page})


@blp.route("/procedures/<code>")
@blp.response(200, s.ProcedureDetail)
@blp.alt_response(404, schema=Problem, description="Unknown procedure")
def get_procedure(code: str):
    """One procedure, with its expected intake time, fee and legal processing time."""
    entry = _procedure(code, field="code")
    procedure = db.session.get(Procedure, entry.id)
    if procedure is None:  # the in-memory catalogue is a few minutes stale at most
        raise NotFound("procedure_not_found", field="code")
    return json_response(presenters.procedure_detail(entry, procedure))


# --- Centres, slots, suggestions -------------------------------------------------------------


def _centres_by_place(lat: float | None, lon: float | None) -> list[dict[str, Any]]:
    centres = db.session.scalars(select(Centre).where(Centre.active.is_(True))).all()

    def distance(c: Centre) -> float | None:
        if None in (lat, lon, c.lat, c.lon):
            return None
        return haversine_km(lat, lon, c.lat, c.lon)  # type: ignore[arg-type]

    rows = sorted(((distance(c), c) for c in centres), key=lambda t: (t[0] or 0.0, t[1].name))
    return [presenters.centre_item(c, distance_km=d) for d, c in rows]


@blp.route("/centres")
@blp.arguments(s.CentreQuery, location="query")
@blp.response(200, s.CentreList)
@blp.alt_response(404, schema=Problem, description="Unknown procedure")
def list_centres(args: dict[str, Any]):
    """Centres taking a procedure, ranked by distance, earliest free slot and load.

    Without `procedure`, every active centre by distance (or name), without slot figures.
    """
    lat, lon = _place(args)
    if not args.get("procedure"):
        return json_response({"items": _centres_by_place(lat, lon)})
    proc = _procedure(args["procedure"])
    ranked = rank_centres(db.session, proc, now=clock(), lat=lat, lon=lon)
    items = [
        presenters.centre_item(
            r.centre,
            distance_km=r.distance_km,
            next_free_slot=r.next_free_slot,
            load=r.load,
            overloaded=r.overloaded,
        )
        for r in ranked
    ]
    return json_response({"items": items})


def _closed_days(centre: Centre, today: date) -> list[tuple[date, str]]:
    last = today + timedelta(days=HORIZON_DAYS)
    closures = db.session.execute(
        select(Closure.day, Closure.reason).where(
            Closure.day >= today,
            Closure.day < last,
            (Closure.centre_id == centre.id) | Closure.centre_id.is_(None),
        )
    ).all()
    days = {day: reason for day, reason in closures}
    for offset in range(HORIZON_DAYS):
        day = today + timedelta(days=offset)
        name = holiday_name(day)
        if name:
            days.setdefault(day, name)
    return sorted(days.items())


@blp.route("/centres/<code>")
@blp.response(200, s.CentreDetail)
@blp.alt_response(404, schema=Problem, description="Unknown centre")
def get_centre_detail(code: str):
    """One centre with its services (ticket lines), opening hours and coming closed days."""
    centre = _centre(code, field="code")
    centre = db.session.scalars(
        select(Centre)
        .where(Centre.id == centre.id)
        .options(
            selectinload(Centre.services).selectinload(Service.fields),
            selectinload(Centre.services).selectinload(Service.procedures),
        )
    ).one()
    counters = db.session.scalar(
        select(func.count())
        .select_from(Counter)
        .where(Counter.centre_id == centre.id, Counter.active.is_(True))
    )
    body = presenters.centre_detail(
        centre, counters=counters or 0, closed_days=_closed_days(centre, local_day(clock()))
    )
    return json_response(body)


def _check_centre_takes(centre: Centre, proc: ProcedureEntry) -> None:
    takes = db.session.scalar(
        select(
            exists().where(
                Service.centre_id == centre.id, Service.active.is_(True), takes_procedure(proc)
            )
        )
    )
    if not takes:
        raise InvalidInput({"procedure": "procedure_not_taken"})


@blp.route("/slots")
@blp.arguments(s.SlotQuery, location="query")
@blp.response(200, s.SlotList)
@blp.alt_response(404, schema=Problem, description="Unknown procedure or centre")
@blp.alt_response(422, schema=Problem, description="The centre does not take the procedure")
def list_slots(args: dict[str, Any]):
    """Free slots for a procedure (at one centre or any), from a day for some days."""
    now = clock()
    proc = _procedure(args["procedure"])
    centre = _centre(args["centre"]) if args.get("centre") else None
    if centre is not None:
        _check_centre_takes(centre, proc)
    found = free_slots(
        db.session,
        proc,
        now=now,
        centre_id=centre.id if centre else None,
        first_day=_first_day(args.get("date"), now),
        days=args["days"],
    )
    return json_response({"items": [presenters.slot_item(slot) for slot in found]})


def _reasons(picked: list[tuple[RankedCentre, FreeSlot]]) -> list[str]:
    """Why each suggestion is there: the nearest, the earliest, the least loaded, or a balance."""
    distances = [r.distance_km for r, _ in picked if r.distance_km is not None]
    nearest = min(distances, default=None)
    earliest = min((slot.starts_at for _, slot in picked), default=None)
    least = min((r.load for r, _ in picked), default=None)
    reasons: list[str] = []
    used: set[str] = set()
    for r, slot in picked:
        candidates = [
            ("nearest", nearest is not None and r.distance_km == nearest),
            ("earliest", slot.starts_at == earliest),
            ("least_loaded", r.load == least),
        ]
        reason = next((name for name, hit in candidates if hit and name not in used), "balanced")
        used.add(reason)
        reasons.append(reason)
    return reasons


@blp.route("/suggestions")
@blp.arguments(s.SuggestionQuery, location="query")
@blp.response(200, s.SuggestionList)
@blp.alt_response(404, schema=Problem, description="Unknown procedure")
def list_suggestions(args: dict[str, Any]):
    """The best few (centre, first free slot) pairs across centres for a procedure and place.

    Centres the last balancing pass found overloaded on a slot's day are ranked behind those
    with room nearby, so a citizen near a crowded centre is offered its neighbours first.
    """
    now = clock()
    proc = _procedure(args["procedure"])
    lat, lon = _place(args)
    first_day = _first_day(args.get("date"), now)
    counted_from = max(now, day_bounds_utc(first_day)[0])
    # One read of the balancing snapshot, from today (the ranking's first free slots) to the
    # end of the wanted days (the slots offered).
    snapshot = load_snapshot.read(
        db.session, local_day(now), first_day + timedelta(days=HORIZON_DAYS), now=now
    )
    picked: list[tuple[RankedCentre, FreeSlot]] = []
    ranking = rank_centres(
        db.session, proc, now=now, lat=lat, lon=lon, limit=SUGGESTIONS * 2, snapshot=snapshot
    )
    for ranked in ranking:
        if ranked.next_free_slot is None:
            continue
        slots = free_slots(
            db.session,
            proc,
            now=now,
            centre_id=ranked.centre.id,
            first_day=first_day,
            days=HORIZON_DAYS,
            limit=1,
        )
        if slots:
            picked.append((ranked, slots[0]))

    def overloaded(p: tuple[RankedCentre, FreeSlot]) -> bool:
        day_load = snapshot.get((p[0].centre.id, local_day(p[1].starts_at)))
        return day_load is not None and day_load.overloaded

    # Ranked again from the wanted day: waiting is counted from when the citizen can come.
    picked.sort(
        key=lambda p: (
            rank_score(p[0].distance_km, p[1].starts_at, p[0].load, counted_from, overloaded(p)),
            p[0].centre.code,
        )
    )
    picked = picked[:SUGGESTIONS]
    items = [
        presenters.suggestion_item(
            r.centre,
            slot,
            distance_km=r.distance_km,
            load=r.load,
            overloaded=overloaded((r, slot)),
            reason=reason,
        )
        for (r, slot), reason in zip(picked, _reasons(picked), strict=True)
    ]
    return json_response({"items": items})


# --- Appointments ----------------------------------------------------------------------------


def _locale() -> str:
    return str(get_locale() or "vi")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput({"idempotency_key": "invalid_idempotency_key"})
    return key


def _appointment_code(code: str) -> str:
    if not _BOOKING_CODE.fullmatch(code):
        raise NotFound("appointment_not_found", field="code")
    return code


def _manage_token() -> str:
    # A header only: a token in the query string would be written into access logs.
    return request.headers.get("X-Manage-Token") or ""


def _appointment_url(code: str) -> str:
    return public_url("booking_api.get_appointment", code=code)


# When a refused slot is and where its centre is (Centre.id as `id`): where alternatives start.
_REFUSED_SLOT = (
    select(Slot.starts_at, Centre.id, Centre.lat, Centre.lon)
    .join(Centre, Centre.id == Slot.centre_id)
    .where(Slot.id == bindparam("slot_id"))
)


def _alternatives(procedure_code: str, slot_id: int, now: datetime) -> list[dict[str, Any]]:
    """Free slots to offer instead of one refused: same centre first, then nearby centres."""
    proc = index.get(db.session, procedure_code)
    place = db.session.execute(_REFUSED_SLOT, {"slot_id": slot_id}).one_or_none()
    if proc is None or place is None:
        return []
    found = alternatives(db.session, proc, now=now, centre=place, after=place.starts_at)
    return [presenters.slot_item(x) for x in found]


def _refused_slot(err: Conflict, procedure_code: str, slot_id: int, now: datetime) -> Response:
    if err.code not in SLOT_CONFLICTS:
        raise err
    return from_domain(err, alternatives=_alternatives(procedure_code, slot_id, now))


_BOOKING_RESPONSES = [
    (404, Problem, "Unknown slot or procedure (or, for a move, code or token)"),
    (409, s.SlotProblem, "Slot full, past, closed or not open yet (with `alternatives`)"),
    (422, Problem, "Invalid fields (`errors`: field → message), or procedure not taken there"),
    (429, Problem, "Over a per-citizen limit, or too many requests"),
]


def _document_errors(func):
    for status, schema, description in _BOOKING_RESPONSES:
        func = blp.alt_response(status, schema=schema, description=description)(func)
    return func


@blp.route("/appointments", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATE_LIMIT_BOOKING"])
@documented_body(blp, s.BookingBody)
@blp.response(201, s.AppointmentCreated, description="Booked")
@blp.alt_response(200, schema=s.AppointmentCreated, description="Replay of the same key")
@_document_errors
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,64}$"},
            "description": "Repeating a request with the same key returns the first booking.",
        }
    ]
)
def create_appointment():
    """Book a seat in a slot. Keep the `manage_token`: it proves ownership later."""
    # The busiest write of the site: its body is read by hand (same refusals as the schema).
    body = s.read_booking(json_object())
    now = clock()
    key = _idempotency_key()
    applicant = booking.validate_applicant(
        full_name=body["full_name"],
        phone=body["phone"],
        citizen_id=body["citizen_id"],
        email=body.get("email"),
        consent=body["consent"],
        now=now,
        key=citizen_key(),
    )
    try:
        # One statement on PostgreSQL (core.booking.appointments.book): no BEGIN and COMMIT round trips.
        with transaction(single_write=True) as session:
            booked = booking.book(
                session,
                slot_id=body["slot_id"],
                procedure_code=body["procedure"],
                applicant=applicant,
                now=now,
                rules=booking_rules(),
                secret=secret(),
                idempotency_key=key,
                locale=_locale(),
            )
            view = (
                presenters.appointment_view(session, booked.appointment_id)
                if booked.slot is None  # a replay: the appointment as it is now
                else presenters.new_appointment_view(
                    booked, booked.slot, _procedure(body["procedure"]), applicant.full_name
                )
            )
    except Conflict as err:
        return _refused_slot(err, body["procedure"], body["slot_id"], now)
    except IntegrityError:
        # Two first requests with one key from different citizens raced to the unique index.
        if key is None:
            raise
        raise Conflict("idempotency_key_reused", field="idempotency_key") from None
    answer = presenters.appointment(view, url=_appointment_url(booked.code))
    answer["manage_token"] = booked.manage_token
    return json_response(answer, 200 if booked.replayed else 201, _PRIVATE)


@blp.route("/appointments/<code>", parameters=_TOKEN_PARAMS)
@blp.response(200, s.Appointment)
@blp.alt_response(404, schema=Problem, description="Unknown code or wrong token")
def get_appointment(code: str):
    """The appointment, for its owner (same 404 for an unknown code and a wrong token)."""
    appt = booking.get_owned(db.session, _appointment_code(code), _manage_token())
    view = presenters.appointment_view(db.session, appt.id)
    return json_response(
        presenters.appointment(view, url=_appointment_url(appt.code)), headers=_PRIVATE
    )


@blp.route("/appointments/<code>/cancel", methods=["POST"], parameters=_TOKEN_PARAMS)
@blp.response(200, s.Appointment, description="Cancelled; the seat is free again")
@blp.alt_response(404, schema=Problem, description="Unknown code or wrong token")
@blp.alt_response(409, schema=Problem, description="Not active any more")
def cancel_appointment(code: str):
    """Cancel the appointment and give its seat back."""
    code, token = _appointment_code(code), _manage_token()
    with transaction() as session:
        appt = booking.get_owned(session, code, token)
        booking.cancel(session, appt, now=clock())
        view = presenters.appointment_view(session, appt.id)
    return json_response(
        presenters.appointment(view, url=_appointment_url(view.code)), headers=_PRIVATE
    )


@blp.route("/appointments/<code>/reschedule", methods=["POST"], parameters=_TOKEN_PARAMS)
@blp.arguments(s.RescheduleBody)
@blp.response(200, s.Appointment, description="Moved, atomically")
@blp.alt_response(404, schema=Problem, description="Unknown code or wrong token")
@_document_errors
def reschedule_appointment(body: dict[str, Any], code: str):
    """Move the appointment to another slot: the new seat is taken and the old one freed at once."""
    code, token, now = _appointment_code(code), _manage_token(), clock()
    procedure_code = ""
    try:
        with transaction() as session:
            appt = booking.get_owned(session, code, token)
            procedure_code = appt.procedure.code
            booking.reschedule(
                session, appt, slot_id=body["slot_id"], now=now, rules=booking_rules()
            )
            view = presenters.appointment_view(session, appt.id)
    except Conflict as err:
        return _refused_slot(err, procedure_code, body["slot_id"], now)
    return json_response(
        presenters.appointment(view, url=_appointment_url(view.code)), headers=_PRIVATE
    )


def _file(content: str | bytes, mimetype: str, filename: str | None = None) -> Response:
    response = current_app.response_class(content, mimetype=mimetype)
    response.headers.update(_PRIVATE)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@blp.route("/appointments/<code>/qr.svg", parameters=_TOKEN_PARAMS)
@blp.response(200, {"type": "string"}, content_type="image/svg+xml")
@blp.alt_response(404, schema=Problem, description="Unknown code or wrong token")
def appointment_qr_svg(code: str):
    """The appointment's QR code (signed payload the kiosk scans), as SVG."""
    appt = booking.get_owned(db.session, _appointment_code(code), _manage_token())
    svg = qr.svg(booking.qr_payload(secret(), appt), title=f"QR {appt.code}")
    return _file(svg, "image/svg+xml")


@blp.route("/appointments/<code>/qr.png", parameters=_TOKEN_PARAMS)
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
@blp.alt_response(404, schema=Problem, description="Unknown code or wrong token")
def appointment_qr_png(code: str):
    """The appointment's QR code as PNG, to download or print."""
    appt = booking.get_owned(db.session, _appointment_code(code), _manage_token())
    png = qr.png(booking.qr_payload(secret(), appt))
    return _file(png, "image/png", f"xephang-{appt.code}.png")


@blp.route("/appointments/<code>.ics", parameters=_TOKEN_PARAMS)
@blp.response(200, {"type": "string"}, content_type="text/calendar")
@blp.alt_response(404, schema=Problem, description="Unknown code or wrong token")
def appointment_ics(code: str):
    """The appointment as an iCalendar event with a reminder an hour before."""
    appt = booking.get_owned(db.session, _appointment_code(code), _manage_token())
    view = presenters.appointment_view(db.session, appt.id)
    text = ics.event(
        uid=f"{view.code}@xephang",
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        summary=message("ics_summary", procedure=view.procedure_name),
        location=f"{view.centre_name}, {view.centre_address}".strip(", "),
        description=message(
            "ics_description",
            booking_code=view.code,
            service=f"{view.service_prefix} – {view.service_name}",
        ),
        url=current_app.config["BASE_URL"],
        now=clock(),
    )
    return _file(text, "text/calendar", f"xephang-{view.code}.ics")


# --- Documentation page ----------------------------------------------------------------------


def api_docs():
    """Swagger UI over the OpenAPI document, served from npm's swagger-ui-dist (no CDN)."""
    # A static page: rendered without the app's context processors (no user, no session).
    template = current_app.jinja_env.get_template("booking/api_docs.html")
    return template.render(spec_url=url_for("api-docs.openapi_json"), lang=_locale())


# A page, not an API operation: registered through Flask directly so it stays out of the spec.
FlaskBlueprint.add_url_rule(blp, "/docs", "docs", api_docs)
