"""The booking form: show it for a slot, book on submit, offer other slots when it is taken."""

from __future__ import annotations

from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select

from booking.find import procedure_or_404, service_takes
from booking.forms import BookingForm, new_idempotency_key, ordered_errors, parse_int
from booking.owner import remember
from core.booking.appointments import book
from core.booking.availability import FreeSlot, alternatives, free_slots, rank_centres
from core.catalogue.search import ProcedureEntry
from core.common.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from core.models import Closure, Slot
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.settings import booking_rules, citizen_key, secret


def _slot_problem(slot: Slot, now: datetime) -> str | None:
    """Why a slot shown on the form can no longer be booked (the same reasons `book` gives)."""
    if slot.starts_at <= now:
        return "slot_past"
    closed = db.session.scalar(
        select(Closure.id)
        .where(
            Closure.day == slot.day,
            or_(Closure.centre_id == slot.centre_id, Closure.centre_id.is_(None)),
        )
        .limit(1)
    )
    if closed is not None or not slot.centre.active:
        return "centre_closed"
    if slot.opens_at is not None and slot.opens_at > now:
        return "slot_not_open"
    return "slot_full" if slot.remaining <= 0 else None


def _offers(proc: ProcedureEntry, slot: Slot, now: datetime) -> list[FreeSlot]:
    """Other slots to offer: a few at the same centre, then the soonest at nearby centres.

    A full slot usually means a crowded centre, so the offer always includes somewhere else.
    """
    offers = alternatives(
        db.session, proc, now=now, centre=slot.centre, after=slot.starts_at, limit=3
    )
    centre = slot.centre
    if centre.lat is not None and centre.lon is not None:
        nearby = rank_centres(db.session, proc, now=now, lat=centre.lat, lon=centre.lon, limit=4)
        for ranked in nearby:
            if ranked.centre.id != centre.id and ranked.next_free_slot is not None:
                offers += free_slots(db.session, proc, now=now, centre_id=ranked.centre.id, limit=1)
    unique = {offer.id: offer for offer in offers}
    return list(unique.values())[:5]


def _form_page(
    proc: ProcedureEntry,
    slot: Slot,
    form: BookingForm,
    *,
    errors: dict[str, str] | None = None,
    conflict: str | None = None,
    status: int = 200,
):
    """The form; with `conflict` it offers alternative slots instead of the unavailable one."""
    offers = _offers(proc, slot, clock()) if conflict else []
    page = render_template(
        "booking/book.html",
        proc=proc,
        slot=slot,
        form=form,
        errors=errors or {},
        error_list=ordered_errors(errors or {}),
        conflict=conflict,
        offers=offers,
        key=form.idempotency_key or new_idempotency_key(),
    )
    return page, status


def _slot_or_404(slot_id: int | None) -> Slot:
    slot = db.session.get(Slot, slot_id) if slot_id else None
    if slot is None:
        raise NotFound("slot_not_found", field="slot_id")
    return slot


def _not_taken(proc: ProcedureEntry, slot: Slot):
    page = render_template(
        "booking/slots.html",
        flow="book",
        proc=proc,
        centre=slot.centre,
        takes=False,
        days=[],
    )
    return page, 422


def show(code: str):
    """GET: the form for `?slot=<id>`, or alternatives if that slot cannot be booked now."""
    proc = procedure_or_404(code)
    slot = _slot_or_404(parse_int(request.args.get("slot")))
    if not service_takes(slot.service_id, proc):
        return _not_taken(proc, slot)
    problem = _slot_problem(slot, clock())
    form = BookingForm(full_slot=slot.id) if problem else BookingForm(slot_id=slot.id)
    return _form_page(proc, slot, form, conflict=problem, status=409 if problem else 200)


def submit(code: str):
    """POST: book the slot; a repeated submit of the same form returns the same booking."""
    proc = procedure_or_404(code)
    form = BookingForm.from_form(request.form)
    now = clock()
    if form.slot_id is None and form.full_slot is not None:
        # Alternatives were offered and none was picked.
        slot = _slot_or_404(form.full_slot)
        return _form_page(
            proc, slot, form, errors={"slot_id": "slot_required"}, conflict="slot_full", status=422
        )
    slot = _slot_or_404(form.slot_id)
    try:
        applicant = form.applicant(now=now, key=citizen_key())
        with transaction(single_write=True) as session:
            booked = book(
                session,
                slot_id=slot.id,
                procedure_code=proc.code,
                applicant=applicant,
                now=now,
                rules=booking_rules(),
                secret=secret(),
                idempotency_key=form.idempotency_key,
                locale=str(get_locale() or "vi"),
            )
    except InvalidInput as err:
        return _form_page(proc, slot, form, errors=err.errors, status=422)
    except LimitExceeded as err:
        return render_template("booking/limit.html", code=err.code, details=err.details), 429
    except Conflict as err:
        if err.code == "idempotency_key_reused":
            fresh = BookingForm(**{**form.__dict__, "idempotency_key": None})
            return _form_page(proc, slot, fresh, errors={"form": err.code}, status=409)
        offer = BookingForm(**{**form.__dict__, "slot_id": None, "full_slot": slot.id})
        return _form_page(proc, slot, offer, conflict=err.code, status=409)
    remember(booked.code, booked.manage_token)
    flash(_("Đặt lịch thành công. Mã đặt lịch của bạn là %(code)s.", code=booked.code), "booked")
    return redirect(url_for("booking.appointment", code=booked.code), 303)
