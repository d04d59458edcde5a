"""Citizen booking pages (to be filled)."""

from flask import Blueprint

bp = Blueprint(
    "booking",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/booking",
)
