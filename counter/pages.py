"""Counter workstation pages (to be filled)."""

from flask import Blueprint

bp = Blueprint(
    "counter",
    __name__,
    url_prefix="/counter",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
