"""The request's caller: a bearer token (device or staff) or a signed-in session, checked
against the roles and device kinds a view allows (core.access.principals holds the rules)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from flask_login import current_user

from core.access.principals import Principal, may_act_at, principal_for_token
from core.common.errors import Forbidden, Unauthorized
from core.common.timeutil import local_day
from core.models import Device, DeviceKind, Role, Staff
from web.clock import clock
from web.extensions import db


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Actor:
    """Who is making the current request: a device or a staff member (token or session).

    Its plain facts (`principal`) come with the token; the model objects (`staff`,
    `device`) are loaded only by the handlers that need them.
    """

    __slots__ = ("_device", "_staff", "principal")

    def __init__(self, principal: Principal, *, staff: Staff | None = None) -> None:
        self.principal = principal
        self._staff = staff
        self._device: Device | None = None

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(Principal(staff.id, staff.centre_id, role=staff.role), staff=staff)

    @property
    def staff_id(self) -> int | None:
        return None if self.principal.is_device else self.principal.id

    @property
    def staff(self) -> Staff | None:
        """The staff member as a model object (None for a device)."""
        if self._staff is None and not self.principal.is_device:
            staff = db.session.get(Staff, self.principal.id)
            if staff is None or not staff.active:
                raise Unauthorized()
            self._staff = staff
        return self._staff

    @property
    def device(self) -> Device | None:
        """The device as a model object (None for staff)."""
        if self._device is None and self.principal.is_device:
            device = db.session.get(Device, self.principal.id)
            if device is None or not device.active:
                raise Unauthorized()
            self._device = device
        return self._device

    def require_centre(self, centre_id: int) -> None:
        """Raise Forbidden unless this actor may act for `centre_id` today."""
        principal = self.principal
        if principal.is_device:
            if principal.centre_id != centre_id:
                raise Forbidden("forbidden")
            return
        if not may_act_at(db.session, principal, centre_id, local_day(clock())):
            raise Forbidden("forbidden")


def _current_actor(kinds: tuple[DeviceKind, ...], roles: tuple[Role, ...]) -> Actor:
    token = bearer_token()
    if token:
        session = db.session()
        found = principal_for_token(
            session, token, devices=bool(kinds), staff=bool(roles), now=clock()
        )
        if found is not None:
            if found.device_kind in kinds or found.role in roles:
                return Actor(found)
            raise Forbidden("forbidden")
        # Known, but as the other kind of caller: forbidden here rather than unknown.
        if principal_for_token(session, token, devices=not kinds, staff=not roles, now=clock()):
            raise Forbidden("forbidden")
        raise Unauthorized()
    if roles and current_user.is_authenticated:
        if current_user.role in roles:
            return Actor.of_staff(current_user._get_current_object())
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


def load_staff(user_id: str) -> Staff | None:
    """Flask-Login user loader."""
    if not user_id.isdigit():
        return None
    staff = db.session.get(Staff, int(user_id))
    return staff if staff is not None and staff.active else None
