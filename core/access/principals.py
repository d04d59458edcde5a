"""Who may act where: device tokens, staff tokens and sessions, roles and dispatch.

Kiosk and display devices send ``Authorization: Bearer <device token>`` and act only for
their centre. Staff use a session (pages) or ``Authorization: Bearer <staff token>`` (API);
officers act only at their centre or the centre they are dispatched to that day. Staff
tokens are issued and revoked in `core.access.staff_tokens`; the request's side (the
header, the session, the decorator) is web.auth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from typing import Any, Protocol

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from core.access.passwords import password_matches, spend_a_check
from core.common.cache import TTLCache
from core.common.tokens import token_hash
from core.models import Device, DeviceKind, Role, Staff, StaffAssignment, StaffToken

log = logging.getLogger(__name__)


class StaffLike(Protocol):
    """What the rules of where staff may act need: a Staff row or a cached Principal."""

    id: int
    role: Role | None
    centre_id: int | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a bearer token stands for, as plain values: a device (with its kind) or a staff
    member (with their role and the token's expiry), and the home centre."""

    id: int
    centre_id: int | None
    device_kind: DeviceKind | None = None
    role: Role | None = None
    expires_at: datetime | None = None

    @property
    def is_device(self) -> bool:
        return self.device_kind is not None


# Token → principal in one prebuilt statement each (no ORM object is loaded for a request
# that needs only these columns). A staff token is found by its unique hash, joined to its
# account: unexpired at `now`, account active.
_devices, _staff, _tokens = Device.__table__, Staff.__table__, StaffToken.__table__
_DEVICE_BY_TOKEN = select(_devices.c.id, _devices.c.centre_id, _devices.c.kind).where(
    _devices.c.token_hash == bindparam("h"), _devices.c.active.is_(True)
)
_STAFF_BY_TOKEN = (
    select(_staff.c.id, _staff.c.centre_id, _staff.c.role, _tokens.c.expires_at)
    .select_from(_tokens.join(_staff, _staff.c.id == _tokens.c.staff_id))
    .where(
        _tokens.c.token_hash == bindparam("h"),
        _tokens.c.expires_at > bindparam("now"),
        _staff.c.active.is_(True),
    )
)


class _TokenCache(TTLCache[Principal]):
    """Known tokens for a few seconds, so a kiosk or counter that calls many times a minute
    is not looked up every time. Only tokens that were found are kept (an unknown token is
    asked again next time), at most `limit` of them.

    Revocation: a device, staff or staff-token row changed or deleted through the ORM in
    this process (deactivated, password changed, token revoked) empties the cache at once
    (see `_forget_on_change`). Another process (the CLI, another web instance) making such a
    change tells this one through `revocation_hooks` when they share Redis (see
    xephang/revocation.py); without Redis, or while it is down, its change bites within
    `ttl` seconds. A staff token is never served past its expiry (`principal_for_token`).
    """

    def __init__(self, ttl: float, limit: int = 4096) -> None:
        super().__init__(ttl)
        self.limit = limit
        # Bumped by every `forget`: a row read before it is not kept after it.
        self._generation = 0

    def forget(self, match: Callable[[Hashable], bool] | None = None) -> None:
        with self._lock:
            self._generation += 1
        super().forget(match)

    def lookup(
        self, session: Session, key: Hashable, load: Callable[[], Principal | None]
    ) -> Principal | None:
        full = (session.get_bind().url, key)
        entry = self._entries.get(full)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        generation = self._generation
        value = load()
        with self._lock:
            if value is None or generation != self._generation:
                self._entries.pop(full, None)
                return value
            if len(self._entries) >= self.limit:
                moment = time.monotonic()
                for stale in [k for k, (until, _) in self._entries.items() if until <= moment]:
                    del self._entries[stale]
                if len(self._entries) >= self.limit:
                    self._entries.clear()
            self._entries[full] = (time.monotonic() + self.ttl, value)
        return value


TOKEN_CACHE_SECONDS = 5.0
_principals = _TokenCache(ttl=TOKEN_CACHE_SECONDS)


# Run by `forget_tokens()` after a committed change may have revoked tokens, so that other
# processes forget theirs too: xephang/revocation.py adds one that publishes on Redis. Each
# takes no argument; one that raises is logged and the others still run.
revocation_hooks: list[Callable[[], None]] = []

_REVOKING = (Device, Staff, StaffToken)
_REVOKED_KEY = "xephang_tokens_revoked"


def forget_tokens(*, announce: bool = True) -> None:
    """Drop every token this process has cached (a device, staff account or staff token
    changed); with `announce`, run `revocation_hooks` so other processes drop theirs.

    `announce=False` is for a change not committed yet (telling others then would let them
    read the old row again) and for a process told by another one.
    """
    _principals.forget()
    if not announce:
        return
    for hook in list(revocation_hooks):
        try:
            hook()
        except Exception:
            log.exception("token revocation hook %r failed", hook)


def _revoking(session: Session) -> None:
    # Forget now, so this process's next look-up reads the database; announce once committed.
    session.info[_REVOKED_KEY] = True
    forget_tokens(announce=False)


@event.listens_for(Session, "after_flush")
def _forget_on_change(session: Session, _context: Any) -> None:
    # Changed or deleted rows only: a new device, account or token revokes nothing.
    if any(isinstance(obj, _REVOKING) for obj in chain(session.dirty, session.deleted)):
        _revoking(session)


@event.listens_for(Session, "do_orm_execute")
def _forget_on_bulk_change(state: ORMExecuteState) -> None:
    # ORM-enabled UPDATE and DELETE statements (`session.execute(delete(StaffToken)…)`), as
    # they start: the flush events never see them. Statements on bare tables are not looked
    # at (core.access.staff_tokens removes expired tokens that way, which revokes nothing).
    if (state.is_update or state.is_delete) and any(
        mapper.class_ in _REVOKING for mapper in state.all_mappers
    ):
        _revoking(state.session)


@event.listens_for(Session, "after_bulk_update")
@event.listens_for(Session, "after_bulk_delete")
def _forget_on_legacy_bulk_change(context: Any) -> None:
    # The legacy `Query.update()` and `Query.delete()`.
    if context.mapper.class_ in _REVOKING:
        _revoking(context.session)


@event.listens_for(Session, "after_commit")
def _announce_revocation(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: the transaction itself may still roll back
    if session.info.pop(_REVOKED_KEY, False):
        # Forgotten again: a look-up of this process between the flush and the commit read
        # the old row. Then the other processes, which can only read the new one now.
        forget_tokens()


@event.listens_for(Session, "after_soft_rollback")
def _nothing_revoked(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction, not a savepoint of it
        session.info.pop(_REVOKED_KEY, None)


def principal_for_token(
    session: Session, token: str, *, devices: bool, staff: bool, now: datetime
) -> Principal | None:
    """The active device (if `devices`) or staff member (if `staff`) holding `token`; a staff
    token only until it expires (`now`, the app's clock)."""
    hashed = token_hash(token)
    if devices:
        found = _principals.lookup(
            session, ("device", hashed), lambda: _device_row(session, hashed)
        )
        if found is not None:
            return found
    if staff:
        found = _principals.lookup(
            session, ("staff", hashed), lambda: _staff_row(session, hashed, now)
        )
        # The cache keeps a token for seconds whatever its expiry: check it on every use.
        if found is not None and found.expires_at is not None and found.expires_at > now:
            return found
    return None


def _device_row(session: Session, hashed: str) -> Principal | None:
    row = session.connection().execute(_DEVICE_BY_TOKEN, {"h": hashed}).first()
    return Principal(row.id, row.centre_id, device_kind=row.kind) if row is not None else None


def _staff_row(session: Session, hashed: str, now: datetime) -> Principal | None:
    row = session.connection().execute(_STAFF_BY_TOKEN, {"h": hashed, "now": now}).first()
    if row is None:
        return None
    return Principal(row.id, row.centre_id, role=row.role, expires_at=row.expires_at)


def device_for_token(session: Session, token: str) -> Device | None:
    return session.scalars(
        select(Device).where(Device.token_hash == token_hash(token), Device.active.is_(True))
    ).one_or_none()


def staff_by_login(session: Session, username: str, password: str) -> Staff | None:
    """The active staff member with these credentials, else None (same answer either way)."""
    # Usernames are stored lower-case (core.demo.create_staff); people type them as they like.
    wanted = username.strip().lower()
    staff = session.scalars(select(Staff).where(Staff.username == wanted)).one_or_none()
    if staff is None:
        # Spend the same time as a real check so response times do not reveal usernames.
        spend_a_check(password)
        return None
    if not password_matches(staff.password_hash, password) or not staff.active:
        return None
    return staff


def centres_of(session: Session, staff: StaffLike, day: date) -> set[int] | None:
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


def may_act_at(session: Session, staff: StaffLike, centre_id: int, day: date) -> bool:
    if staff.centre_id is not None and staff.centre_id == centre_id:
        return True  # one's own centre, without looking up dispatches
    allowed = centres_of(session, staff, day)
    return allowed is None or centre_id in allowed


STAFF_ROLES = (Role.OFFICER, Role.MANAGER, Role.OPERATOR, Role.ADMIN)
