"""Public board API: the same snapshot a board receives over Socket.IO, for any client."""

from __future__ import annotations

from flask import current_app

from core.common.errors import NotFound
from core.floor.boards import board_snapshot
from core.places.directory import get_centre
from display import schemas as s
from web.api import ApiBlueprint, Problem, json_response
from web.clock import clock
from web.extensions import db, limiter

blp = ApiBlueprint(
    "display_api",
    __name__,
    url_prefix="/api/v1",
    description="Display boards: calls, recent calls and waits per line",
)
limiter.limit(lambda: current_app.config["RATE_LIMIT_DEFAULT"])(blp)


@blp.route("/centres/<code>/board")
@blp.response(200, s.Board)
@blp.alt_response(404, schema=Problem, description="Unknown centre")
def get_board(code: str):
    """The board of a centre now: who is called to which counter, the last calls of the day,
    and how many wait in each line and for how long. Labels only, no personal data.

    Live boards get the same shape as the Socket.IO event `board` on namespace `/board`
    (connect with `?centre=<code>`), then `ticket_called` on every call.
    """
    centre = get_centre(db.session, code) if len(code) <= 16 else None
    if centre is None:
        raise NotFound("centre_not_found", field="code")
    body = board_snapshot(
        db.session, centre, now=clock(), recent=current_app.config["BOARD_RECENT_CALLS"]
    )
    return json_response(body, headers={"Cache-Control": "no-cache"})
