"""Settings the domain reads from the running app's configuration."""

from __future__ import annotations

from flask import current_app

from core.booking.appointments import BookingRules
from core.booking.slots import SlotPolicy
from core.floor.tickets import FloorRules


def booking_rules() -> BookingRules:
    cfg = current_app.config
    return BookingRules(
        max_active=cfg["MAX_ACTIVE_APPOINTMENTS"],
        max_per_procedure_day=cfg["MAX_PER_PROCEDURE_DAY"],
        min_lead_minutes=cfg["BOOKING_MIN_LEAD_MINUTES"],
    )


def slot_policy() -> SlotPolicy:
    cfg = current_app.config
    return SlotPolicy(window_minutes=cfg["SLOT_WINDOW_MINUTES"], walk_in_share=cfg["WALK_IN_SHARE"])


def citizen_key() -> bytes:
    """The key of the citizen-ID hash. Changing it unlinks every stored hash: keep it safe."""
    return current_app.config["CITIZEN_ID_KEY"].encode("utf-8")


def secret() -> str:
    return current_app.config["SECRET_KEY"]


def floor_rules() -> FloorRules:
    cfg = current_app.config
    return FloorRules(
        grace_minutes=cfg["GRACE_MINUTES"],
        early_minutes=cfg["EARLY_CHECKIN_MINUTES"],
        late_limit_minutes=cfg["LATE_LIMIT_MINUTES"],
        max_calls=cfg["MAX_CALLS"],
        priority_interleave=cfg["PRIORITY_INTERLEAVE"],
        remote_tickets_per_day=cfg["REMOTE_TICKETS_PER_DAY"],
    )


def staff_token_days() -> tuple[int, int]:
    """Days a staff API token is valid when none are asked for, and the most it may be."""
    cfg = current_app.config
    maximum = cfg["STAFF_TOKEN_MAX_DAYS"]
    # A default above the maximum would refuse every request that gives no `days`.
    return min(cfg["STAFF_TOKEN_DAYS"], maximum), maximum
