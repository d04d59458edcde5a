"""Setting a kiosk browser up for one device, and the start screen."""

from __future__ import annotations

from flask import g, redirect, render_template, request, session, url_for

from core.floor.kiosk import binding_mark, kiosk_for_token
from core.places.calendar import centre_open_now
from web.clock import clock
from web.extensions import db

SESSION_KEY = "kiosk"


def setup():
    """Bind this browser to the kiosk whose token is in the link, or ask for the token."""
    token = request.args.get("token", "")
    if not token:
        return render_template("kiosk/setup.html")
    return _bind(token)


def setup_submit():
    return _bind(request.form.get("token", ""))


def _bind(token: str):
    device = kiosk_for_token(db.session, token)
    if device is None:
        return render_template("kiosk/setup.html", refused=True), 403
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = {"device": device.id, "mark": binding_mark(device)}
    # Redirect so the token leaves the address bar and the browser history.
    return redirect(url_for("kiosk.start"))


def start():
    """Centre, clock and the two big choices."""
    centre = g.kiosk.centre
    now = clock()
    return render_template(
        "kiosk/start.html", now=now, open_now=centre_open_now(db.session, centre, now)
    )
