"""After booking: the confirmation, QR and calendar files, cancel and reschedule.

Every view here proves ownership with the manage token (see `booking.owner`); a wrong token
shows the look-up form again and changes nothing.
"""

from __future__ import annotations

from flask import Response, flash, get_flashed_messages, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from booking.find import centre_choice, centre_or_404, origin_at, procedure_or_404, slot_choice
from booking.owner import lookup_page, owned_or_abort, remember
from core.booking.appointments import cancel, get_owned, qr_payload, reschedule
from core.common import ics, qr
from core.common.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from core.models import Appointment, Slot
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.links import public_url
from web.settings import booking_rules, secret


def lookup():
    """GET: the look-up form, or a manage link from a message (?code=&token=).

    A link's token is traded at once for the session's proof of ownership and the browser is
    sent on to the appointment, so the token leaves the address bar and the history and is
    never sent again (the access logs redact it on this one visit: xephang/access_log.py).
    """
    code = request.args.get("code", "")[:16].strip().upper()
    token = request.args.get("token", "")[:100].strip()
    if not (code and token):
        return lookup_page(code)
    return _open(code, token)


def lookup_submit():
    """POST: open the appointment if the code and token match."""
    code = request.form.get("code", "")[:16].strip().upper()
    token = request.form.get("token", "")[:100].strip()
    if not code or not token:
        return lookup_page(code, token, error="required", status=422)
    return _open(code, token)


def _open(code: str, token: str):
    """The appointment's page for the owner of `token` (remembered in the session), or the
    look-up form again, without the token, for a wrong one."""
    try:
        appointment = get_owned(db.session, code, token)
    except NotFound as err:
        return lookup_page(code, "", error=err.code, status=404)
    remember(appointment.code, token)
    return redirect(url_for("booking.appointment", code=appointment.code), 303)


def _page(appointment: Appointment, token: str, *, error: str | None = None, status: int = 200):
    title = _("Mã QR của lịch hẹn %(code)s", code=appointment.code)
    flashes = get_flashed_messages(with_categories=True)
    page = render_template(
        "booking/appointment.html",
        appt=appointment,
        token=token,
        qr_svg=Markup(qr.svg(qr_payload(secret(), appointment), title=title)),  # noqa: S704
        manage_url=public_url("booking.manage", code=appointment.code, token=token),
        just_booked=any(category == "booked" for category, _m in flashes),
        error=error,
    )
    return page, status


def show(code: str):
    appointment, token = owned_or_abort(code)
    return _page(appointment, token)


def qr_png(code: str):
    appointment, _token = owned_or_abort(code)
    return Response(
        qr.png(qr_payload(secret(), appointment)),
        mimetype="image/png",
        headers={"Content-Disposition": f'attachment; filename="lich-hen-{appointment.code}.png"'},
    )


def calendar(code: str):
    appointment, _token = owned_or_abort(code)
    centre = appointment.centre
    body = ics.event(
        uid=f"{appointment.code}@xephang",
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        summary=_(
            "Lịch hẹn %(code)s: %(procedure)s",
            code=appointment.code,
            procedure=appointment.procedure.name,
        ),
        location=f"{centre.name}, {centre.address}".strip(", "),
        description=_(
            "Mã đặt lịch: %(code)s. Mang theo CCCD và đến sớm 10 phút. Huỷ hoặc đổi lịch: %(url)s",
            code=appointment.code,
            url=public_url("booking.manage", code=appointment.code),
        ),
        url=public_url("booking.manage", code=appointment.code),
        now=clock(),
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="lich-hen-{appointment.code}.ics"'},
    )


def cancel_confirm(code: str):
    appointment, token = owned_or_abort(code)
    return render_template("booking/cancel.html", appt=appointment, token=token, error=None)


def cancel_submit(code: str):
    appointment, token = owned_or_abort(code)
    if request.form.get("confirm") != "yes":
        page = render_template(
            "booking/cancel.html", appt=appointment, token=token, error="confirm_required"
        )
        return page, 422
    try:
        with transaction() as session:
            cancel(session, appointment, now=clock())
    except Conflict as err:
        return _page(appointment, token, error=err.code, status=409)
    flash(_("Đã huỷ lịch hẹn %(code)s. Chỗ của bạn đã được trả lại.", code=code), "success")
    return redirect(url_for("booking.appointment", code=appointment.code), 303)


def _movable(code: str) -> tuple[Appointment, str]:
    appointment, token = owned_or_abort(code)
    if not appointment.is_active:
        raise Conflict("appointment_not_active", status=appointment.status.value)
    return appointment, token


def reschedule_centres(code: str):
    appointment, _token = _movable(code)
    proc = procedure_or_404(appointment.procedure.code)
    start = origin_at(appointment.centre)
    ctx = centre_choice(proc, request.args, now=clock(), default=start)
    return render_template("booking/centres.html", flow="reschedule", appt=appointment, **ctx)


def reschedule_slots(code: str, centre_code: str):
    appointment, _token = _movable(code)
    proc = procedure_or_404(appointment.procedure.code)
    ctx = slot_choice(proc, centre_or_404(centre_code), request.args.get("day"), now=clock())
    page = render_template("booking/slots.html", flow="reschedule", appt=appointment, **ctx)
    return page, 200 if ctx["takes"] else 422


def _target(slot_id: int) -> Slot:
    slot = db.session.get(Slot, slot_id)
    if slot is None:
        raise NotFound("slot_not_found", field="slot_id")
    return slot


def reschedule_confirm(code: str, slot_id: int):
    appointment, token = _movable(code)
    return render_template(
        "booking/reschedule.html", appt=appointment, token=token, slot=_target(slot_id), error=None
    )


def reschedule_submit(code: str, slot_id: int):
    appointment, token = _movable(code)
    slot = _target(slot_id)
    try:
        with transaction() as session:
            reschedule(session, appointment, slot_id=slot.id, now=clock(), rules=booking_rules())
    except (InvalidInput, Conflict) as err:
        error = next(iter(err.errors.values())) if isinstance(err, InvalidInput) else err.code
        page = render_template(
            "booking/reschedule.html", appt=appointment, token=token, slot=slot, error=error
        )
        return page, err.status
    except LimitExceeded as err:
        return render_template("booking/limit.html", code=err.code, details=err.details), 429
    flash(_("Đã đổi lịch hẹn %(code)s sang giờ mới.", code=code), "success")
    return redirect(url_for("booking.appointment", code=appointment.code), 303)
