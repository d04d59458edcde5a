"""/health and /metrics: reachability of the database and Redis, Prometheus figures."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REDIS_URL, need
from tests.factories import (
    make_centre,
    make_device,
    make_field,
    make_service,
    make_staff,
    staff_token,
)
from web.extensions import db
from xephang import create_app, observability
from xephang.observability import client_allowed, parse_networks

API = "/api/v1"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metrics(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- /health -------------------------------------------------------------------------------


def test_health_without_redis_is_ok_and_says_redis_is_not_configured(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] is True
    assert body["redis"] is None
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.redis
def test_health_with_redis_reachable(tmp_path):
    need(bool(REDIS_URL), "Redis not configured: set XEPHANG_TEST_REDIS_URL")
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}", "REDIS_URL": REDIS_URL, "TESTING": True}
    )
    body = app.test_client().get("/health").get_json()
    assert body == {**body, "status": "ok", "database": True, "redis": True}


def test_redis_unreachable_is_degraded_but_still_serving_and_fast(tmp_path, caplog):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}", "REDIS_URL": url, "TESTING": True}
    )
    observability._transitions.report("Redis", True)  # whatever an earlier test left
    client = app.test_client()
    started = time.monotonic()
    response = client.get("/health")
    assert time.monotonic() - started < 2.0
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["database"], body["redis"]) == ("degraded", True, False)
    # A balancer checks every few seconds: the outage is logged once, not on every check.
    for _ in range(3):
        assert client.get("/health").get_json()["status"] == "degraded"
    lines = [r.getMessage() for r in caplog.records if r.name == "xephang.observability"]
    assert len([m for m in lines if "Redis unreachable" in m]) == 1, lines


def test_database_unreachable_is_503_down():
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere"
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SQL_POOL_SIZE": 2})
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["database"], body["redis"]) == ("down", False, None)
    with app.app_context():
        db.engine.dispose()


# --- /metrics ------------------------------------------------------------------------------


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}  # a Monday morning: the centre is open


@pytest.fixture
def floor(session):
    civil = make_field("Hộ tịch")
    here = make_centre("26734", "Phường Bến Thành")
    service = make_service(here, "A", fields=[civil], counters=1)
    officer = make_staff(here, "officer", full_name="Phạm Thị Quầy")
    floor = SimpleNamespace(
        here=here,
        service=service,
        counter=here.counters[0],
        kiosk=make_device(here)[1],
        officer=staff_token(officer),
    )
    session.commit()
    return floor


def post(client, path, token, body=None):
    return client.post(f"{API}{path}", json=body, headers={"Authorization": f"Bearer {token}"})


def test_tickets_issued_and_called_through_the_api_move_the_counters_once(app, client, floor):
    # Another app in the same process (as tests and CLI make): events still count once.
    create_app({"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True})
    before = metrics(client)

    issued = post(client, f"/centres/{floor.here.code}/tickets", floor.kiosk, {"service": "A"})
    assert issued.status_code in (200, 201), issued.get_data(as_text=True)
    counter = floor.counter.id
    assert post(client, f"/counters/{counter}/open", floor.officer).status_code == 200
    called = post(client, f"/counters/{counter}/call-next", floor.officer)
    assert called.status_code == 200, called.get_data(as_text=True)
    recalled = post(client, f"/counters/{counter}/recall", floor.officer)
    assert recalled.status_code == 200, recalled.get_data(as_text=True)

    after = metrics(client)
    delta = {
        key: value(after, *key[:1], **dict(key[1])) - value(before, *key[:1], **dict(key[1]))
        for key in after
        if key[0].startswith("xephang_tickets_")
    }
    assert delta[("xephang_tickets_issued_total", (("source", "walk_in"),))] == 1
    assert delta[("xephang_tickets_called_total", (("recall", "false"),))] == 1
    assert delta[("xephang_tickets_called_total", (("recall", "true"),))] == 1
    assert sum(v for k, v in delta.items() if k[0].endswith("_total")) == 3


def test_requests_are_counted_by_url_rule_never_by_raw_path(client, floor):
    path = f"/counters/{floor.counter.id}/open"
    before = metrics(client)
    assert post(client, path, floor.officer).status_code == 200
    client.get("/no/such/page-7f3a9")
    after = metrics(client)
    rule = "/api/v1/counters/<int:counter_id>/open"
    name = "xephang_http_requests_total"
    labels = {"method": "POST", "endpoint": rule, "status": "200"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    missed = {"method": "GET", "endpoint": "unmatched", "status": "404"}
    assert value(after, name, **missed) - value(before, name, **missed) == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "page-7f3a9" not in text
    assert f'endpoint="{rule}"' in text
    assert 'xephang_http_request_seconds_bucket{endpoint="' in text
    assert 'xephang_socket_clients{namespace="/board"}' in text


def test_metrics_only_for_allowed_networks(app, client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
    assert client.get("/health", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200


def test_metrics_allow_list_setting():
    assert parse_networks("*") is None
    assert client_allowed("203.0.113.9", None)
    nets = parse_networks("192.0.2.0/24, ::1/128")
    assert client_allowed("192.0.2.44", nets)
    assert client_allowed("::ffff:192.0.2.44", nets)
    assert client_allowed("::1", nets)
    assert not client_allowed("192.0.3.1", nets)
    assert not client_allowed("", nets)
    assert not client_allowed("not-an-address", nets)
    assert parse_networks("") == []
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/33")
