"""Services (ticket lines at a centre) and the counters that serve them."""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    and_,
    or_,
    select,
)
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


# --- The rule of which procedures a line takes, in Python and in SQL (one place) ------------
#
# A line takes a procedure listed on it, and any procedure of one of its fields whose level is
# the line's (a line without a level takes every level). `service_takes` decides it for values
# in memory; `takes_clause` is the same rule as a SQL condition over columns, values or bound
# parameters. tests/core/models/test_service_rule.py holds the two together.


def service_takes(
    *,
    listed: Container[int],
    fields: Container[int],
    service_level: str | None,
    procedure_id: int,
    field_id: int,
    level: str,
) -> bool:
    """Whether a line (its listed procedure ids, field ids and level) takes a procedure."""
    return procedure_id in listed or (field_id in fields and service_level in (None, level))


def takes_clause(
    service_id: Any,
    service_level: Any,
    *,
    procedure_id: Any,
    field_id: Any,
    level: Any,
    correlate: tuple[Any, ...] = (),
) -> ColumnElement[bool]:
    """`service_takes` in SQL: the line whose id and level are these columns takes the
    procedure whose id, field and level are these columns, values or bound parameters.

    `correlate`: the procedure's table when it sits more than one SELECT up (SQLAlchemy
    correlates the subqueries to the enclosing SELECT only by itself)."""
    fields_of = select(service_fields.c.service_id).where(service_fields.c.field_id == field_id)
    listed_on = select(service_procedures.c.service_id).where(
        service_procedures.c.procedure_id == procedure_id
    )
    if correlate:
        fields_of, listed_on = fields_of.correlate(*correlate), listed_on.correlate(*correlate)
    by_field = and_(service_id.in_(fields_of), or_(service_level.is_(None), service_level == level))
    return or_(service_id.in_(listed_on), by_field)


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
        """Whether a citizen may bring `procedure` to this line (`service_takes`)."""
        return service_takes(
            listed={p.id for p in self.procedures},
            fields={f.id for f in self.fields},
            service_level=self.level.value if self.level else None,
            procedure_id=procedure.id,
            field_id=procedure.field_id,
            level=procedure.level.value,
        )


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
