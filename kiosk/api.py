"""Kiosk API: check-in of appointments and walk-in tickets (../shared/API.md "Tickets").

Every call needs the bearer token of a kiosk device of the centre in the path. Answers
carry the public ticket only: a kiosk screen or printout never shows a name or a phone.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, request

from core.common.errors import NotFound
from core.common.tokens import token_hash
from core.floor import floor_fast
from core.floor import kiosk as kiosk_lookup
from core.models import Centre, DeviceKind
from core.places.directory import get_centre
from kiosk import schemas as s
from web.api import (
    ApiBlueprint,
    Problem,
    TicketPublic,
    documented_body,
    json_object,
    json_response,
    secured,
    without_rate_limits,
)
from web.auth import bearer_token, require
from web.clock import clock
from web.db import transaction
from web.extensions import db, limiter
from web.messages import message
from web.presenters import issued_ticket_public, ticket_public
from web.problems import problem
from web.settings import floor_rules, secret

blp = ApiBlueprint(
    "kiosk_api", __name__, url_prefix="/api/v1", description="Kiosk: check-in and walk-in tickets"
)
kiosk_only = require(devices=(DeviceKind.KIOSK,))
# Device-token calls only, unlimited but for check-in by booking code and phone digits: the
# one thing worth guessing at a kiosk, limited per kiosk as on the kiosk's own pages.
without_rate_limits(blp, except_views=("check_in",))
_NO_STORE = {"Cache-Control": "no-store"}


def kiosk_centre(code: str) -> Centre:
    """The centre in the path, which must be the calling kiosk's own."""
    centre = get_centre(db.session, code) if len(code) <= 16 else None
    if centre is None or not centre.active:
        raise NotFound("centre_not_found", field="code")
    g.actor.require_centre(centre.id)
    return centre


def _per_kiosk_token() -> str:
    """Rate-limit key: the kiosk's token (hashed), so one busy kiosk never throttles another."""
    token = bearer_token()
    return f"kiosk-api:{token_hash(token)[:24]}" if token else (request.remote_addr or "-")


_guessing_limit = limiter.limit(
    lambda: current_app.config["RATE_LIMIT_KIOSK_CHECKIN"], key_func=_per_kiosk_token
)


def _not_found_at_kiosk(field: str | None) -> Response:
    # The booking API's wording speaks of the manage token; at the kiosk it is the phone digits.
    return problem(
        404,
        "appointment_not_found",
        detail=message("check_in_not_found"),
        errors={field or "code": "check_in_not_found"},
    )


@blp.route("/centres/<code>/check-ins", methods=["POST"])
@kiosk_only
@_guessing_limit
@blp.arguments(s.CheckInBody)
@blp.response(201, TicketPublic, description="Checked in: a new queue ticket")
@blp.alt_response(200, schema=TicketPublic, description="Checked in before: the same ticket")
@blp.alt_response(401, schema=Problem, description="No or unknown device token")
@blp.alt_response(403, schema=Problem, description="Not a kiosk of this centre")
@blp.alt_response(
    404, schema=Problem, description="appointment_not_found (wrong code or digits), centre"
)
@blp.alt_response(
    409,
    schema=Problem,
    description="appointment_other_centre (with centre_name, centre_address), "
    "appointment_other_day (with date), too_early (with time), too_late (with procedure), "
    "appointment_cancelled, appointment_not_active, centre_closed_now",
)
@blp.alt_response(422, schema=Problem, description="invalid_qr (forged or garbled), bad fields")
@blp.alt_response(429, schema=Problem, description="Too many check-ins from this kiosk")
@blp.doc(**secured())
def check_in(body: dict[str, Any], code: str):
    """Check in an appointment by its QR code or by booking code + last 4 phone digits.

    The ticket queues at the booked time (or now, when later); beyond the grace window it
    queues as a walk-in. Checking in again returns the same ticket with status 200. Before
    opening and over lunch an appointment's own early window decides; after closing time,
    on holidays and closure days the answer is centre_closed_now.
    """
    centre = kiosk_centre(code)
    now = clock()
    try:
        with transaction() as session:
            checked_in = kiosk_lookup.check_in_at_kiosk(
                session,
                centre,
                now=now,
                rules=floor_rules(),
                secret=secret(),
                qr=(body.get("qr") or "").strip() or None,
                code=body.get("code"),
                last4=body.get("phone_last4"),
            )
            answer = ticket_public(session, checked_in.ticket, now=now)
    except NotFound as err:
        if err.code != "appointment_not_found":
            raise
        return _not_found_at_kiosk(err.field)
    return json_response(answer, 201 if checked_in.created else 200, _NO_STORE)


@blp.route("/centres/<code>/tickets", methods=["POST"])
@kiosk_only
@documented_body(blp, s.WalkInBody)
@blp.response(201, TicketPublic, description="A walk-in ticket, queued from now")
@blp.alt_response(401, schema=Problem, description="No or unknown device token")
@blp.alt_response(403, schema=Problem, description="Not a kiosk of this centre")
@blp.alt_response(404, schema=Problem, description="Unknown centre, procedure or service")
@blp.alt_response(409, schema=Problem, description="centre_closed_now, procedure_not_taken")
@blp.alt_response(422, schema=Problem, description="Neither procedure nor service; bad priority")
@blp.doc(**secured())
def issue_ticket(code: str):
    """Take a walk-in ticket for a procedure (its line is found) or directly for a line."""
    # The kiosk's busiest call: the body is read by hand and the ticket issued from plain
    # values (core.floor.floor_fast.issue_walk_in_at), with the same answers as the model-based path.
    body = s.read_walk_in(json_object())
    now = clock()
    # One read, then the ticket, its number and its audit row in one statement.
    with transaction(single_write=True) as session:
        floor = floor_fast.walk_in_floor(
            session,
            code,
            now=now,
            procedure=body.procedure,
            prefix=body.service,
            priority=body.priority,
        )
        if floor is None or not floor.centre_active:
            raise NotFound("centre_not_found", field="code")
        g.actor.require_centre(floor.centre_id)
        issued = floor_fast.issue_walk_in_at(
            session,
            floor,
            now=now,
            procedure=body.procedure,
            by_prefix=body.service is not None,
            priority=body.priority,
        )
        # Presented before commit, from what the transaction already holds: nothing is read
        # back (an error at commit still answers with a problem, not this body).
        answer = issued_ticket_public(issued)
    return json_response(answer, 201, _NO_STORE)
