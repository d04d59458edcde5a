"""What no input may do: a 5xx at the calendar's edges or with huge numbers, an unbounded
body, a forged log line. Refusals are clear 4xx (problem+json under /api, localised) and
change nothing."""

from __future__ import annotations

import http.client
import io
import logging
import threading

import pytest
from flask_babel import refresh
from sqlalchemy import func, select
from werkzeug.serving import make_server

from core.models import Appointment, Centre, Slot
from tests.conftest import both_databases
from tests.factories import (
    CCCD,
    PHONE,
    make_demo_city,
    make_device,
    make_staff,
    staff_token,
)
from xephang import logsafe

PROBLEM = "application/problem+json"
EDGES = ("0001-01-01", "9999-12-31", "1999-12-31", "2100-01-01")
LIMIT = 4096


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now, "MAX_BODY_BYTES": LIMIT}


@pytest.fixture
def city(session, now):
    centres = make_demo_city(now, days=2)
    admin = make_staff(None, role="admin")
    session.commit()
    slot = session.scalars(select(Slot).where(Slot.booked < Slot.capacity)).first()
    return {
        "centre": centres[1].code,
        "procedure": "1.001193",
        "slot": slot.id,
        "auth": {"Authorization": f"Bearer {staff_token(admin)}"},
        "admin": admin.username,
    }


def appointments(session) -> int:
    count = session.scalar(select(func.count()).select_from(Appointment))
    session.rollback()
    return count


# --- The calendar's edges and huge numbers ----------------------------------------------------


@both_databases
def test_days_at_the_calendars_edges_are_422(client, city):
    c, p = city["centre"], city["procedure"]
    for day in EDGES:
        for url in (
            f"/api/v1/load?date={day}&days=14",
            f"/api/v1/stats/centres?date={day}",
            f"/api/v1/dispatch-plan?date={day}",
            f"/api/v1/stats/centres/{c}?from={day}&to={day}",
            f"/api/v1/stats/centres/{c}.csv?to={day}",
            f"/api/v1/slots?procedure={p}&date={day}&days=14",
            f"/api/v1/suggestions?procedure={p}&date={day}",
        ):
            response = client.get(url, headers={**city["auth"], "Accept-Language": "en"})
            assert response.status_code == 422, url
            assert response.mimetype == PROBLEM
            assert response.get_json()["errors"], url


@both_databases
def test_huge_numbers_are_4xx_not_5xx(client, city):
    huge = "9" * 30
    for url in (
        f"/api/v1/load?days={huge}",
        f"/api/v1/counters/{huge}",
        "/api/v1/counters/2147483648",
        f"/api/v1/procedures?page={huge}",
        f"/api/v1/slots?procedure={city['procedure']}&days={huge}",
        "/counter/2147483648",
        "/kiosk/take/fields/2147483648",
        f"/procedures/{city['procedure']}/book?slot=2147483648",
    ):
        response = client.get(url, headers=city["auth"])
        assert 400 <= response.status_code < 500, (url, response.status_code)
    body = {"slot_id": 2**31, "procedure": city["procedure"]}
    response = client.post("/api/v1/appointments", json=body)
    assert response.status_code == 422 and response.get_json()["errors"]["slot_id"]


@both_databases
def test_ids_on_kiosk_pages_are_ascii_and_bounded(client, session, city):
    centre = session.scalars(select(Centre).where(Centre.code == city["centre"])).one()
    _, token = make_device(centre)
    session.commit()
    assert client.get(f"/kiosk/setup?token={token}").status_code in (200, 302, 303)
    for query in ("page=²", "page=" + "9" * 5000, "page=2147483648"):
        response = client.get(f"/kiosk/take/fields/1?{query}")
        assert response.status_code == 200, query
    for service in ("²", "٣", "99999999999", "2147483648"):
        response = client.get(f"/kiosk/take/confirm?service={service}")
        assert response.status_code < 500, service


@both_databases
def test_days_at_the_edges_on_pages_are_not_5xx(client, city):
    signed_in = client.post(
        "/counter/login", data={"username": city["admin"], "password": "mat-khau-quay-1"}
    )
    assert signed_in.status_code == 303
    c, p = city["centre"], city["procedure"]
    for day in EDGES:
        for url in (
            f"/dashboard?date={day}",
            f"/dashboard/dispatch?date={day}",
            f"/dashboard/centres/{c}?from={day}&to={day}",
            f"/procedures/{p}/centres/{c}?day={day}",
        ):
            assert client.get(url).status_code < 500, url


# --- Bodies over MAX_BODY_BYTES ---------------------------------------------------------------


def _booking(city, padding: int) -> dict:
    return {
        "slot_id": city["slot"],
        "procedure": city["procedure"],
        "full_name": "Trần Thị Bình",
        "phone": PHONE,
        "citizen_id": CCCD,
        "consent": True,
        "note": "x" * padding,  # an unknown field: ignored, but it makes the body big
    }


def test_a_large_api_body_is_413_problem(client, session, city):
    refresh()
    response = client.post(
        "/api/v1/appointments", json=_booking(city, LIMIT), headers={"Accept-Language": "en"}
    )
    assert response.status_code == 413 and response.mimetype == PROBLEM
    assert response.get_json()["code"] == "body_too_large"
    assert response.get_json()["detail"] == "The request body is too large."
    assert appointments(session) == 0
    # Just under the limit it is read as usual.
    assert client.post("/api/v1/appointments", json=_booking(city, LIMIT // 2)).status_code == 201


def test_a_large_form_is_413_page(client, city):
    response = client.post("/manage", data={"code": "A" * LIMIT, "token": "t"})
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "Nội dung gửi lên quá lớn." in response.get_data(as_text=True)


@pytest.fixture
def server(app):
    """The app on a real HTTP server (a thread), for bodies a test client cannot send."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    thread.join(timeout=5)


def _chunked(port: int, path: str, content_type: str, chunks: int) -> tuple[int, str, bytes]:
    """POST a body in chunks, without Content-Length (Transfer-Encoding: chunked)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = (b" " * 1024 for _ in range(chunks))
    conn.request(
        "POST", path, body=body, headers={"Content-Type": content_type}, encode_chunked=True
    )
    response = conn.getresponse()
    answer = response.status, response.getheader("Content-Type") or "", response.read()
    conn.close()
    return answer


def test_a_large_chunked_body_is_413_without_content_length(server, session, city):
    status, mimetype, _ = _chunked(server, "/api/v1/appointments", "application/json", 16)
    assert status == 413 and mimetype == PROBLEM
    status, mimetype, _ = _chunked(server, "/manage", "application/x-www-form-urlencoded", 16)
    assert status == 413 and mimetype.startswith("text/html")
    # A small chunked body is read: not JSON here, so a 400 and nothing booked.
    status, mimetype, _ = _chunked(server, "/api/v1/appointments", "application/json", 1)
    assert status == 400 and mimetype == PROBLEM
    assert appointments(session) == 0


# --- Control characters in the query string, forms and bodies ---------------------------------


@both_databases
def test_control_characters_in_queries_forms_and_bodies_are_4xx(client, session, city):
    p = city["procedure"]
    form = {"full_name": "Trần\x00Bình", "phone": PHONE, "citizen_id": CCCD, "consent": "yes"}
    response = client.post(f"/procedures/{p}/book?slot={city['slot']}", data=form)
    assert response.status_code == 400 and "ký tự điều khiển" in response.get_data(as_text=True)
    for url in ("/api/v1/procedures?q=a%00b", "/api/v1/appointments/X?token=%1b", "/?q=%00"):
        response = client.get(url, headers={"Accept-Language": "en"})
        assert 400 <= response.status_code < 500, url
        assert (response.mimetype == PROBLEM) == url.startswith("/api/")
    refresh()  # the test's app context keeps the locale an earlier request chose
    answer = client.get("/api/v1/procedures?q=a%00b", headers={"Accept-Language": "en"})
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == {
        "q": "The request contains control characters (such as NUL or a line break), "
        "which are not allowed."
    }
    for field in ("full_name", "phone", "citizen_id", "email"):
        body = {**_booking(city, 0), field: "Trần\x00Bình"}
        response = client.post("/api/v1/appointments", json=body)
        assert response.status_code == 422 and field in response.get_json()["errors"]
    assert appointments(session) == 0


# --- Log lines --------------------------------------------------------------------------------


def _formatted(logger: logging.Logger) -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return handler, out


def test_log_lines_escape_control_characters(app):
    logger = logging.getLogger("xephang.test_guards")
    handler, out = _formatted(logger)
    try:
        forged = "/t/x\x00\n2026-12-07 09:00:00 ERROR xephang: forged\x1b[2J\u2028"
        logger.warning("unhandled error on %s %s", "GET", forged)
        logger.warning(f"an f-string: {forged}")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed on %s", forged)
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    escaped = "/t/x\\x00\\n2026-12-07 09:00:00 ERROR xephang: forged\\x1b[2J\\u2028"
    assert lines[0] == f"WARNING xephang.test_guards: unhandled error on GET {escaped}"
    assert lines[1] == f"WARNING xephang.test_guards: an f-string: {escaped}"
    assert lines[2] == f"ERROR xephang.test_guards: failed on {escaped}"
    # The traceback keeps its own lines.
    assert lines[3] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
    assert not any("\x00" in line or "\x1b" in line for line in lines)


def test_a_request_cannot_forge_an_error_log_line(app, client):
    @app.get("/api/v1/test-boom/<code>")
    def boom(code):
        raise RuntimeError("boom")

    handler, out = _formatted(logging.getLogger("xephang.errors"))
    try:
        # U+2028 is no control character: the route matches, the view fails, the path is logged.
        response = client.get("/api/v1/test-boom/x%E2%80%A8ERROR%20forged")
    finally:
        logging.getLogger("xephang.errors").removeHandler(handler)
    assert response.status_code == 500 and response.mimetype == PROBLEM
    first = out.getvalue().splitlines()[0]
    assert (
        first
        == "ERROR xephang.errors: unhandled error on GET /api/v1/test-boom/x\\u2028ERROR forged"
    )


def test_escaping_is_installed_once():
    logsafe.install()
    factory = logging.getLogRecordFactory()
    logsafe.install()
    assert logging.getLogRecordFactory() is factory
    record = factory("n", logging.INFO, __file__, 1, "a %s", ("b\nc",), None)
    assert record.getMessage() == "a b\\nc"


def test_werkzeug_keeps_its_colours_but_not_the_requests():
    factory = logging.getLogRecordFactory()
    line = "\x1b[33mGET /x\x1b[2J HTTP/1.1\x1b[0m"
    record = factory("werkzeug", logging.INFO, __file__, 1, "%s", (line,), None)
    assert record.getMessage() == "\x1b[33mGET /x\\x1b[2J HTTP/1.1\x1b[0m"


def test_a_booking_still_works_after_the_guards(client, session, city):
    assert client.post("/api/v1/appointments", json=_booking(city, 0)).status_code == 201
    assert appointments(session) == 1


@both_databases
def test_socket_connections_with_control_characters_are_refused(app, session, city):
    from web.extensions import socketio

    for namespace, name in (("/board", "centre"), ("/ticket", "ticket")):
        for value in ("26%0043", "26%0A43", "%1b"):
            client = socketio.test_client(app, namespace=namespace, query_string=f"{name}={value}")
            assert not client.is_connected(namespace), (namespace, value)
    # The database is still fine for the next request.
    assert session.scalar(select(func.count()).select_from(Slot)) > 0
