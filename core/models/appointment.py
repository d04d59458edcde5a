"""Appointments: a citizen's booked seat in a slot."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, enum_column

if TYPE_CHECKING:
    from core.models.catalogue import Procedure
    from core.models.centre import Centre
    from core.models.service import Service
    from core.models.slot import Slot


class AppointmentStatus(enum.Enum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    DONE = "done"


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_citizen_status", "citizen_hash", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id"), index=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_column(AppointmentStatus, "appointment_status"), default=AppointmentStatus.BOOKED
    )
    # Personal data: purged on schedule (full_name/phone/email blanked, purged_at set).
    full_name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    # HMAC of the citizen ID under a server key; the ID itself is never stored.
    citizen_hash: Mapped[str] = mapped_column(String(64))
    manage_token_hash: Mapped[str] = mapped_column(String(64))
    qr_nonce: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    consent_at: Mapped[datetime]
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    slot: Mapped[Slot] = relationship()
    centre: Mapped[Centre] = relationship()
    service: Mapped[Service] = relationship()
    procedure: Mapped[Procedure] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status == AppointmentStatus.BOOKED
