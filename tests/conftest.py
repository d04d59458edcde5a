"""Shared fixtures: an app on a fresh SQLite file, or on PostgreSQL for `pg`-marked runs.

Set XEPHANG_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test) to run the
PostgreSQL variants; without it they skip, except under CI=true where they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.catalogue.search import index
from display.bridge import bridge_of
from web.extensions import db
from xephang import create_app

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("XEPHANG_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("XEPHANG_TEST_REDIS_URL", "")


def need(condition: bool, reason: str) -> None:
    """Skip when a service is missing on a user's machine; fail in CI, where it must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _no_csp_violations() -> Iterator[None]:
    """A browser test fails when a page it opened broke the Content-Security-Policy."""
    browser_support = sys.modules.get("tests.browser_support")
    if browser_support is None:
        yield
        return
    browser_support.CSP_VIOLATIONS.clear()
    yield
    found = list(browser_support.CSP_VIOLATIONS)
    browser_support.CSP_VIOLATIONS.clear()
    assert not found, "Content-Security-Policy violations:\n" + "\n".join(found)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session, dropped at the end."""
    need(bool(PG_URL), "PostgreSQL not configured: set XEPHANG_TEST_POSTGRES_URL")
    name = f"xephang_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        need(False, f"PostgreSQL unreachable at {PG_URL}: {exc.orig}")
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _make_app(tmp_path, database_url: str, extra: dict | None = None) -> Flask:
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "CITIZEN_ID_KEY": "test-citizen-key",
        "WTF_CSRF_ENABLED": False,
        "RATE_LIMITS_ENABLED": False,
        "SQL_POOL_SIZE": 60,
    }
    config.update(extra or {})
    app = create_app(config)
    app.instance_path = str(tmp_path / "instance")
    return app


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the `app` fixture uses; tests parametrize it with `both_databases`."""
    return request.param


both_databases = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def app_config() -> dict:
    """Extra config for one test module or test: override this fixture."""
    return {}


@pytest.fixture
def app(
    request: pytest.FixtureRequest, tmp_path, backend: str, app_config: dict
) -> Iterator[Flask]:
    if backend == "postgres":
        url = request.getfixturevalue("pg_server_url")
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
    app = _make_app(tmp_path, url, app_config)
    with app.app_context():
        db.create_all()
        index.invalidate()
        yield app
        # Let the live-update dispatcher finish with the database before the engine goes:
        # a connection it still held would be left open and collected later, mid-test.
        bridge_of(app).drain()
        db.session.remove()
        if backend == "postgres":
            db.drop_all()
        db.engine.dispose()
    index.invalidate()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask):
    return db.session


@pytest.fixture
def now() -> datetime:
    """A fixed Monday morning in Ho Chi Minh City (01:00 UTC = 08:00 local)."""
    return datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
