"""Who may act where: device tokens, staff tokens and sessions, roles and dispatch.

Kiosk and display devices send ``Authorization: Bearer <device token>`` and act only for
their centre. Staff use a session (pages) or ``Authorization: Bearer <staff token>`` (API);
officers act only at their centre or the centre they are dispatched to that day.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache, wraps
from typing import Any

from flask import g, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import DomainError, Forbidden
from core.extensions import db
from core.identity import token_hash
from core.models import Device, DeviceKind, Role, Staff, StaffAssignment
from core.timeutil import clock, local_day


@cache
def _dummy_hash() -> str:
    return generate_password_hash("xephang-timing-equaliser")


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def device_for_token(session: Session, token: str) -> Device | None:
    return session.scalars(
        select(Device).where(Device.token_hash == token_hash(token), Device.active.is_(True))
    ).one_or_none()


def staff_for_token(session: Session, token: str) -> Staff | None:
    return session.scalars(
        select(Staff).where(Staff.api_token_hash == token_hash(token), Staff.active.is_(True))
    ).one_or_none()


def staff_by_login(session: Session, username: str, password: str) -> Staff | None:
    """The active staff member with these credentials, else None (same answer either way)."""
    # Usernames are stored lower-case (core.demo.create_staff); people type them as they like.
    wanted = username.strip().lower()
    staff = session.scalars(select(Staff).where(Staff.username == wanted)).one_or_none()
    if staff is None:
        # Spend the same time as a real check so response times do not reveal usernames.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(staff.password_hash, password) or not staff.active:
        return None
    return staff


def centres_of(session: Session, staff: Staff, day: date) -> set[int] | None:
    """Centre ids where `staff` may act on `day`; None means every centre."""
    if staff.role in (Role.OPERATOR, Role.ADMIN):
        return None
    ids = {staff.centre_id} if staff.centre_id is not None else set()
    dispatched = session.scalars(
        select(StaffAssignment.centre_id).where(
            StaffAssignment.staff_id == staff.id, StaffAssignment.day == day
        )
    )
    return ids | set(dispatched)


def may_act_at(session: Session, staff: Staff, centre_id: int, day: date) -> bool:
    if staff.centre_id is not None and staff.centre_id == centre_id:
        return True  # one's own centre, without looking up dispatches
    allowed = centres_of(session, staff, day)
    return allowed is None or centre_id in allowed


@dataclass(frozen=True)
class Actor:
    """Who is making the current request."""

    device: Device | None = None
    staff: Staff | None = None

    def require_centre(self, centre_id: int) -> None:
        """Raise Forbidden unless this actor may act for `centre_id` today."""
        if self.device is not None:
            if self.device.centre_id != centre_id:
                raise Forbidden("forbidden")
            return
        if self.staff is None or not may_act_at(
            db.session, self.staff, centre_id, local_day(clock())
        ):
            raise Forbidden("forbidden")


def _current_actor(kinds: tuple[DeviceKind, ...], roles: tuple[Role, ...]) -> Actor:
    token = bearer_token()
    if token:
        if kinds and (device := device_for_token(db.session, token)) is not None:
            if device.kind in kinds:
                return Actor(device=device)
            raise Forbidden("forbidden")
        if roles and (staff := staff_for_token(db.session, token)) is not None:
            if staff.role in roles:
                return Actor(staff=staff)
            raise Forbidden("forbidden")
        if device_for_token(db.session, token) or staff_for_token(db.session, token):
            raise Forbidden("forbidden")
        raise Unauthorized()
    if roles and current_user.is_authenticated:
        if current_user.role in roles:
            return Actor(staff=current_user._get_current_object())
        raise Forbidden("forbidden")
    raise Unauthorized()


def require(
    *, devices: tuple[DeviceKind, ...] = (), roles: tuple[Role, ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the request must come from one of these device kinds or staff roles.

    The actor is left in ``g.actor``; checking the centre is the handler's job
    (``g.actor.require_centre(centre.id)``) because only it knows which centre is meant.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            g.actor = _current_actor(devices, roles)
            return view(*args, **kwargs)

        return wrapped

    return decorate


STAFF_ROLES = (Role.OFFICER, Role.MANAGER, Role.OPERATOR, Role.ADMIN)


def load_staff(user_id: str) -> Staff | None:
    """Flask-Login user loader."""
    if not user_id.isdigit():
        return None
    staff = db.session.get(Staff, int(user_id))
    return staff if staff is not None and staff.active else None


def issue_staff_token(session: Session, staff: Staff) -> str:
    """A new API bearer token for `staff`, replacing any earlier one; only its hash is kept.

    The token is returned once: show it to the staff member, it cannot be read back.
    """
    token = secrets.token_urlsafe(32)
    staff.api_token_hash = token_hash(token)
    session.flush()
    return token
