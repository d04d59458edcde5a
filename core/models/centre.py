"""Centres (one public administrative service centre per ward/commune) and their closures."""

from __future__ import annotations

import enum
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, enum_column

if TYPE_CHECKING:
    from core.models.service import Counter, Service

# Mon–Fri 07:30–11:30 and 13:00–17:00, many centres also Saturday morning.
DEFAULT_OPENING_HOURS: dict[str, list[list[str]]] = {
    "0": [["07:30", "11:30"], ["13:00", "17:00"]],
    "1": [["07:30", "11:30"], ["13:00", "17:00"]],
    "2": [["07:30", "11:30"], ["13:00", "17:00"]],
    "3": [["07:30", "11:30"], ["13:00", "17:00"]],
    "4": [["07:30", "11:30"], ["13:00", "17:00"]],
}


class CentreKind(enum.Enum):
    WARD = "ward"
    COMMUNE = "commune"
    SPECIAL_ZONE = "special_zone"
    CITY = "city"


class Centre(Base):
    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CentreKind] = mapped_column(enum_column(CentreKind, "centre_kind"))
    address: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    area_km2: Mapped[float | None]
    # Names of the pre-2025 wards merged into this one: citizens still search by them.
    legacy_names: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    is_hub: Mapped[bool] = mapped_column(default=False)
    # Weekday ("0" = Monday) → list of ["HH:MM", "HH:MM"] local opening periods.
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)

    services: Mapped[list[Service]] = relationship(
        back_populates="centre", order_by="Service.prefix"
    )
    counters: Mapped[list[Counter]] = relationship(
        back_populates="centre", order_by="Counter.number"
    )
    closures: Mapped[list[Closure]] = relationship(back_populates="centre")

    def __repr__(self) -> str:
        return f"<Centre {self.code} {self.name}>"


class Closure(Base):
    """A day a centre (or, with no centre, every centre) is closed beyond public holidays."""

    __tablename__ = "closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")

    centre: Mapped[Centre | None] = relationship(back_populates="closures")
