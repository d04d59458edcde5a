"""Documented shapes of the board (OpenAPI); the snapshot itself is built by core.floor.boards."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from web.api import Eta


class BoardCentre(ma.Schema):
    code = fields.String(metadata={"description": "Official centre code."})
    name = fields.String()


class BoardCall(ma.Schema):
    counter = fields.Integer(metadata={"description": "Counter number.", "example": 5})
    label = fields.String(metadata={"example": "A023"})
    service = fields.String(metadata={"description": "Prefix of the line (A, B, …)."})
    called_at = fields.String(metadata={"description": "ISO 8601 (+07:00) of the latest call."})


class BoardServing(BoardCall):
    service_name = fields.String()


class BoardLine(ma.Schema):
    service = fields.String(metadata={"description": "Prefix of the line."})
    service_name = fields.String()
    count = fields.Integer(metadata={"description": "Tickets waiting in this line today."})
    eta_minutes = fields.Nested(
        Eta,
        allow_none=True,
        metadata={"description": "Wait for someone joining now; null when no counter is open."},
    )


class Board(ma.Schema):
    """What a waiting-room board shows: labels and counters, never personal data."""

    centre = fields.Nested(BoardCentre)
    now_serving = fields.List(
        fields.Nested(BoardServing),
        metadata={"description": "Tickets called or being served at a counter, latest first."},
    )
    recent = fields.List(
        fields.Nested(BoardCall),
        metadata={"description": "The last calls of the day, newest first (BOARD_RECENT_CALLS)."},
    )
    waiting = fields.List(fields.Nested(BoardLine))
    generated_at = fields.String(metadata={"description": "ISO 8601 (+07:00)."})
