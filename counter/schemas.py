"""Request and response schemas of the counter API (responses are documentation only)."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from web.api import InputSchema, TicketPublic, codes, text


class TransferBody(InputSchema):
    service = text(2, metadata={"description": "Prefix of a line of the same centre (A, B, …)."})
    counter = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=9999, error="out_of_range"),
        error_messages=codes(invalid="invalid_integer"),
        metadata={"description": "Number of a counter of the same centre: only it will call."},
    )
    centre = text(
        16,
        metadata={
            "description": "Code of another centre; its line for the same "
            "procedure takes the ticket."
        },
    )

    # What `_exactly_one` checks, for the OpenAPI document (xephang/openapi.py reads it).
    openapi_rules: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"required": ["service"], "properties": {"service": {"minLength": 1}}},
            {"required": ["counter"]},
            {"required": ["centre"], "properties": {"centre": {"minLength": 1}}},
        ]
    }

    @ma.validates_schema
    def _exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        given = [k for k in ("service", "counter", "centre") if data.get(k) not in (None, "")]
        if len(given) != 1:
            raise ma.ValidationError("transfer_target_required", field_name="body")


# --- Responses ----------------------------------------------------------------------------------


class Citizen(ma.Schema):
    full_name = fields.String()


class AppointmentRef(ma.Schema):
    code = fields.String()
    starts_at = fields.String()


class OfficerTicket(TicketPublic):
    """The ticket on the officer's screen: the public ticket, the procedure and the appointment,
    and the citizen's name (only here, never on public or kiosk answers)."""

    procedure_name = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    call_count = fields.Integer()
    target_counter = fields.Integer(allow_none=True)
    appointment = fields.Nested(AppointmentRef, allow_none=True)
    citizen = fields.Nested(Citizen, allow_none=True)


class TicketEnvelope(ma.Schema):
    ticket = fields.Nested(OfficerTicket)


class Officer(ma.Schema):
    id = fields.Integer()
    full_name = fields.String()


class ServiceWaiting(ma.Schema):
    service = fields.String(metadata={"description": "Prefix of the line."})
    name = fields.String()
    waiting = fields.Integer()
    priority = fields.Integer(metadata={"description": "Of which priority tickets."})
    next = fields.List(fields.String(), metadata={"description": "Next labels, calling order."})


class CounterState(ma.Schema):
    id = fields.Integer()
    number = fields.Integer()
    name = fields.String()
    centre = fields.String(metadata={"description": "Centre code."})
    is_open = fields.Boolean()
    officer = fields.Nested(Officer, allow_none=True)
    services = fields.List(fields.String(), metadata={"description": "Prefixes, preference order."})
    current = fields.Nested(OfficerTicket, allow_none=True)
    waiting = fields.List(fields.Nested(ServiceWaiting))


class WaitingTicket(ma.Schema):
    label = fields.String()
    priority = fields.String()
    source = fields.String()
    queue_time = fields.String()
    target_counter = fields.Integer(allow_none=True)


class LineQueue(ma.Schema):
    service = fields.String()
    name = fields.String()
    waiting = fields.Integer()
    counters_open = fields.Integer(metadata={"description": "Open counters serving the line."})
    tickets = fields.List(fields.Nested(WaitingTicket))


class CounterNow(ma.Schema):
    number = fields.Integer()
    is_open = fields.Boolean()
    label = fields.String(allow_none=True)
    status = fields.String(allow_none=True)


class CentreQueue(ma.Schema):
    centre = fields.String()
    generated_at = fields.String()
    services = fields.List(fields.Nested(LineQueue))
    counters = fields.List(fields.Nested(CounterNow))


# --- Staff API tokens ---------------------------------------------------------------------------


class TokenRequest(InputSchema):
    username = text(64, required=True, metadata={"description": "Staff username."})
    password = text(256, required=True, metadata={"description": "The account's password."})
    days = fields.Integer(
        strict=True,
        error_messages=codes(invalid="invalid_integer"),
        metadata={
            "description": "Days the token is valid: 1 to XEPHANG_STAFF_TOKEN_MAX_DAYS (365 by "
            "default). Default: XEPHANG_STAFF_TOKEN_DAYS (30)."
        },
    )
    name = text(
        100, metadata={"description": "What the token is for (e.g. 'nightly export'); stored."}
    )


class TokenIssued(ma.Schema):
    token = fields.String(
        metadata={
            "description": "Send as `Authorization: Bearer <token>`. Shown only now: the server "
            "keeps its hash."
        }
    )
    expires_at = fields.String(metadata={"description": "ISO 8601 (+07:00)."})
