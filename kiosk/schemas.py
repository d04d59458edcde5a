"""Request schemas of the kiosk API; refusals are message codes of `web.messages`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from core.floor.kiosk import BOOKING_CODE_PATTERN
from core.models import PriorityClass
from web.api import BodyReader, InputSchema, codes, text

PRIORITIES = [p.value for p in PriorityClass]


class CheckInBody(InputSchema):
    qr = text(
        1024,
        metadata={"description": "The scanned QR text (scanners type it followed by Enter)."},
    )
    code = text(16, metadata={"description": "Booking code, when typed instead of scanned."})
    phone_last4 = fields.String(
        # ASCII digits, and nothing after them (`$` would let a final newline through).
        validate=validate.Regexp(r"[0-9]{4}\Z", error="invalid_phone_last4"),
        error_messages=codes(invalid="invalid_phone_last4"),
        metadata={
            "description": "Last 4 digits of the phone used to book (with `code`).",
            "pattern": "^[0-9]{4}$",
        },
    )
    # What `_qr_or_code` checks, for the OpenAPI document (xephang/openapi.py reads it).
    openapi_rules: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"required": ["qr"], "properties": {"qr": {"pattern": "\\S"}}},
            {
                "required": ["code", "phone_last4"],
                "properties": {"code": {"pattern": BOOKING_CODE_PATTERN}},
            },
        ]
    }

    @ma.validates_schema
    def _qr_or_code(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("qr") or "").strip():
            return
        if not (data.get("code") or "").strip():
            raise ma.ValidationError("check_in_required", field_name="code")
        if "phone_last4" not in data:
            raise ma.ValidationError("invalid_phone_last4", field_name="phone_last4")


class WalkInBody(InputSchema):
    procedure = text(32, metadata={"description": "Procedure code; its line is found for it."})
    service = text(2, metadata={"description": "Or a line's prefix (A, B, …) directly."})
    priority = fields.String(
        load_default=PriorityClass.NONE.value,
        validate=validate.OneOf(PRIORITIES, error="invalid_choice"),
        error_messages=codes(invalid="invalid_choice"),
        metadata={"description": "Priority group, chosen with the priority button."},
    )
    # What `_procedure_or_service` (and `read_walk_in`) check, for the OpenAPI document.
    openapi_rules: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"required": ["procedure"], "properties": {"procedure": {"minLength": 1}}},
            {"required": ["service"], "properties": {"service": {"minLength": 1}}},
        ]
    }

    @ma.validates_schema
    def _procedure_or_service(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("procedure") and not data.get("service"):
            raise ma.ValidationError("procedure_or_service_required", field_name="procedure")


_PRIORITY_CHOICES = frozenset(PRIORITIES)


@dataclass(frozen=True, slots=True)
class WalkIn:
    procedure: str | None
    service: str | None
    priority: PriorityClass


def read_walk_in(data: dict[str, Any]) -> WalkIn:
    """`WalkInBody`, read by hand (the hot path): the same fields, defaults and refusals."""
    body = BodyReader(data)
    procedure = body.text("procedure", 32)
    service = body.text("service", 2)
    priority = body.choice("priority", _PRIORITY_CHOICES, PriorityClass.NONE.value)
    body.check()
    if not procedure and not service:
        body.refuse("procedure", "procedure_or_service_required")
        body.check()
    return WalkIn(procedure or None, service or None, PriorityClass(priority))
