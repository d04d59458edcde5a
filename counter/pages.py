"""Counter workstation pages for officers: the blueprint and its URL map.

Sign-in lives in `access`, the counter choice and the workstation in `workstation`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Blueprint

from core.common.timeutil import to_local
from counter import access, workstation
from counter.workstation import ACTIONS

bp = Blueprint(
    "counter",
    __name__,
    url_prefix="/counter",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# (rule, endpoint, view, methods)
ROUTES: tuple[tuple[str, str, Callable, list[str]], ...] = (
    ("/login", "login", access.login, ["GET"]),
    ("/login", "login_submit", access.login_submit, ["POST"]),
    ("/logout", "logout", access.logout, ["POST"]),
    ("/", "choose", workstation.choose, ["GET"]),
    ("/<int:counter_id>/open", "open", workstation.open_counter, ["POST"]),
    ("/<int:counter_id>/close", "close", workstation.close_counter, ["POST"]),
    ("/<int:counter_id>", "workstation", workstation.workstation, ["GET"]),
    ("/<int:counter_id>/queue.json", "queue", workstation.queue_json, ["GET"]),
    ("/<int:counter_id>/transfer", "transfer_page", workstation.transfer_page, ["GET"]),
)

for rule, endpoint, view, methods in ROUTES:
    bp.add_url_rule(rule, endpoint, view, methods=methods)

# One POST endpoint per action (counter.call_next at /counter/<id>/call-next, …).
for _slug in ACTIONS:
    bp.add_url_rule(
        f"/<int:counter_id>/{_slug}",
        _slug.replace("-", "_"),
        workstation.act,
        methods=["POST"],
        defaults={"action": _slug},
    )


# Time filters for the officer pages (local Ho Chi Minh City time).
def _hhmm(moment: datetime | None) -> str:
    return to_local(moment).strftime("%H:%M") if moment else ""


def _hhmmss(moment: datetime | None) -> str:
    return to_local(moment).strftime("%H:%M:%S") if moment else ""


def _minutes_until(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


bp.add_app_template_filter(_hhmm, "counter_hhmm")
bp.add_app_template_filter(_hhmmss, "counter_hhmmss")
bp.add_app_template_filter(_minutes_until, "counter_minutes_until")
