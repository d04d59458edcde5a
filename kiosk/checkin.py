"""Checking in an appointment: a scanner's QR payload, or a booking code + 4 phone digits."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from core.common.errors import DomainError, InvalidInput
from core.floor.kiosk import check_in_at_kiosk, looks_like_qr
from kiosk.texts import field_errors, refusal
from web.clock import clock
from web.db import transaction
from web.extensions import db
from web.settings import floor_rules, secret


def show():
    return render_template("kiosk/checkin.html", values={}, errors={})


def submit():
    """One core call: find the appointment, check it in, show (and print) its ticket."""
    typed = request.form.get("code", "").strip()
    last4 = request.form.get("last4", "").strip()
    qr = typed if looks_like_qr(typed) else None
    try:
        with transaction():
            result = check_in_at_kiosk(
                db.session,
                g.kiosk.centre,
                now=clock(),
                rules=floor_rules(),
                secret=secret(),
                qr=qr,
                code=None if qr else typed,
                last4=last4,
            )
            public_id, created = result.ticket.public_id, result.created
    except InvalidInput as err:
        values = {"code": "" if qr else typed, "last4": last4}
        return render_template("kiosk/checkin.html", values=values, errors=field_errors(err)), 422
    except DomainError as err:
        return render_template(
            "kiosk/answer.html",
            status=err.status,
            text=refusal(err),
            code=err.code,
            details=err.details,
            context="checkin",
        ), err.status
    args = {"print": 1} if created else {"print": 1, "again": 1}
    return redirect(url_for("kiosk.ticket", public_id=public_id, **args), code=303)
