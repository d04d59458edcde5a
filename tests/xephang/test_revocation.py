"""Token revocations across web processes over Redis (xephang/revocation.py): a revocation
committed anywhere empties every listening process's token cache at once; with Redis down
requests carry on, revocations are still immediate in their own process, outages are logged
once. The last test runs two gunicorn web processes sharing a database and Redis."""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from types import SimpleNamespace

import pytest
import redis
import requests
import sqlalchemy as sa

from core.access import principals as auth
from core.access import staff_tokens
from core.models import StaffToken
from tests.conftest import REDIS_URL, both_databases, need
from tests.factories import STAFF_PASSWORD, make_centre, make_service, make_staff, staff_token
from web.db import transaction
from web.extensions import db
from xephang import create_app
from xephang.revocation import channel_for, revocations_of

API = "/api/v1"
CENTRE = "26734"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_config(request):
    url = getattr(request, "param", None)
    if url is None:
        need(bool(REDIS_URL), "Redis not configured: set XEPHANG_TEST_REDIS_URL")
        url = REDIS_URL
    return {"REDIS_URL": url}


@pytest.fixture
def floor(app, session):
    centre = make_centre(CENTRE, "Phường Bến Thành")
    make_service(centre, "A", counters=1)
    officer = make_staff(centre, "an")
    floor = SimpleNamespace(first=staff_token(officer), second=staff_token(officer))
    session.commit()
    yield floor
    revocations_of(app).stop()


def queue(client, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    # A fresh app context (so session), as each request has in production: the test's own
    # would keep SQLite's read snapshot from before a row was deleted elsewhere.
    with client.application.app_context():
        return client.get(f"{API}/centres/{CENTRE}/queue", headers=headers).status_code


def remove_behind_the_cache(token: str) -> None:
    """Delete a token's row as a process that publishes nothing would (raw SQL elsewhere)."""
    other = sa.create_engine(db.engine.url)
    with other.begin() as conn:
        conn.execute(
            sa.delete(StaffToken.__table__).where(
                StaffToken.__table__.c.token_hash == hashlib.sha256(token.encode()).hexdigest()
            )
        )
    other.dispose()


def refused_within(check, seconds: float) -> float:
    """Seconds until `check()` answers 401, polling; fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check() == 401:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"still accepted after {seconds} s")


class Channel:
    """A raw subscriber on the revocation channel, standing for another process."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel_for(url))
        self.pubsub.get_message(timeout=1.0)  # the subscription's confirmation

    def messages(self, seconds: float) -> list[bytes]:
        found, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=left)
            if message is not None:
                found.append(message["data"])
        return found

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.mark.redis
@both_databases
def test_a_message_from_another_process_empties_the_cache_at_once(app, client, floor):
    revocations = revocations_of(app)
    assert client.get("/health").status_code == 200  # the first request starts listening
    assert revocations.listening.wait(5), "not subscribed"
    cached_at = time.monotonic()
    assert queue(client, floor.first) == 200
    remove_behind_the_cache(floor.first)
    assert queue(client, floor.first) == 200  # the cache answers

    publisher = redis.Redis.from_url(REDIS_URL)
    publisher.publish(channel_for(REDIS_URL), b"another process")
    publisher.close()

    refused_within(lambda: queue(client, floor.first), 2.0)
    assert time.monotonic() - cached_at < auth.TOKEN_CACHE_SECONDS  # not the cache's expiry
    assert queue(client, floor.second) == 200


@pytest.mark.redis
@both_databases
def test_committed_revocations_are_published_and_rolled_back_ones_are_not(app, client, floor):
    channel = Channel(REDIS_URL)
    try:
        assert (
            client.delete(
                f"{API}/auth/token", headers={"Authorization": f"Bearer {floor.first}"}
            ).status_code
            == 204
        )
        assert channel.messages(1.0) == [revocations_of(app).sender]

        with pytest.raises(RuntimeError), transaction() as session:
            assert staff_tokens.revoke_staff_token(session, floor.second)
            raise RuntimeError("rolled back")
        assert channel.messages(0.3) == []
        assert queue(client, floor.second) == 200

        # A revocation from the command line reaches the web processes the same way.
        result = app.test_cli_runner().invoke(args=["staff", "deactivate", "an"])
        assert result.exit_code == 0, result.output
        assert channel.messages(1.0) == [revocations_of(app).sender]
    finally:
        channel.close()


@pytest.mark.parametrize("app_config", [f"redis://127.0.0.1:{closed_port()}/0"], indirect=True)
def test_with_redis_down_revocation_is_immediate_here_and_logged_once(app, client, floor, caplog):
    caplog.set_level(logging.INFO, logger="xephang.revocation")
    issued = client.post(f"{API}/auth/token", json={"username": "an", "password": STAFF_PASSWORD})
    assert issued.status_code == 201
    third = issued.get_json()["token"]
    for token in (floor.first, floor.second, third):
        assert queue(client, token) == 200

    started = time.monotonic()
    for token in (floor.first, floor.second):
        headers = {"Authorization": f"Bearer {token}"}
        assert client.delete(f"{API}/auth/token", headers=headers).status_code == 204
    assert time.monotonic() - started < 2.0

    assert queue(client, floor.first) == 401 and queue(client, floor.second) == 401
    assert queue(client, third) == 200
    published = [r for r in caplog.records if "Publishing token revocations" in r.getMessage()]
    assert len(published) == 1, [r.getMessage() for r in caplog.records]
    assert published[0].levelno == logging.WARNING


# --- two web processes ------------------------------------------------------------------------


@pytest.mark.redis
def test_a_token_revoked_through_one_web_process_is_refused_by_the_other_at_once(tmp_path):
    need(bool(REDIS_URL), "Redis not configured: set XEPHANG_TEST_REDIS_URL")
    from tests.test_deploy import instances

    url = f"sqlite:///{tmp_path / 'xephang.db'}"
    seed = create_app({"DATABASE_URL": url, "SECRET_KEY": "revocation-test"})
    with seed.app_context():
        db.create_all()
        centre = make_centre(CENTRE, "Phường Bến Thành")
        make_service(centre, "A", counters=1)
        make_staff(centre, "an")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    monitor = redis.Redis.from_url(REDIS_URL)
    channel = channel_for(REDIS_URL).encode()
    already = dict(monitor.pubsub_numsub(channel))[channel]
    try:
        with instances(2, url, XEPHANG_REDIS_URL=REDIS_URL) as (a, b):
            for base in (a, b):  # their first requests start their listeners
                assert requests.get(f"{base}/health", timeout=5).status_code == 200
            deadline = time.monotonic() + 10
            while dict(monitor.pubsub_numsub(channel))[channel] < already + 2:
                assert time.monotonic() < deadline, "both processes to listen"
                time.sleep(0.05)

            def token_from(base: str) -> str:
                answer = requests.post(
                    f"{base}{API}/auth/token",
                    json={"username": "an", "password": STAFF_PASSWORD},
                    timeout=10,
                )
                assert answer.status_code == 201, answer.text
                return answer.json()["token"]

            def on_b(token: str) -> int:
                headers = {"Authorization": f"Bearer {token}"}
                return requests.get(
                    f"{b}{API}/centres/{CENTRE}/queue", headers=headers, timeout=10
                ).status_code

            kept, revoked = token_from(a), token_from(a)
            cached_at = time.monotonic()
            assert on_b(kept) == 200 and on_b(revoked) == 200  # B caches both
            # Deleted behind B's back, as nothing would publish: B's cache still answers.
            with seed.app_context():
                remove_behind_the_cache(kept)
                db.engine.dispose()
            assert on_b(kept) == 200

            headers = {"Authorization": f"Bearer {revoked}"}
            answer = requests.delete(f"{a}{API}/auth/token", headers=headers, timeout=10)
            assert answer.status_code == 204
            refused_within(lambda: on_b(revoked), 2.0)
            # B forgot everything it had cached: the token deleted behind its back too.
            assert on_b(kept) == 401
            assert time.monotonic() - cached_at < auth.TOKEN_CACHE_SECONDS, (
                "too slow to tell the message from the cache's expiry"
            )
            assert on_b(token_from(b)) == 200  # B still serves a new token
    finally:
        monitor.close()
