"""Kiosk pages: the blueprint, its URL map, the device binding guard and error screens.

A kiosk browser is bound to one kiosk device once (`/kiosk/setup?token=…`); the binding
lives in the signed session cookie, so the token never appears in a later URL. Views
live by step: `binding` (setup, start), `checkin` (appointments), `walkin` (field →
procedure or line → confirm) and `ticket` (the printed ticket).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, g, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from core.common.errors import DomainError
from core.common.timeutil import to_local
from core.floor.kiosk import bound_kiosk
from kiosk import binding, checkin, ticket, walkin
from kiosk.texts import priority_label, refusal
from web.clock import clock
from web.extensions import db, limiter
from web.messages import message

bp = Blueprint(
    "kiosk",
    __name__,
    url_prefix="/kiosk",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Endpoints a browser may reach before it is bound to a kiosk.
_OPEN_ENDPOINTS = {"kiosk.setup", "kiosk.setup_submit", "kiosk.static"}


def _per_kiosk() -> str:
    """Rate-limit key: the bound device, so one busy kiosk never throttles another."""
    # Read from the session: the limiter may run before the binding guard sets g.kiosk.
    device_id = (session.get(binding.SESSION_KEY) or {}).get("device")
    return f"kiosk:{device_id}" if device_id else request.remote_addr or "-"


def _guessing_limit(view: Callable) -> Callable:
    # Check-in by code + 4 digits is the one thing worth guessing at a kiosk.
    return limiter.limit(
        lambda: current_app.config.get("RATE_LIMIT_KIOSK_CHECKIN", "30 per minute"),
        key_func=_per_kiosk,
    )(view)


# (rule, endpoint, view, methods)
ROUTES: tuple[tuple[str, str, Callable, list[str]], ...] = (
    ("/setup", "setup", binding.setup, ["GET"]),
    ("/setup", "setup_submit", binding.setup_submit, ["POST"]),
    ("/", "start", binding.start, ["GET"]),
    ("/checkin", "checkin", checkin.show, ["GET"]),
    ("/checkin", "checkin_submit", _guessing_limit(checkin.submit), ["POST"]),
    ("/take", "take", walkin.fields, ["GET"]),
    ("/take/fields/<int:field_id>", "field", walkin.field, ["GET"]),
    ("/take/confirm", "confirm", walkin.confirm, ["GET"]),
    ("/take/confirm", "confirm_submit", walkin.submit, ["POST"]),
    ("/tickets/<public_id>", "ticket", ticket.show, ["GET"]),
)

for rule, endpoint, view, methods in ROUTES:
    bp.add_url_rule(rule, endpoint, view, methods=methods)


@bp.before_request
def _require_binding():
    if request.endpoint in _OPEN_ENDPOINTS:
        return None
    bound = session.get(binding.SESSION_KEY) or {}
    device = bound_kiosk(db.session, bound.get("device"), bound.get("mark"))
    if device is None:
        return render_template("kiosk/not_activated.html"), 403
    g.kiosk = device
    return None


@bp.after_request
def _no_store(response):
    # A kiosk is shared: Back must never bring up the previous citizen's screen.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _answer(status: int, text: str, code: str = ""):
    return render_template("kiosk/answer.html", status=status, text=text, code=code), status


@bp.errorhandler(DomainError)
def _domain(err: DomainError):
    return _answer(err.status, refusal(err), err.code)


@bp.errorhandler(CSRFError)
def _csrf(_err: CSRFError):
    return _answer(400, message("csrf"))


@bp.errorhandler(HTTPException)
def _http(err: HTTPException):
    status = err.code or 500
    code = {404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}.get(
        status, "bad_request"
    )
    return _answer(status, message(code))


@bp.context_processor
def _screen_context() -> dict:
    cfg = current_app.config
    now = clock()
    return {
        "kiosk": g.get("kiosk"),
        "server_now_ms": int(now.timestamp() * 1000),
        "local_now": to_local(now),
        "idle_seconds": int(cfg.get("KIOSK_IDLE_SECONDS", 30)),
        # Going home after inactivity also drops a previous citizen's language choice.
        "idle_url": url_for("kiosk.start", lang=cfg.get("DEFAULT_LOCALE", "vi")),
        "priority_label": priority_label,
        "hhmm": lambda moment: to_local(moment).strftime("%H:%M"),
        "dmy": lambda moment: to_local(moment).strftime("%d/%m/%Y"),
    }
