"""What the kiosk pages ask of the domain beyond `core.floor.tickets`.

The browser's binding to one kiosk device; telling a scanner's QR payload from a typed
booking code and validating the code; checking in with the kiosk's opening policy; and
issuing a walk-in ticket exactly once per kiosk form, however often "confirm" is tapped.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access.principals import device_for_token
from core.citizens.identity import SPACES
from core.common.errors import Conflict, InvalidInput, NotFound
from core.common.timeutil import local_day, local_to_utc
from core.common.tokens import CODE_ALPHABET
from core.floor import tickets
from core.models import (
    AppointmentStatus,
    Centre,
    Device,
    DeviceKind,
    PriorityClass,
    Procedure,
    Service,
    Ticket,
    TicketEvent,
)
from core.places.calendar import closed_clause, is_public_holiday, opening_periods

# A kiosk form id: random, URL-safe, made when the confirm screen is shown.
_FORM_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CODE_NOISE = re.compile(r"[\s\-.]")
# A typed booking code as `parse_code` takes it, for the API's documentation: 4 to 16 letters
# of the code alphabet in either case, spaces, dashes and dots between them ignored.
_CODE_CHAR = "[" + "".join(sorted(set(CODE_ALPHABET + CODE_ALPHABET.lower()))) + "]"
_CODE_SEPARATOR = f"[{SPACES}\\-.]*"
BOOKING_CODE_PATTERN = f"^{_CODE_SEPARATOR}(?:{_CODE_CHAR}{_CODE_SEPARATOR}){{4,16}}$"
_LAST4 = re.compile(r"^[0-9]{4}$")
# Signed QR payloads are base64 JSON, a dot and a signature: far longer than any code.
_QR_MIN_LENGTH = 24


# ---------------------------------------------------------------- binding


def kiosk_for_token(session: Session, token: str) -> Device | None:
    """The active kiosk device holding this token, else None (displays do not qualify)."""
    device = device_for_token(session, (token or "").strip())
    return device if device is not None and device.kind == DeviceKind.KIOSK else None


def binding_mark(device: Device) -> str:
    """A short fingerprint of the device's current token kept next to its id in the session.

    Rotating or revoking the token changes the hash, which unbinds every browser set up
    with the old one.
    """
    return device.token_hash[:16]


def bound_kiosk(session: Session, device_id: object, mark: object) -> Device | None:
    """The kiosk a browser session was bound to, if it is still active under the same token."""
    if not isinstance(device_id, int) or not isinstance(mark, str):
        return None
    device = session.get(Device, device_id)
    if device is None or not device.active or device.kind != DeviceKind.KIOSK:
        return None
    return device if hmac.compare_digest(binding_mark(device), mark) else None


# ---------------------------------------------------------------- opening


def closed_today(session: Session, centre: Centre, day: date) -> bool:
    """Holiday, closure or no opening hours on this local day."""
    if is_public_holiday(day) or not opening_periods(centre, day):
        return True
    return bool(session.scalar(select(closed_clause(centre.id, day))))


def accepting_check_ins(session: Session, centre: Centre, now: datetime) -> bool:
    """Whether the centre takes check-ins now: an open day, before its last closing time.

    Before opening and over lunch the appointment's own early window decides, so someone
    booked at 13:00 may check in at 12:45 and queue at their booked time.
    """
    day = local_day(now)
    if closed_today(session, centre, day):
        return False
    last_end = max(end for _, end in opening_periods(centre, day))
    return now < local_to_utc(day, last_end)


# ---------------------------------------------------------------- finding an appointment


def looks_like_qr(text: str) -> bool:
    """Whether typed input is a scanner's QR payload rather than a booking code."""
    text = (text or "").strip()
    return len(text) >= _QR_MIN_LENGTH and "." in text


def normalise_code(raw: str) -> str:
    """A booking code as stored: upper case, without spaces, dashes or dots."""
    return _CODE_NOISE.sub("", raw or "").upper()


def parse_code(raw: str, last4: str) -> tuple[str, str]:
    """Validate a typed booking code and phone digits; InvalidInput names each bad field."""
    code = normalise_code(raw)
    digits = re.sub(r"\s", "", last4 or "")
    errors: dict[str, str] = {}
    if not code:
        errors["code"] = "required"
    elif not 4 <= len(code) <= 16 or any(ch not in CODE_ALPHABET for ch in code):
        errors["code"] = "invalid_booking_code"
    if not _LAST4.match(digits):
        errors["last4"] = "invalid_last4"
    if errors:
        raise InvalidInput(errors)
    return code, digits


@dataclass(frozen=True)
class CheckIn:
    ticket: Ticket
    created: bool


def check_in_at_kiosk(
    session: Session,
    centre: Centre,
    *,
    now: datetime,
    rules: tickets.FloorRules,
    secret: str,
    qr: str | None = None,
    code: str | None = None,
    last4: str | None = None,
) -> CheckIn:
    """Check in the appointment named by a QR payload or by code + last four phone digits.

    Checking in again returns the same ticket (created False). Raises InvalidInput for a
    malformed code, what `tickets.appointment_for_check_in` raises (invalid_qr,
    appointment_not_found), Conflict centre_closed_now, and what `tickets.check_in`
    refuses (too_late carries the appointment's procedure code so the kiosk can offer a
    walk-in ticket for it).
    """
    if qr is None:
        code, last4 = parse_code(code or "", last4 or "")
    appointment = tickets.appointment_for_check_in(
        session, secret=secret, qr=qr, code=code, phone_last4=last4
    )
    if appointment.status == AppointmentStatus.CHECKED_IN and appointment.centre_id != centre.id:
        # Its ticket is at the other centre: say where, rather than show it here.
        other = appointment.centre
        raise Conflict(
            "appointment_other_centre", centre_name=other.name, centre_address=other.address
        )
    # Other centre, other day or cancelled say more than "closed": check_in tells those.
    due_here_today = (
        appointment.status == AppointmentStatus.BOOKED
        and appointment.centre_id == centre.id
        and local_day(appointment.starts_at) == local_day(now)
    )
    if due_here_today and not accepting_check_ins(session, centre, now):
        raise Conflict("centre_closed_now")
    try:
        ticket, created = tickets.check_in(session, appointment, centre, now=now, rules=rules)
    except Conflict as err:
        if err.code == "too_late":
            err.details.setdefault("procedure", appointment.procedure.code)
        raise
    return CheckIn(ticket, created)


# ---------------------------------------------------------------- walk-in, once per form


def valid_form_id(form_id: str) -> bool:
    return bool(_FORM_ID.match(form_id or ""))


def _issued_for_form(session: Session, service: Service, day: date, form_id: str) -> Ticket | None:
    return session.scalars(
        select(Ticket)
        .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
        .where(
            Ticket.service_id == service.id,
            Ticket.day == day,
            TicketEvent.kind == "issued",
            TicketEvent.data["form"].as_string() == form_id,
        )
        .limit(1)
    ).first()


def _mark_issued_event(session: Session, ticket: Ticket, device: Device, form_id: str) -> None:
    """Note on the ticket's "issued" event which kiosk issued it and for which form."""
    session.flush()
    event = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "issued")
    ).one()
    event.data = {**(event.data or {}), "device_id": device.id, "form": form_id}


def issue_walk_in_once(
    session: Session,
    device: Device,
    *,
    form_id: str,
    now: datetime,
    procedure: Procedure | None = None,
    service: Service | None = None,
    priority: PriorityClass = PriorityClass.NONE,
) -> CheckIn:
    """A walk-in ticket at the kiosk's centre, at most one per kiosk form.

    A second submission of the same form (a double tap, a resubmitted page) returns the
    ticket the first one issued, with created False. Raises InvalidInput for a malformed
    form id and whatever `tickets.issue_walk_in` refuses.
    """
    if not valid_form_id(form_id):
        raise InvalidInput({"form": "form_expired"})
    centre = device.centre
    if service is None:
        if procedure is None:
            raise NotFound("service_not_found", field="service")
        service = tickets.service_for(session, centre, procedure)
    # One kiosk issues one ticket at a time: the lock makes "look, then issue" atomic on
    # PostgreSQL (SQLite transactions already take the single write lock up front).
    session.execute(select(Device.id).where(Device.id == device.id).with_for_update())
    earlier = _issued_for_form(session, service, local_day(now), form_id)
    if earlier is not None:
        return CheckIn(earlier, False)
    ticket = tickets.issue_walk_in(
        session, centre, now=now, procedure=procedure, service=service, priority=priority
    )
    _mark_issued_event(session, ticket, device, form_id)
    return CheckIn(ticket, True)


def ticket_at_centre(session: Session, centre: Centre, public_id: str) -> Ticket:
    """A ticket of this centre by its public id; NotFound for another centre's tickets."""
    ticket = tickets.ticket_by_public_id(session, public_id)
    if ticket.centre_id != centre.id:
        raise NotFound("ticket_not_found")
    return ticket
