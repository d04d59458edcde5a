"""Citizen booking pages: the blueprint and its URL map.

Views live by step: `find` (procedure, centre, slot), `book` (the form) and `manage`
(confirmation, downloads, cancel, reschedule). Every form POST is rate limited per client.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app

from booking import book, find, formatting, manage, owner
from web.extensions import limiter
from web.messages import message

bp = Blueprint(
    "booking",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/booking",
)
formatting.register(bp)
bp.before_request(owner.trade_link_token)
bp.add_app_template_global(message, "message")


def _limited(view: Callable) -> Callable:
    return limiter.limit(lambda: current_app.config["RATE_LIMIT_BOOKING"])(view)


# (rule, endpoint, view, methods)
ROUTES: tuple[tuple[str, str, Callable, list[str]], ...] = (
    ("/", "search", find.search, ["GET"]),
    ("/procedures/<code>", "centres", find.centres, ["GET"]),
    ("/procedures/<code>/centres/<centre_code>", "slots", find.slots, ["GET"]),
    ("/procedures/<code>/book", "book", book.show, ["GET"]),
    ("/procedures/<code>/book", "book_submit", _limited(book.submit), ["POST"]),
    ("/manage", "manage", manage.lookup, ["GET"]),
    ("/manage", "manage_submit", _limited(manage.lookup_submit), ["POST"]),
    ("/appointments/<code>", "appointment", manage.show, ["GET"]),
    ("/appointments/<code>/qr.png", "qr_png", manage.qr_png, ["GET"]),
    ("/appointments/<code>/calendar.ics", "calendar", manage.calendar, ["GET"]),
    ("/appointments/<code>/cancel", "cancel", manage.cancel_confirm, ["GET"]),
    ("/appointments/<code>/cancel", "cancel_submit", _limited(manage.cancel_submit), ["POST"]),
    ("/appointments/<code>/reschedule", "reschedule", manage.reschedule_centres, ["GET"]),
    (
        "/appointments/<code>/reschedule/<centre_code>",
        "reschedule_slots",
        manage.reschedule_slots,
        ["GET"],
    ),
    (
        "/appointments/<code>/reschedule/slot/<int:slot_id>",
        "reschedule_confirm",
        manage.reschedule_confirm,
        ["GET"],
    ),
    (
        "/appointments/<code>/reschedule/slot/<int:slot_id>",
        "reschedule_submit",
        _limited(manage.reschedule_submit),
        ["POST"],
    ),
)

for rule, endpoint, view, methods in ROUTES:
    bp.add_url_rule(rule, endpoint, view, methods=methods)
