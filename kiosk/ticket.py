"""The ticket screen, laid out to print on an 80 mm thermal roll."""

from __future__ import annotations

from flask import current_app, g, render_template, request
from markupsafe import Markup

from core.common import qr
from core.floor.kiosk import ticket_at_centre
from web.clock import clock
from web.extensions import db
from web.links import public_url
from web.presenters import ticket_public


def live_url(public_id: str) -> str:
    """Where the ticket's QR leads: the public live ticket page (served by display/)."""
    return public_url("display.ticket", public_id=public_id)


def show(public_id: str):
    ticket = ticket_at_centre(db.session, g.kiosk.centre, public_id)
    public = ticket_public(db.session, ticket, now=clock())
    url = live_url(ticket.public_id)
    autoprint = request.args.get("print") == "1" and current_app.config.get(
        "KIOSK_AUTO_PRINT", True
    )
    return render_template(
        "kiosk/ticket.html",
        ticket=ticket,
        public=public,
        live_url=url,
        # qrcode builds the SVG from the URL alone; nothing user-typed reaches it.
        qr_svg=Markup(qr.svg(url, title=ticket.label)),  # noqa: S704
        again=request.args.get("again") == "1",
        autoprint=autoprint,
    )
