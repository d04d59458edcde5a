"""What the dashboard's figures share: the ticket sources, the balancing policy of the app,
the centres in a caller's view, and ratios that may be infinite."""

from __future__ import annotations

import math

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Centre
from core.operations import balancing

SOURCES = ("appointment", "walk_in", "remote")


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: an unbounded ratio (no capacity at all) is null."""
    return None if math.isinf(value) else value


def balancing_policy() -> balancing.BalancingPolicy:
    return balancing.BalancingPolicy.from_config(current_app.config)


def active_centres(session: Session, ids: list[int] | None) -> list[Centre]:
    """Active centres by code: all of them (`ids` None) or these."""
    q = select(Centre).where(Centre.active.is_(True)).order_by(Centre.code)
    if ids is not None:
        q = q.where(Centre.id.in_(ids))
    return list(session.scalars(q))
