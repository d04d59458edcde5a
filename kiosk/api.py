"""Kiosk API: check-ins and walk-in tickets (to be filled)."""

from flask_smorest import Blueprint

blp = Blueprint(
    "kiosk_api", __name__, url_prefix="/api/v1", description="Kiosk: check-in and walk-in tickets"
)
