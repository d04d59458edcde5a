"""Pages people look at: the waiting-room board and the citizen's live ticket page.

Both are rendered in full by the server (they work without JavaScript, refreshing
themselves) and then kept live by small scripts over Socket.IO (display/static/board.js,
ticket.js). Neither shows personal data: labels, counters, lines and waits only.

Announcement clips are served from `/board/voice/<file>`: a centre's own recording in
the folder named by VOICE_DIR when it has that file, else the default synthetic clip.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, render_template, send_from_directory
from sqlalchemy import select

from core.common.timeutil import to_local
from core.floor import boards
from core.floor.tickets import ticket_by_public_id
from core.models import Ticket, TicketStatus
from core.places.directory import get_centre
from web.clock import clock
from web.extensions import db
from web.presenters import ticket_public

VOICE = Path(__file__).resolve().parent / "static" / "voice"

bp = Blueprint(
    "display",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/display/static",
)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/board/<code>")
def board(code: str):
    centre = get_centre(db.session, code)
    if centre is None or not centre.active:
        abort(404)
    now = clock()
    snapshot = boards.board_snapshot(db.session, centre, now=now)
    return render_template(
        "display/board.html",
        centre=centre,
        board=snapshot,
        local_now=to_local(now),
        server_now_ms=int(now.timestamp() * 1000),
    )


@bp.get("/board/voice/<name>")
def voice(name: str):
    """A clip of the announcement voice, or its manifest; a centre's recording wins."""
    if name != "manifest.json" and name not in _voice_files():
        abort(404)
    own = current_app.config.get("VOICE_DIR") or ""
    if own and name != "manifest.json" and (Path(own) / name).is_file():
        return send_from_directory(own, name, max_age=3600)
    return send_from_directory(VOICE, name, max_age=3600)


def _voice_files() -> set[str]:
    manifest = json.loads((VOICE / "manifest.json").read_text(encoding="utf-8"))
    return {manifest["chime"], *(clip["file"] for clip in manifest["clips"].values())}


@bp.get("/t/<public_id>")
def ticket(public_id: str):
    found = ticket_by_public_id(db.session, public_id)  # NotFound → the app's 404 page
    now = clock()
    return render_template(
        "display/ticket.html",
        ticket=ticket_public(db.session, found, now=now),
        successor=_successor(found),
        local_now=to_local(now),
        server_now_ms=int(now.timestamp() * 1000),
    )


def _successor(ticket: Ticket) -> str | None:
    """The public id of the ticket a transfer replaced this one with, if any."""
    if ticket.status != TicketStatus.TRANSFERRED:
        return None
    return db.session.scalars(
        select(Ticket.public_id).where(Ticket.transferred_from_id == ticket.id)
    ).first()


@bp.after_request
def _headers(response):
    # A phone's ticket link is a capability: keep it out of other sites' logs.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
