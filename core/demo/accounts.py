"""Demo staff accounts and devices: created once, their secrets returned once."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access.passwords import MIN_PASSWORD_LENGTH, hash_password
from core.common.errors import Conflict, InvalidInput
from core.common.tokens import token_hash
from core.demo.layout import _USERNAME, OFFICERS_PER_SHOWCASE, SHOWCASE
from core.demo.report import Credential, DemoReport
from core.models import (
    Centre,
    Device,
    DeviceKind,
    Role,
    Staff,
)

# --- accounts and devices -------------------------------------------------------------


def create_staff(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    centre: Centre | None,
    full_name: str,
    now: datetime,
) -> Staff:
    """A staff account with a hashed password.

    Raises InvalidInput for a malformed username, a short password or an officer/manager
    without a centre, and Conflict when the username is taken.
    """
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise InvalidInput({"username": "invalid_username"})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput({"password": "password_too_short"})
    if role in (Role.OFFICER, Role.MANAGER) and centre is None:
        raise InvalidInput({"centre": "centre_required"})
    if session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise Conflict("username_taken", field="username")
    staff = Staff(
        username=username,
        full_name=full_name.strip() or username,
        password_hash=hash_password(password),
        role=role,
        centre_id=centre.id if centre else None,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    return staff


def create_device(
    session: Session, *, kind: DeviceKind, centre: Centre, name: str, now: datetime
) -> tuple[Device, str]:
    """A kiosk or display bound to `centre`, and its bearer token (stored only as a hash).

    Raises InvalidInput when the name is empty or too long.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput({"name": "invalid_name"})
    token = secrets.token_urlsafe(32)
    device = Device(
        kind=kind, centre_id=centre.id, name=name, token_hash=token_hash(token), created_at=now
    )
    session.add(device)
    session.flush()
    return device, token


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _ensure_staff(
    session: Session,
    report: DemoReport,
    *,
    username: str,
    role: Role,
    centre: Centre | None,
    full_name: str,
    now: datetime,
) -> None:
    if session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        return
    password = _new_password()
    create_staff(
        session,
        username=username,
        password=password,
        role=role,
        centre=centre,
        full_name=full_name,
        now=now,
    )
    centre_name = centre.name if centre else ""
    report.credentials.append(Credential("staff", username, role.value, centre_name, password))


def _ensure_device(
    session: Session,
    report: DemoReport,
    *,
    kind: DeviceKind,
    centre: Centre,
    name: str,
    now: datetime,
) -> None:
    exists = session.scalar(
        select(Device.id).where(
            Device.centre_id == centre.id, Device.kind == kind, Device.name == name
        )
    )
    if exists is not None:
        return
    _, token = create_device(session, kind=kind, centre=centre, name=name, now=now)
    report.credentials.append(Credential(kind.value, name, kind.value, centre.name, token))


def _seed_accounts(
    session: Session, centres: list[Centre], now: datetime, report: DemoReport
) -> None:
    by_name = {c.name: c for c in centres}
    _ensure_staff(
        session,
        report,
        username="admin",
        role=Role.ADMIN,
        centre=None,
        full_name="Quản trị hệ thống",
        now=now,
    )
    _ensure_staff(
        session,
        report,
        username="operator",
        role=Role.OPERATOR,
        centre=None,
        full_name="Điều hành Thành phố",
        now=now,
    )
    for name, slug in SHOWCASE:
        centre = by_name.get(name)
        if centre is None:
            continue
        _ensure_staff(
            session,
            report,
            username=f"{slug}.manager",
            role=Role.MANAGER,
            centre=centre,
            full_name=f"Quản lý – {centre.name}",
            now=now,
        )
        for i in range(1, OFFICERS_PER_SHOWCASE + 1):
            _ensure_staff(
                session,
                report,
                username=f"{slug}.officer{i}",
                role=Role.OFFICER,
                centre=centre,
                full_name=f"Cán bộ {i} – {centre.name}",
                now=now,
            )
        _ensure_device(
            session, report, kind=DeviceKind.KIOSK, centre=centre, name="Kiosk 1", now=now
        )
        _ensure_device(
            session, report, kind=DeviceKind.DISPLAY, centre=centre, name="Màn hình 1", now=now
        )
