"""Parsing what citizens send from the booking pages (query strings and form posts).

Validation of the person's details belongs to core (`validate_applicant`); this module only
turns raw strings into typed values and keeps what was typed so a form can be shown again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from core.booking.appointments import Applicant, validate_applicant
from core.common.text import parse_id
from core.common.timeutil import EARLIEST_DAY, LATEST_DAY

_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Order of fields in the error summary: the order they appear on the form.
FIELD_ORDER = ("slot_id", "procedure", "full_name", "phone", "citizen_id", "email", "consent")


def parse_int(raw: str | None, *, minimum: int = 1) -> int | None:
    return parse_id(raw, minimum=minimum)


def parse_page(raw: str | None) -> int:
    return min(parse_int(raw) or 1, 10_000)


def parse_float(raw: str | None, low: float, high: float) -> float | None:
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def parse_day(raw: str | None) -> date | None:
    """A YYYY-MM-DD day from EARLIEST_DAY to LATEST_DAY, else None."""
    text = (raw or "").strip()
    try:
        value = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
    return value if value is not None and EARLIEST_DAY <= value <= LATEST_DAY else None


def new_idempotency_key() -> str:
    """A key minted when the form is shown: submitting that same form twice books once."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class BookingForm:
    """The booking form as typed; strings are kept so the form can be redisplayed."""

    full_name: str = ""
    phone: str = ""
    citizen_id: str = ""
    email: str = ""
    consent: bool = False
    idempotency_key: str | None = None
    slot_id: int | None = None
    # Set when the form offers alternatives to a full slot: the slot that was full.
    full_slot: int | None = None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> BookingForm:
        key = (form.get("idempotency_key") or "").strip()
        return cls(
            full_name=(form.get("full_name") or "")[:200],
            phone=(form.get("phone") or "")[:40],
            citizen_id=(form.get("citizen_id") or "")[:40],
            email=(form.get("email") or "")[:300],
            consent=form.get("consent") == "yes",
            idempotency_key=key if _KEY.match(key) else None,
            slot_id=parse_int(form.get("slot_id")),
            full_slot=parse_int(form.get("full_slot")),
        )

    def applicant(self, *, now: datetime, key: bytes) -> Applicant:
        """The validated applicant; raises core's InvalidInput naming every bad field."""
        return validate_applicant(
            full_name=self.full_name,
            phone=self.phone,
            citizen_id=self.citizen_id,
            email=self.email,
            consent=self.consent,
            now=now,
            key=key,
        )


def ordered_errors(errors: Mapping[str, str]) -> list[tuple[str, str]]:
    """(field, code) pairs in form order, unknown fields last."""
    rank = {name: i for i, name in enumerate(FIELD_ORDER)}
    return sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank)))
