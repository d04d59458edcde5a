"""The app's clock: now, unless tests or a simulation inject `CLOCK` in the config.

Core never reads it: domain operations take `now` from their caller.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context

from core.common.timeutil import utcnow


def clock() -> datetime:
    """Now, as the running app sees it: tests and simulations inject `CLOCK` in the config."""
    if has_app_context():
        injected = current_app.config.get("CLOCK")
        if injected is not None:
            return injected()
    return utcnow()
