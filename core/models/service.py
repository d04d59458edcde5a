"""Services (ticket lines at a centre) and the counters that serve them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Index, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, enum_column
from core.models.catalogue import Field, Procedure, ProcedureLevel

if TYPE_CHECKING:
    from core.models.centre import Centre
    from core.models.staff import Staff

service_fields = Table(
    "service_fields",
    Base.metadata,
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("field_id", ForeignKey("fields.id", ondelete="CASCADE"), primary_key=True),
    # Which lines take a field: every availability query asks (the key leads with the line).
    Index("ix_service_fields_field_id", "field_id"),
)

service_procedures = Table(
    "service_procedures",
    Base.metadata,
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("procedure_id", ForeignKey("procedures.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_service_procedures_procedure_id", "procedure_id"),
)


class Service(Base):
    """A ticket line: takes the procedures of its fields (at its level) and any listed ones."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("centre_id", "prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(200))
    # None: procedures of any level in its fields.
    level: Mapped[ProcedureLevel | None] = mapped_column(
        enum_column(ProcedureLevel, "service_level"), nullable=True
    )
    intake_minutes: Mapped[int] = mapped_column(default=10)
    # Share of counter capacity kept for walk-ins when slots are generated.
    walk_in_share: Mapped[float | None]
    active: Mapped[bool] = mapped_column(default=True)

    centre: Mapped[Centre] = relationship(back_populates="services")
    fields: Mapped[list[Field]] = relationship(secondary=service_fields)
    procedures: Mapped[list[Procedure]] = relationship(secondary=service_procedures)
    counter_links: Mapped[list[CounterService]] = relationship(
        back_populates="service", cascade="all, delete-orphan"
    )

    def takes(self, procedure: Procedure) -> bool:
        """Whether a citizen may bring `procedure` to this line."""
        if any(p.id == procedure.id for p in self.procedures):
            return True
        level_ok = self.level is None or self.level == procedure.level
        return level_ok and any(f.id == procedure.field_id for f in self.fields)


class Counter(Base):
    __tablename__ = "counters"
    __table_args__ = (UniqueConstraint("centre_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(100), default="")
    is_open: Mapped[bool] = mapped_column(default=False)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)
    # Priority tickets called in a row here; drives the interleave that keeps others moving.
    priority_streak: Mapped[int] = mapped_column(default=0)

    centre: Mapped[Centre] = relationship(back_populates="counters")
    staff: Mapped[Staff | None] = relationship()
    service_links: Mapped[list[CounterService]] = relationship(
        back_populates="counter", cascade="all, delete-orphan", order_by="CounterService.rank"
    )

    @property
    def services(self) -> list[Service]:
        """Services this counter serves, in preference order."""
        return [link.service for link in self.service_links]


class CounterService(Base):
    __tablename__ = "counter_services"

    counter_id: Mapped[int] = mapped_column(
        ForeignKey("counters.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(default=0)

    counter: Mapped[Counter] = relationship(back_populates="service_links")
    service: Mapped[Service] = relationship(back_populates="counter_links")
