"""Public ticket API: follow a ticket live, and take a same-day ticket from home.

No authentication: a ticket's public id is unguessable and its answer carries no personal
data. Remote tickets are rate-limited per client and limited per citizen per day.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from marshmallow import fields
from sqlalchemy import select

from booking.schemas import citizen_id_field, consent_field, name_field, phone_field
from core.booking import appointments as booking
from core.common.errors import NotFound
from core.floor import tickets
from core.models import Centre, Procedure, Ticket, TicketStatus
from core.places.directory import get_centre
from web.api import ApiBlueprint, InputSchema, Problem, TicketPublic, json_response, text
from web.clock import clock
from web.db import transaction
from web.extensions import db, limiter
from web.presenters import ticket_public
from web.settings import citizen_key, floor_rules

blp = ApiBlueprint(
    "ticket_api",
    __name__,
    url_prefix="/api/v1",
    description="Queue tickets: follow one live, or take a same-day ticket from home",
)
limiter.limit(lambda: current_app.config["RATE_LIMIT_DEFAULT"])(blp)
# A ticket's state changes every few seconds: never cache it anywhere on the way.
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class RemoteTicketBody(InputSchema):
    procedure = text(32, required=True, metadata={"description": "Procedure code."})
    full_name = name_field()
    phone = phone_field()
    citizen_id = citizen_id_field()
    consent = consent_field("serve this ticket today")


class TicketRef(ma.Schema):
    public_id = fields.String()
    label = fields.String()
    centre = fields.String()


class FollowedTicket(TicketPublic):
    transferred_to = fields.Nested(
        TicketRef, allow_none=True, metadata={"description": "Only on a transferred ticket."}
    )


def _centre(code: str) -> Centre:
    centre = get_centre(db.session, code) if len(code) <= 16 else None
    if centre is None or not centre.active:
        raise NotFound("centre_not_found", field="code")
    return centre


def _procedure(code: str) -> Procedure:
    procedure = db.session.scalars(select(Procedure).where(Procedure.code == code)).one_or_none()
    if procedure is None:
        raise NotFound("procedure_not_found", field="procedure")
    return procedure


@blp.route("/tickets/<public_id>")
@blp.response(200, FollowedTicket)
@blp.alt_response(404, schema=Problem, description="Unknown ticket")
def get_ticket(public_id: str):
    """A ticket as its holder follows it: status, counter, people ahead and estimated wait.

    A transferred ticket names its successor (`transferred_to`), possibly at another centre,
    so the citizen's page can follow it there.
    """
    ticket = tickets.ticket_by_public_id(db.session, public_id)
    body = ticket_public(db.session, ticket, now=clock())
    if ticket.status is TicketStatus.TRANSFERRED:
        body["transferred_to"] = _successor(ticket)
    return json_response(body, headers=_NO_STORE)


def _successor(ticket: Ticket) -> dict[str, Any] | None:
    new = db.session.scalars(
        select(Ticket).where(Ticket.transferred_from_id == ticket.id).limit(1)
    ).first()
    if new is None:
        return None
    return {"public_id": new.public_id, "label": new.label, "centre": new.centre.code}


@blp.route("/centres/<code>/remote-tickets", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATE_LIMIT_BOOKING"])
@blp.arguments(RemoteTicketBody)
@blp.response(201, TicketPublic, description="A ticket for today, queued from now")
@blp.alt_response(404, schema=Problem, description="Unknown centre or procedure")
@blp.alt_response(409, schema=Problem, description="centre_closed_now, procedure_not_taken")
@blp.alt_response(422, schema=Problem, description="Invalid fields (`errors`: field → message)")
@blp.alt_response(429, schema=Problem, description="remote_per_day, or too many requests")
def take_remote_ticket(body: dict[str, Any], code: str):
    """Take a same-day ticket from home and follow its position; come when it is near.

    Keep the `public_id`: it is the only way back to the ticket. One remote ticket per
    citizen per day (configurable), counted by a keyed hash of the citizen ID.
    """
    centre = _centre(code)
    procedure = _procedure(body["procedure"])
    now = clock()
    applicant = booking.validate_applicant(
        full_name=body["full_name"],
        phone=body["phone"],
        citizen_id=body["citizen_id"],
        email=None,
        consent=body["consent"],
        now=now,
        key=citizen_key(),
    )
    with transaction() as session:
        ticket = tickets.issue_remote(
            session,
            centre,
            procedure,
            citizen_hash=applicant.citizen_id_hash,
            full_name=applicant.full_name,
            phone=applicant.phone,
            now=now,
            rules=floor_rules(),
        )
    return json_response(ticket_public(db.session, ticket, now=now), 201, _NO_STORE)
