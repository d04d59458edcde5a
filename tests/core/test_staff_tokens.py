"""Staff API tokens in the domain core: issued hashed, several per account, expiring by the
app clock even while cached, and revoked by deletion, a password change or deactivation —
at once in this process, and announced to the others only once committed."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy import event, select

from core.access import principals as auth
from core.access import staff_tokens
from core.common.errors import Conflict, InvalidInput
from core.models import Device, Staff, StaffToken
from tests.conftest import both_databases
from tests.factories import STAFF_PASSWORD, make_centre, make_device, make_staff
from web import clock as app_clock
from web.db import transaction
from web.extensions import db


@pytest.fixture
def clock(now):
    return SimpleNamespace(now=now)


@pytest.fixture
def app_config(clock):
    return {"CLOCK": lambda: clock.now}


@pytest.fixture
def people(session):
    centre = make_centre("26734", "Phường Bến Thành")
    people = SimpleNamespace(
        centre=centre,
        an=make_staff(centre, "an"),
        binh=make_staff(centre, "binh"),
    )
    session.commit()
    return people


@pytest.fixture
def announced(monkeypatch):
    """What core.access.principals tells other processes: one entry per call of its revocation hooks."""
    calls: list[int] = []
    monkeypatch.setattr(auth, "revocation_hooks", [lambda: calls.append(1)])
    return calls


def issue(staff_id: int, now, days: int = 30, **kw) -> str:
    with transaction() as s:
        token, _ = staff_tokens.issue_staff_token(
            s, s.get(Staff, staff_id), now=now, days=days, **kw
        )
    return token


def holder(token: str):
    return auth.principal_for_token(
        db.session(), token, devices=False, staff=True, now=app_clock.clock()
    )


def remove_behind_the_cache(token: str) -> None:
    """Delete a token's row the way another process would: this one's ORM never sees it."""
    other = sa.create_engine(db.engine.url)
    with other.begin() as conn:
        conn.execute(
            sa.delete(StaffToken.__table__).where(
                StaffToken.__table__.c.token_hash == hashlib.sha256(token.encode()).hexdigest()
            )
        )
    other.dispose()


@both_databases
def test_a_token_is_stored_only_as_its_hash_and_expires_days_after_issue(session, people, now):
    with transaction() as s:
        token, expires_at = staff_tokens.issue_staff_token(
            s, s.get(Staff, people.an.id), now=now, days=7, name="xuất báo cáo"
        )

    assert expires_at == now + timedelta(days=7)
    row = session.scalars(select(StaffToken)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (row.staff_id, row.name, row.created_at, row.expires_at) == (
        people.an.id,
        "xuất báo cáo",
        now,
        expires_at,
    )
    # Nowhere in the account's rows is the token itself.
    for table in ("staff_tokens", "staff"):
        for values in session.execute(sa.text(f"SELECT * FROM {table}")):  # noqa: S608
            assert all(token not in str(value) for value in values)
    assert holder(token) == auth.Principal(
        people.an.id, people.centre.id, role=people.an.role, expires_at=expires_at
    )


@both_databases
def test_an_account_holds_several_tokens_and_revoking_one_leaves_the_others(session, people, now):
    first, second = issue(people.an.id, now), issue(people.an.id, now)
    assert holder(first).id == holder(second).id == people.an.id  # both cached now

    with transaction() as s:
        assert staff_tokens.revoke_staff_token(s, first) is True
    with transaction() as s:
        assert staff_tokens.revoke_staff_token(s, first) is False  # gone already
        assert staff_tokens.revoke_staff_token(s, "never-issued") is False

    assert holder(first) is None
    assert holder(second).id == people.an.id


@both_databases
def test_a_cached_token_is_refused_from_its_expiry_on(session, people, clock):
    token = issue(people.an.id, clock.now, days=1)
    expiry = clock.now + timedelta(days=1)
    assert holder(token) is not None
    # The row goes behind the cache's back: what answers from here on is the cache.
    remove_behind_the_cache(token)
    clock.now = expiry - timedelta(seconds=1)
    assert holder(token) is not None
    clock.now = expiry
    assert holder(token) is None


@both_databases
def test_an_expired_token_is_not_found_in_the_database_either(session, people, clock):
    token = issue(people.an.id, clock.now, days=1)
    clock.now += timedelta(days=1, seconds=1)
    assert holder(token) is None
    assert not auth._principals._entries  # an expired token is not kept


@both_databases
def test_a_password_change_revokes_every_token_of_the_account_only(session, people, now):
    mine, mine_too, theirs = (
        issue(people.an.id, now),
        issue(people.an.id, now),
        issue(people.binh.id, now),
    )
    assert all(holder(t) for t in (mine, mine_too, theirs))

    with transaction() as s:
        revoked = staff_tokens.set_password(s, s.get(Staff, people.an.id), "mật-khẩu-mới", now=now)

    assert revoked == 2
    assert holder(mine) is None and holder(mine_too) is None
    assert holder(theirs) is not None
    assert auth.staff_by_login(session, "an", "mật-khẩu-mới") is not None
    assert auth.staff_by_login(session, "an", STAFF_PASSWORD) is None


@both_databases
def test_a_short_password_is_refused_and_revokes_nothing(session, people, now):
    token = issue(people.an.id, now)
    with pytest.raises(InvalidInput) as refused, transaction() as s:
        staff_tokens.set_password(s, s.get(Staff, people.an.id), "ngắn", now=now)
    assert refused.value.errors == {"password": "password_too_short"}
    assert holder(token) is not None
    assert auth.staff_by_login(session, "an", STAFF_PASSWORD) is not None


@both_databases
def test_deactivation_revokes_the_tokens_for_good(session, people, now):
    token = issue(people.an.id, now)
    assert holder(token) is not None

    with transaction() as s:
        assert staff_tokens.deactivate_staff(s, s.get(Staff, people.an.id), now=now) == 1

    assert holder(token) is None
    assert auth.staff_by_login(session, "an", STAFF_PASSWORD) is None
    # Switched on again, the account gets none of its old tokens back.
    with transaction() as s:
        s.get(Staff, people.an.id).active = True
    assert holder(token) is None
    with pytest.raises(Conflict, match="staff_inactive"), transaction() as s:
        staff = s.get(Staff, people.binh.id)
        staff.active = False
        s.flush()
        staff_tokens.issue_staff_token(s, staff, now=now, days=1)


@both_databases
def test_a_switched_off_account_is_refused_even_with_its_rows_left(session, people, now):
    token = issue(people.an.id, now)
    assert holder(token) is not None
    with transaction() as s:
        s.get(Staff, people.an.id).active = False  # not through deactivate_staff
    assert holder(token) is None


@pytest.mark.parametrize("days", [0, -1, 366, True, "7", 7.0, None])
def test_days_outside_one_to_the_maximum_are_refused(days):
    with pytest.raises(InvalidInput) as refused:
        staff_tokens.check_days(days, max_days=365)
    assert refused.value.errors == {"days": "token_days"}
    assert refused.value.details == {"max_days": 365}


def test_days_within_the_bounds_pass():
    assert staff_tokens.check_days(1, max_days=10) == 1
    assert staff_tokens.check_days(10, max_days=10) == 10


@both_databases
def test_a_new_token_clears_the_accounts_expired_ones(session, people, clock):
    issue(people.an.id, clock.now, days=1)
    issue(people.an.id, clock.now, days=5)
    issue(people.binh.id, clock.now, days=1)
    clock.now += timedelta(days=2)

    issue(people.an.id, clock.now, days=1)

    left = session.execute(select(StaffToken.staff_id, StaffToken.expires_at)).all()
    assert sorted(left) == sorted(
        [
            (people.an.id, clock.now + timedelta(days=3)),
            (people.an.id, clock.now + timedelta(days=1)),
            (people.binh.id, clock.now - timedelta(days=1)),  # not this account's
        ]
    )


@both_databases
def test_revocations_are_announced_once_committed_and_only_then(session, people, now, announced):
    token = issue(people.an.id, now)
    assert announced == []  # a new token revokes nothing

    with pytest.raises(RuntimeError), transaction() as s:
        staff_tokens.revoke_staff_token(s, token)
        raise RuntimeError("rolled back")
    assert announced == []
    assert holder(token) is not None

    with transaction() as s:
        staff_tokens.revoke_staff_token(s, token)
    assert announced == [1]

    device, _ = make_device(people.centre)
    session.commit()
    assert announced == [1]
    device.active = False
    session.commit()
    assert announced == [1, 1]


@both_databases
def test_savepoints_neither_announce_nor_cancel_a_revocation(session, people, now, announced):
    first, second = issue(people.an.id, now), issue(people.an.id, now)
    session.rollback()
    with session.begin_nested():
        staff_tokens.revoke_staff_token(session, first)
    assert announced == []  # released, not committed
    savepoint = session.begin_nested()
    staff_tokens.revoke_staff_token(session, second)
    savepoint.rollback()
    session.commit()
    assert announced == [1]  # the first revocation, committed
    assert holder(first) is None and holder(second) is not None


@both_databases
def test_a_bulk_update_of_accounts_empties_the_cache(session, people, now):
    token = issue(people.an.id, now)
    assert holder(token) is not None
    session.execute(sa.update(Staff).where(Staff.id == people.an.id).values(active=False))
    session.commit()
    assert holder(token) is None
    # Devices the same way.
    _, device_token = make_device(people.centre)
    session.commit()
    assert auth.principal_for_token(
        session, device_token, devices=True, staff=False, now=app_clock.clock()
    )
    session.execute(sa.update(Device).values(active=False))
    session.commit()
    assert (
        auth.principal_for_token(
            session, device_token, devices=True, staff=False, now=app_clock.clock()
        )
        is None
    )


@both_databases
def test_a_token_is_looked_up_in_one_statement_then_cached(session, people, now):
    token = issue(people.an.id, now)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        session.rollback()
        assert holder(token) is not None
        assert holder(token) is not None
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements
    assert "JOIN staff" in statements[0]
