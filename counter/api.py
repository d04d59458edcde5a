"""Counter API: open, close, call next, serve, transfer (to be filled)."""

from flask_smorest import Blueprint

blp = Blueprint(
    "counter_api",
    __name__,
    url_prefix="/api/v1",
    description="Counters: calling and serving tickets",
)
