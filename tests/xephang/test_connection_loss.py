"""Pooled PostgreSQL connections cut by the database (a restart, a failover): a connection idle
for a while is pinged and replaced before use; one used a moment ago is not pinged, so a request
that meets it fails once with a clear 503 and the next one reconnects. Nothing is written by
the failed request."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, text

from core.models import Ticket
from display.bridge import bridge_of
from tests.factories import make_centre, make_device, make_service
from web.extensions import db

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
IDLE = 1.0  # seconds: long enough for the cut to happen within it, even on a busy machine


@pytest.fixture
def app_config(now) -> dict:
    return {
        "CLOCK": lambda: now,  # a Monday morning: the centre is open
        # One pooled connection, so the one cut below is the one the next request gets.
        "SQL_POOL_SIZE": 1,
        "SQL_PING_AFTER_IDLE": IDLE,
    }


@pytest.fixture
def kiosk(app, session):
    centre = make_centre()
    make_service(centre, "A", counters=1)
    _device, token = make_device(centre)
    session.commit()
    return centre.code, token


def _walk_in(client, code, token):
    return client.post(
        f"/api/v1/centres/{code}/tickets",
        json={"service": "A"},
        headers={"Authorization": f"Bearer {token}"},
    )


def _settle(app) -> None:
    """Let the live-update dispatcher finish with the database (it borrows a pooled connection
    for the first events): from here on only the test's requests use the pool."""
    assert bridge_of(app).drain()
    db.session.remove()


def _cut_pooled_connections(app) -> int:
    """Terminate, from another connection, every backend of the app's database but ours."""
    _settle(app)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # the pooled one, now checked in again
    admin = db.create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        admin.dispose()


def test_idle_connection_is_pinged_and_replaced(app, client, kiosk):
    centre, token = kiosk
    assert _walk_in(client, centre, token).status_code == 201
    assert _cut_pooled_connections(app) >= 1
    time.sleep(IDLE + 0.1)  # longer than SQL_PING_AFTER_IDLE: the ping finds it dead
    answer = _walk_in(client, centre, token)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["label"] == "A002"


def test_only_an_idle_connection_is_pinged(app, client, kiosk):
    centre, token = kiosk
    assert _walk_in(client, centre, token).status_code == 201
    pings = []
    engine_dialect = db.engine.dialect
    original = engine_dialect.do_ping

    def counting_ping(dbapi_connection):
        pings.append(dbapi_connection)
        return original(dbapi_connection)

    engine_dialect.do_ping = counting_ping
    try:
        for _ in range(5):
            assert _walk_in(client, centre, token).status_code == 201
        assert pings == []  # each request reused the connection the one before had just used
        _settle(app)
        time.sleep(IDLE + 0.1)
        assert _walk_in(client, centre, token).status_code == 201
        assert len(pings) == 1  # this one had sat idle
    finally:
        del engine_dialect.do_ping


def test_connection_cut_within_the_window_fails_once_then_reconnects(app, client, kiosk):
    centre, token = kiosk
    assert _walk_in(client, centre, token).status_code == 201
    assert _cut_pooled_connections(app) >= 1
    answer = _walk_in(client, centre, token)  # at once: no ping, the statement meets it dead
    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json"
    assert answer.headers["Retry-After"] == "2"
    body = answer.get_json()
    assert body["code"] == "database_unavailable"
    assert "cơ sở dữ liệu" in body["detail"]
    again = _walk_in(client, centre, token)
    assert again.status_code == 201, again.get_json()
    # The failed request wrote nothing: labels stay gap-free.
    assert again.get_json()["label"] == "A002"
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 2
