"""The procedure catalogue: fields (lĩnh vực) and procedures (thủ tục)."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, enum_column


class ProcedureLevel(enum.Enum):
    # Received at department (Sở) level: the City centre and area-team hubs.
    DEPARTMENT = "department"
    # Received at commune/ward level: every centre.
    COMMUNE = "commune"


class Field(Base):
    __tablename__ = "fields"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    intake_minutes: Mapped[int] = mapped_column(default=10)

    procedures: Mapped[list[Procedure]] = relationship(back_populates="field")


class Procedure(Base):
    __tablename__ = "procedures"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_folded: Mapped[str] = mapped_column(Text, default="")
    field_id: Mapped[int] = mapped_column(ForeignKey("fields.id"), index=True)
    level: Mapped[ProcedureLevel] = mapped_column(enum_column(ProcedureLevel, "procedure_level"))
    location_independent: Mapped[bool] = mapped_column(default=True)
    # Counter intake time, not the dossier's legal processing time.
    intake_minutes: Mapped[int | None]
    processing_time: Mapped[str] = mapped_column(String(200), default="")
    fee: Mapped[str] = mapped_column(Text, default="")
    source_url: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(default=True)

    field: Mapped[Field] = relationship(back_populates="procedures")

    @property
    def expected_intake_minutes(self) -> int:
        return self.intake_minutes or self.field.intake_minutes
