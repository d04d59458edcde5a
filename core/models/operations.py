"""City operations: the load each balancing pass finds, and decisions on dispatch plans.

Neither holds personal data. `CentreDayLoad` is a snapshot the 15-minute balancing job writes
so that booking suggestions and the dashboard read a centre's load in one cheap query instead
of recomputing forecasts and Erlang C per request.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class CentreDayLoad(Base):
    """A centre on one open day, as the last balancing pass saw it."""

    __tablename__ = "centre_day_loads"

    centre_id: Mapped[int] = mapped_column(
        ForeignKey("centres.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    # (booked + forecast walk-ins) / capacity over the centre's busiest line; None when
    # there is demand at a line with no counter (unbounded).
    utilisation: Mapped[float | None]
    overloaded: Mapped[bool]
    officers: Mapped[int]
    needed: Mapped[int]
    computed_at: Mapped[datetime]


class DispatchDecision(Base):
    """An operator's answer to a dispatch plan for a day: accepted or declined.

    Plans are identified by the hash of their content (core.operations.dispatch), so a changed plan is a
    new plan with no decision yet.
    """

    __tablename__ = "dispatch_decisions"
    __table_args__ = (UniqueConstraint("plan_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date]
    status: Mapped[str] = mapped_column(String(16))  # "accepted" or "declined"
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime]
