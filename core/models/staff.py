"""Staff accounts, their roles, assignments (dispatch) to centres and API tokens."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, enum_column

if TYPE_CHECKING:
    from core.models.centre import Centre


class Role(enum.Enum):
    OFFICER = "officer"
    MANAGER = "manager"
    OPERATOR = "operator"
    ADMIN = "admin"


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(enum_column(Role, "staff_role"))
    # Home centre; None for city operators and the mobile pool.
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"))
    in_mobile_pool: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    centre: Mapped[Centre | None] = relationship()
    assignments: Mapped[list[StaffAssignment]] = relationship(back_populates="staff")

    # Flask-Login protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)


class StaffAssignment(Base):
    """A staff member working at a centre on a day (their own, or dispatched)."""

    __tablename__ = "staff_assignments"
    __table_args__ = (UniqueConstraint("staff_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    day: Mapped[date]
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]

    staff: Mapped[Staff] = relationship(back_populates="assignments")
    centre: Mapped[Centre] = relationship()


class StaffToken(Base):
    """An API bearer token of a staff member, for scripts and integrations.

    Only the token's SHA-256 is stored (`core.citizens.identity.token_hash`): the token itself is shown
    once, when issued. A staff member may hold several (one per script); each expires, and
    all die with a password change or deactivation (`core.access.staff_tokens`).
    """

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the token is for ("nightly export"), to tell a staff member's tokens apart.
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    staff: Mapped[Staff] = relationship()
