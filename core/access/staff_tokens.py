"""Staff API tokens for scripts and integrations: issued, revoked, and killed by a password
change or a deactivation.

A token is `secrets.token_urlsafe(32)` shown once; only its SHA-256 is stored (one
`StaffToken` row each, several per account). It is accepted until it expires, is revoked, or
its account is deactivated or changes password (`core.access.principals.principal_for_token` reads it).
Deleting rows through the ORM is what revokes: `core.access.principals` empties its token cache on such a
change and, once committed, tells the other web processes (see `core.access.principals.revocation_hooks`).

Like every domain operation these take the session and `now`, flush, and never commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.access.passwords import MIN_PASSWORD_LENGTH, hash_password
from core.common.errors import Conflict, InvalidInput
from core.common.tokens import token_hash
from core.models import Staff, StaffToken

# Defaults of XEPHANG_STAFF_TOKEN_DAYS and XEPHANG_STAFF_TOKEN_MAX_DAYS (xephang/config.py).
DEFAULT_DAYS = 30
MAX_DAYS = 365
NAME_LENGTH = 100


def check_days(days: object, *, max_days: int = MAX_DAYS) -> int:
    """`days` if it is a whole number of days from 1 to `max_days`.

    Raises InvalidInput {"days": "token_days"} otherwise, with `max_days` in its details.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= max_days:
        raise InvalidInput({"days": "token_days"}, max_days=max_days)
    return days


def issue_staff_token(
    session: Session,
    staff: Staff,
    *,
    now: datetime,
    days: int,
    max_days: int = MAX_DAYS,
    name: str = "",
) -> tuple[str, datetime]:
    """A new API bearer token for `staff`, valid for `days` from `now`, and its expiry.

    The account's other tokens stay valid (one per script). The token is returned once:
    only its hash is stored, it cannot be read back. Raises InvalidInput for `days` outside
    1..`max_days` or a `name` over 100 characters, Conflict staff_inactive for an account
    that is switched off.
    """
    check_days(days, max_days=max_days)
    name = name.strip()
    if len(name) > NAME_LENGTH:
        raise InvalidInput({"name": "too_long"})
    if not staff.active:
        raise Conflict("staff_inactive")
    # The account's expired tokens go now, so scripts that ask for a token on every run do
    # not pile rows up. Through the table, not the ORM: removing what is refused anyway
    # revokes nothing, so no other process needs telling (see core.access.principals).
    session.execute(
        delete(StaffToken.__table__).where(
            StaffToken.__table__.c.staff_id == staff.id,
            StaffToken.__table__.c.expires_at <= now,
        )
    )
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(days=days)
    session.add(
        StaffToken(
            staff_id=staff.id,
            token_hash=token_hash(token),
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token, expires_at


def revoke_staff_token(session: Session, token: str) -> bool:
    """Revoke `token`: refused from the commit on, in this process and (with Redis) every
    other. False when no such token is stored (unknown, or revoked already)."""
    result = session.execute(delete(StaffToken).where(StaffToken.token_hash == token_hash(token)))
    return bool(result.rowcount)


def _revoke_all(session: Session, staff: Staff) -> int:
    result = session.execute(delete(StaffToken).where(StaffToken.staff_id == staff.id))
    return result.rowcount or 0


def set_password(session: Session, staff: Staff, password: str, *, now: datetime) -> int:
    """Give `staff` a new password; every API token of the account dies with the old one.

    Every password change goes through here, so that no token outlives the password it was
    obtained with. Returns how many tokens were revoked. Raises InvalidInput
    password_too_short. (`now` is the time of the change; nothing stores it yet.)
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput({"password": "password_too_short"})
    staff.password_hash = hash_password(password)
    revoked = _revoke_all(session, staff)
    session.flush()
    return revoked


def deactivate_staff(session: Session, staff: Staff, *, now: datetime) -> int:
    """Switch the account off: it can no longer sign in, and its API tokens are revoked
    (deleted, so switching it on again brings none back). Returns how many were revoked.
    (`now` is the time of the change; nothing stores it yet.)"""
    staff.active = False
    revoked = _revoke_all(session, staff)
    session.flush()
    return revoked
