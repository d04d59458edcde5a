"""Request and response schemas of the public booking API.

Request schemas parse and bound what clients send; every error message is a message code
of `web.messages`, so refusals are rendered in the request's language. Response schemas
document the bodies the presenters build (the API returns those bodies as they are).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from core.citizens.identity import (
    CONTROLS,
    EMAIL_PATTERN,
    PHONE_PATTERN,
    SPACES,
    citizen_id_pattern,
)
from core.common.timeutil import local_day, utcnow
from web.api import BodyReader, InputSchema, Problem, codes, day, text

# Database integer columns are 32-bit on PostgreSQL: a larger id can only be unknown.
MAX_ID = 2**31 - 1
MAX_PER_PAGE = 100
MAX_DAYS = 14


def integer(minimum: int, maximum: int, *, strict: bool = False, **kw: Any) -> fields.Integer:
    return fields.Integer(
        strict=strict,
        validate=validate.Range(min=minimum, max=maximum, error="out_of_range"),
        error_messages=codes(invalid="invalid_integer"),
        **kw,
    )


def number(minimum: float, maximum: float, **kw: Any) -> fields.Float:
    return fields.Float(
        validate=validate.Range(min=minimum, max=maximum, error="out_of_range"),
        error_messages=codes(invalid="invalid_number", special="invalid_number"),
        **kw,
    )


class JsonBoolean(fields.Boolean):
    """JSON true or false only: marshmallow's Boolean also takes 1, 0 and strings."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def consent_field(purpose: str) -> fields.Boolean:
    """The citizen's consent to processing their data, which must be exactly `true` (false is
    refused by core.booking.appointments.validate_applicant, along with the other fields)."""
    return JsonBoolean(
        required=True,
        error_messages={
            "required": "consent_required",
            "null": "consent_required",
            "invalid": "consent_required",
        },
        metadata={
            "enum": [True],
            "description": "Must be true: the citizen agrees that the name, phone and (hashed) "
            f"citizen ID are processed to {purpose} (Law 91/2025/QH15).",
        },
    )


# A name as core.booking.appointments.validate_applicant takes it: at least two characters besides the
# spaces around, no digit, no control character. (Digits of other scripts are refused too.)
_NAME_CHAR = f"[^0-9{CONTROLS}]"
_NAME_EDGE = f"[^0-9{SPACES}{CONTROLS}]"
NAME_PATTERN = f"^[{SPACES}]*{_NAME_EDGE}{_NAME_CHAR}*{_NAME_EDGE}[{SPACES}]*$"


def name_field() -> fields.String:
    return text(
        120,
        required=True,
        metadata={
            "pattern": NAME_PATTERN,
            "description": "Full name: 2 to 120 letters, no digits of any script.",
        },
    )


def phone_field() -> fields.String:
    return text(
        20,
        required=True,
        metadata={
            "pattern": PHONE_PATTERN,
            "description": "Vietnamese mobile number: 10 digits from 03, 05, 07, 08 or 09, or "
            "+84 / 84 and 9 digits; spaces, dots, dashes and brackets between digits are ignored.",
        },
    )


def citizen_id_field() -> fields.String:
    # Built for the year the process starts: a CCCD's birth year may not be in the future.
    return text(
        20,
        required=True,
        metadata={
            "pattern": citizen_id_pattern(local_day(utcnow())),
            "description": "12-digit CCCD: province code (001-096), century-and-sex digit and "
            "birth year (at most 130 years ago), then 6 digits; separators as for phones. "
            "Only a keyed hash of it is stored.",
        },
    )


class _Place(InputSchema):
    lat = number(-90, 90, metadata={"description": "Latitude of the citizen (WGS 84), with `lon`."})
    lon = number(
        -180, 180, metadata={"description": "Longitude of the citizen (WGS 84), with `lat`."}
    )

    @ma.validates_schema
    def _both_or_neither(self, data: dict[str, Any], **_: Any) -> None:
        if ("lat" in data) != ("lon" in data):
            missing = "lon" if "lat" in data else "lat"
            raise ma.ValidationError("required", field_name=missing)


class ProcedureQuery(InputSchema):
    q = text(200, load_default="", metadata={"description": "Words or code; diacritics optional."})
    field = text(
        200, metadata={"description": "Field (lĩnh vực): its id or its name (diacritics optional)."}
    )
    level = fields.String(
        validate=validate.OneOf(["department", "commune"], error="invalid_choice"),
        error_messages=codes(invalid="invalid_choice"),
    )
    page = integer(1, 10_000, load_default=1)
    per_page = integer(1, MAX_PER_PAGE, load_default=20)


class CentreQuery(_Place):
    procedure = text(
        32, metadata={"description": "Rank for this procedure (code); without it, list centres."}
    )


class SlotQuery(InputSchema):
    procedure = text(32, required=True, metadata={"description": "Procedure code."})
    centre = text(16, metadata={"description": "Centre code; every centre when absent."})
    date = day("First local day (YYYY-MM-DD); today when absent.")
    days = integer(1, MAX_DAYS, load_default=1, metadata={"description": "Number of days."})


class SuggestionQuery(_Place):
    procedure = text(32, required=True, metadata={"description": "Procedure code."})
    date = day("Earliest local day wanted (YYYY-MM-DD); today when absent.")


class BookingBody(InputSchema):
    slot_id = integer(1, MAX_ID, strict=True, required=True)
    procedure = text(32, required=True, metadata={"description": "Procedure code."})
    full_name = name_field()
    phone = phone_field()
    citizen_id = citizen_id_field()
    email = text(
        254,
        allow_none=True,
        metadata={"pattern": EMAIL_PATTERN, "description": "Optional; empty means none."},
    )
    consent = consent_field("manage this appointment")


def read_booking(data: dict[str, Any]) -> dict[str, Any]:
    """`BookingBody`, read by hand (the hot path): the same fields and refusals."""
    body = BodyReader(data)
    read = {
        "slot_id": body.integer("slot_id", 1, MAX_ID, required=True),
        "procedure": body.text("procedure", 32, required=True),
        "full_name": body.text("full_name", 120, required=True),
        "phone": body.text("phone", 20, required=True),
        "citizen_id": body.text("citizen_id", 20, required=True),
        "email": body.text("email", 254, allow_none=True),
        "consent": body.consent("consent"),
    }
    body.check()
    return read


class RescheduleBody(InputSchema):
    slot_id = integer(1, MAX_ID, strict=True, required=True)


# --- Response bodies (documentation) ---------------------------------------------------------


class Named(ma.Schema):
    code = fields.String()
    name = fields.String()


class ServiceRef(ma.Schema):
    prefix = fields.String(metadata={"description": "Ticket letter of the line (A, B, …)."})
    name = fields.String()


class ProcedureItem(ma.Schema):
    code = fields.String()
    name = fields.String()
    field = fields.String()
    field_id = fields.Integer()
    level = fields.String(metadata={"description": "department | commune"})
    location_independent = fields.Boolean()


class ProcedureDetail(ProcedureItem):
    intake_minutes = fields.Integer()
    processing_time = fields.String()
    fee = fields.String()
    source_url = fields.String()


class ProcedurePage(ma.Schema):
    items = fields.List(fields.Nested(ProcedureItem))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class CentreItem(ma.Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"description": "ward | commune | special_zone | city"})
    address = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    distance_km = fields.Float(allow_none=True)
    next_free_slot = fields.String(allow_none=True, metadata={"description": "ISO 8601, +07:00"})
    load = fields.Float(allow_none=True, metadata={"description": "Booked share, 0..1"})
    overloaded = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "The last balancing pass (every 15 min) found the centre overloaded "
            "on the day of its first free slot: bookings plus forecast walk-ins beyond what its "
            "officers serve within the service-level target. Null when not ranked."
        },
    )


class CentreList(ma.Schema):
    items = fields.List(fields.Nested(CentreItem))


class ServiceItem(ServiceRef):
    level = fields.String(allow_none=True)
    fields_ = fields.List(fields.String(), data_key="fields")
    procedures = fields.List(fields.String(), metadata={"description": "Listed procedure codes."})


class OpeningPeriod(ma.Schema):
    weekday = fields.Integer(metadata={"description": "ISO weekday, 1 = Monday"})
    opens = fields.String(metadata={"example": "07:30"})
    closes = fields.String(metadata={"example": "11:30"})


class ClosedDay(ma.Schema):
    date = fields.String()
    reason = fields.String()


class CentreDetail(CentreItem):
    is_hub = fields.Boolean()
    counters = fields.Integer(metadata={"description": "Number of active counters."})
    services = fields.List(fields.Nested(ServiceItem))
    opening_hours = fields.List(fields.Nested(OpeningPeriod))
    closed_days = fields.List(fields.Nested(ClosedDay), metadata={"description": "Next 14 days."})


class SlotItem(ma.Schema):
    id = fields.Integer()
    centre = fields.Nested(Named)
    service = fields.Nested(ServiceRef)
    starts_at = fields.String()
    ends_at = fields.String()
    capacity = fields.Integer()
    remaining = fields.Integer()


class SlotList(ma.Schema):
    items = fields.List(fields.Nested(SlotItem))


class SuggestionItem(ma.Schema):
    centre = fields.Nested(CentreItem)
    slot = fields.Nested(SlotItem)
    distance_km = fields.Float(allow_none=True)
    load = fields.Float()
    overloaded = fields.Boolean(
        metadata={"description": "The centre is overloaded on the slot's day (see CentreItem)."}
    )
    reason = fields.String(metadata={"description": "nearest | earliest | least_loaded | balanced"})
    reason_text = fields.String()


class SuggestionList(ma.Schema):
    items = fields.List(fields.Nested(SuggestionItem))


class CentreRef(Named):
    address = fields.String()


class Appointment(ma.Schema):
    code = fields.String(metadata={"description": "Booking code shown to the citizen."})
    status = fields.String(metadata={"description": "booked | checked_in | cancelled | …"})
    full_name = fields.String()
    centre = fields.Nested(CentreRef)
    service = fields.Nested(ServiceRef)
    procedure = fields.Nested(Named)
    starts_at = fields.String()
    ends_at = fields.String()
    qr_svg_url = fields.String(metadata={"description": "Send the manage token with it."})
    qr_png_url = fields.String()
    ics_url = fields.String()


class AppointmentCreated(Appointment):
    manage_token = fields.String(
        metadata={"description": "Secret proving ownership: keep it; shown only here."}
    )


class SlotProblem(Problem):
    alternatives = fields.List(
        fields.Nested(SlotItem), metadata={"description": "Free slots to choose instead."}
    )
