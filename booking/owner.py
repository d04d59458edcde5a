"""Proof of ownership on the pages: the manage token, from the form, the link or the session.

After a booking (or a successful look-up) the browser's signed session remembers the token,
so the confirmation, downloads and cancel pages work without the token in every URL (where
it would end up in logs and Referer headers).
"""

from __future__ import annotations

from contextlib import suppress

from flask import abort, make_response, redirect, render_template, request, session, url_for

from core.booking.appointments import get_owned
from core.common.errors import NotFound
from core.models import Appointment
from web.extensions import db

_SESSION_KEY = "owned_appointments"
# A shared phone should not accumulate everyone's bookings.
_REMEMBER_AT_MOST = 5


def remember(code: str, token: str) -> None:
    owned = {k: v for k, v in session.get(_SESSION_KEY, {}).items() if k != code}
    owned[code] = token
    session[_SESSION_KEY] = dict(list(owned.items())[-_REMEMBER_AT_MOST:])


def presented_token(code: str) -> str:
    """The token from the form posted, else the one this browser's session remembers; never
    from the URL (links trade theirs on arrival: `trade_link_token`)."""
    token = request.form.get("token") or session.get(_SESSION_KEY, {}).get(code, "")
    return token[:100]


def trade_link_token():
    """Before a page: a `?token=` in the address (an older link) is checked, remembered in
    the session and dropped from the address by a redirect; a wrong one is just dropped."""
    if request.method != "GET" or "token" not in request.args or request.endpoint is None:
        return None
    if request.endpoint == "booking.manage":
        return None  # the look-up trades its own link (booking.manage.lookup)
    where = dict(request.view_args or {})
    token = request.args.get("token", "")[:100].strip()
    if isinstance(where.get("code"), str) and token:
        with suppress(NotFound):
            remember(get_owned(db.session, where["code"], token).code, token)
    rest = {k: v for k, v in request.args.items() if k != "token"}
    return redirect(url_for(request.endpoint, **where, **rest), 303)


def lookup_page(code: str = "", token: str = "", *, error: str | None = None, status: int = 200):
    """The manage form: booking code and manage token."""
    page = render_template("booking/manage.html", code=code, token=token, error=error)
    return page, status


def owned_or_abort(code: str) -> tuple[Appointment, str]:
    """The appointment `code` if the presented token is its manage token.

    Without a token the citizen is sent to the look-up form; with a wrong one the form is
    shown again with a clear message (404, so codes cannot be probed).
    """
    token = presented_token(code)
    if not token:
        abort(redirect(url_for("booking.manage", code=code)))
    try:
        appointment = get_owned(db.session, code, token)
    except NotFound as err:
        abort(make_response(*lookup_page(code[:16], error=err.code, status=404)))
    remember(appointment.code, token)
    return appointment, token
