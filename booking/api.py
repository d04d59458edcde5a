"""Public booking API (to be filled)."""

from flask_smorest import Blueprint

blp = Blueprint(
    "booking_api",
    __name__,
    url_prefix="/api/v1",
    description="Catalogue, availability and appointments",
)
