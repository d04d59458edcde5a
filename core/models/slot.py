"""Bookable slots: capacity at a service for a time window."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base

if TYPE_CHECKING:
    from core.models.centre import Centre
    from core.models.service import Service


class Slot(Base):
    __tablename__ = "slots"
    __table_args__ = (
        UniqueConstraint("service_id", "starts_at"),
        # The database itself refuses an overbooked slot, whatever the code does.
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        Index("ix_slots_centre_day", "centre_id", "day"),
        # A centre's slots in time order: the soonest free ones (alternatives to a full slot).
        Index("ix_slots_centre_starts", "centre_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    day: Mapped[date]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    capacity: Mapped[int]
    booked: Mapped[int] = mapped_column(default=0)
    # Opened for booking from this instant (rolling window); None = open.
    opens_at: Mapped[datetime | None]

    centre: Mapped[Centre] = relationship()
    service: Mapped[Service] = relationship()

    @property
    def remaining(self) -> int:
        return max(self.capacity - self.booked, 0)
