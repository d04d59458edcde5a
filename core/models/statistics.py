"""Daily statistics of the floor: counts and times per centre, line, source, hour and field.

Rows hold no personal data, so they outlive the purge of names, phones and citizen hashes.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class DailyStatistic(Base):
    """One cell of a day's figures at a centre.

    `service_id`, `source` and `hour` are grouping keys; None means "all" (a roll-up), so a
    day's percentiles are exact at every level the dashboard shows instead of being
    averaged from finer cells: (line, source, hour), (line, source), (line), (source),
    (hour) and the centre's whole day (all three None).

    The by-field level is apart: `by_field` True, `field_id` the tickets' field (None for
    tickets whose field is not known, see core.operations.statistics.ticket_field) and the other three
    keys None. The marker is needed because a field row has service, source and hour None
    exactly like the whole-day row, and the unknown-field row has field_id None as well: a
    reader of the other levels filters `by_field IS false`, never only on `field_id`.
    """

    __tablename__ = "daily_statistics"
    __table_args__ = (Index("ix_daily_statistics_day_centre", "day", "centre_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    # TicketSource value ("appointment", "walk_in", "remote").
    source: Mapped[str | None] = mapped_column(String(16))
    # Local hour (0–23) in which the ticket was issued.
    hour: Mapped[int | None]
    # The by-field level (see above): its own marker, then the field (None: not known).
    by_field: Mapped[bool] = mapped_column(default=False, server_default=false())
    field_id: Mapped[int | None] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"))
    issued: Mapped[int] = mapped_column(default=0)
    served: Mapped[int] = mapped_column(default=0)
    no_show: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0)
    # Wait: queue time to first call, in minutes, over the tickets that were called.
    waits: Mapped[int] = mapped_column(default=0)
    wait_p50: Mapped[float | None]
    wait_p90: Mapped[float | None]
    # Service: start to finish at the counter, in minutes, over the tickets served.
    service_avg: Mapped[float | None]
    # Estimate accuracy over tickets given a wait range: how many waited within it, and the
    # mean minutes by which the actual wait fell outside it (0 when inside).
    estimates: Mapped[int] = mapped_column(default=0)
    estimates_within: Mapped[int] = mapped_column(default=0)
    eta_error_minutes: Mapped[float | None]
    computed_at: Mapped[datetime]
