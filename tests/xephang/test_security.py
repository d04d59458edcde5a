"""What every response carries (xephang/security.py), where absolute links come from
(core/links.py), whose address the client is behind a proxy, and what access logs keep."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from tests.conftest import _make_app
from tests.factories import (
    CCCD,
    PHONE,
    make_centre,
    make_field,
    make_procedure,
    make_service,
    make_slot,
    make_staff,
    make_ticket,
)
from web.extensions import db
from xephang import access_log, create_app

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"


@pytest.fixture
def app_config(request, now):
    return {"CLOCK": lambda: now, **getattr(request, "param", {})}


@pytest.fixture
def city(session, now):
    civil = make_field("Hộ tịch")
    birth = make_procedure("1.001193", "Đăng ký khai sinh", field=civil)
    centre = make_centre("26743", "Phường Bến Thành")
    line = make_service(centre, fields=[civil], counters=2)
    slot = make_slot(line, now + timedelta(hours=2), capacity=5)
    make_staff(centre, "binh")
    ticket = make_ticket(centre, now, service=line)
    session.commit()
    return SimpleNamespace(centre=centre, birth=birth, slot=slot, ticket=ticket)


def booking(city, **changes) -> dict:
    body = {
        "slot_id": city.slot.id,
        "procedure": city.birth.code,
        "full_name": "Nguyễn Văn An",
        "phone": PHONE,
        "citizen_id": CCCD,
        "consent": True,
    }
    return {**body, **changes}


def app_with(tmp_path, **config) -> Flask:
    """A second app, on its own SQLite file, with these settings."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = _make_app(tmp_path, f"sqlite:///{tmp_path / 'other.db'}", config)
    with app.app_context():
        db.create_all()
    return app


# --- headers ---------------------------------------------------------------------------------


def test_every_kind_of_response_carries_the_security_headers(client, city):
    for path in ("/", f"{API}/procedures", "/static/base.css", "/no-such-page", f"{API}/nothing"):
        with client.get(path) as served:
            headers = served.headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers  # plain http: HSTS means nothing


def test_hsts_is_sent_over_https(client, city):
    served = client.get("/", base_url="https://xephang.example.vn")
    assert served.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_view_that_chose_its_referrer_policy_keeps_it(client, city):
    page = client.get(f"/t/{city.ticket.public_id}")
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"


def test_no_template_carries_inline_script_style_or_handlers():
    """The policy allows only files; one inline `<script>` would be blocked in browsers."""
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"
        r"|<style\b|\sstyle=|\son[a-z]+=|javascript:",
        re.IGNORECASE,
    )
    templates = [p for p in ROOT.glob("*/templates/**/*.html") if "node_modules" not in p.parts]
    assert len(templates) > 30
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in templates
        for match in inline.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not found, found


def test_pages_and_answers_with_personal_data_are_never_stored(client, session, city):
    form = client.post(
        f"/procedures/{city.birth.code}/book?slot={city.slot.id}",
        data={"slot_id": city.slot.id, "full_name": "Nguyễn Văn An", "phone": "123"},
    )
    assert form.status_code == 422 and "Nguyễn Văn An" in form.get_data(as_text=True)
    assert form.headers["Cache-Control"] == "no-store"
    made = client.post(f"{API}/appointments", json=booking(city))
    assert made.status_code == 201 and "no-store" in made.headers["Cache-Control"]
    code, token = made.get_json()["code"], made.get_json()["manage_token"]
    shown = client.get(f"{API}/appointments/{code}", headers={"X-Manage-Token": token})
    assert shown.headers["Cache-Control"] == "private, no-store"
    linked = client.get(f"/manage?code={code}&token={token}")
    page = client.get(linked.location)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for path in ("/manage", "/counter/login", f"/t/{city.ticket.public_id}"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    # Files keep their own caching.
    with client.get("/static/base.css") as served:
        assert served.headers["Cache-Control"] != "no-store"


def test_anonymous_public_pages_set_no_cookie(client, city):
    code, centre = city.birth.code, city.centre.code
    for path in (
        "/",
        "/?q=khai+sinh",
        f"/procedures/{code}",
        f"/procedures/{code}/centres/{centre}",
        f"/board/{centre}",
        f"/t/{city.ticket.public_id}",
        f"{API}/docs",
        f"{API}/procedures",
        f"{API}/centres/{centre}/board",
        f"{API}/tickets/{city.ticket.public_id}",
    ):
        served = client.get(path)
        assert served.status_code == 200, path
        assert "Set-Cookie" not in served.headers, path


def test_the_session_cookie_is_https_only_when_the_setting_says_so(tmp_path):
    for secure in (False, True):
        app = app_with(tmp_path / str(secure), COOKIE_SECURE=secure)
        cookie = app.test_client().get("/manage").headers["Set-Cookie"]  # a form: CSRF session
        assert ("; Secure" in cookie) is secure
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_401_says_how_to_authenticate(client, city):
    refused = client.post(f"{API}/counters/1/call-next")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="xephang"'
    assert refused.mimetype == "application/problem+json"


def test_csp_reports_are_logged_without_the_pages_query(client, caplog):
    report = {
        "csp-report": {
            "document-uri": "https://xephang.example.vn/manage?code=AB&token=secret",
            "violated-directive": "script-src-elem",
            "blocked-uri": "inline",
        }
    }
    with caplog.at_level(logging.WARNING, logger="xephang.security"):
        sent = client.post(
            "/csp-report", data=json.dumps(report), content_type="application/csp-report"
        )
        garbage = client.post("/csp-report", data=b"\x00not json", content_type="text/plain")
    assert (sent.status_code, garbage.status_code) == (204, 204)
    assert "script-src-elem" in caplog.text and "/manage" in caplog.text
    assert "secret" not in caplog.text


# --- hosts, links and the client's address -----------------------------------------------------


def test_an_unknown_host_is_refused_when_hosts_are_set(tmp_path):
    app = app_with(tmp_path, TRUSTED_HOSTS="xephang.example.vn, .tphcm.gov.vn")
    client = app.test_client()
    for host in ("xephang.example.vn", "xephang.example.vn:8443", "dichvu.tphcm.gov.vn"):
        assert client.get(f"{API}/procedures", headers={"Host": host}).status_code == 200, host
    forged = client.get(f"{API}/procedures", headers={"Host": "evil.example"})
    assert forged.status_code == 400 and forged.mimetype == "application/problem+json"
    page = client.get("/", headers={"Host": "evil.example"})
    assert page.status_code == 400 and page.mimetype == "text/html"


def test_links_are_built_on_the_base_url_never_on_the_host(app, client, city):
    app.config["BASE_URL"] = "https://xephang.tphcm.gov.vn/dat-lich"
    evil = {"Host": "evil.example:8080"}
    made = client.post(f"{API}/appointments", json=booking(city), headers=evil).get_json()
    for key in ("qr_svg_url", "qr_png_url", "ics_url"):
        assert made[key].startswith("https://xephang.tphcm.gov.vn/dat-lich/api/v1/appointments/")
    code, token = made["code"], made["manage_token"]
    linked = client.get(f"/manage?code={code}&token={token}", headers=evil)
    page = client.get(linked.location, headers=evil).get_data(as_text=True)
    assert f"https://xephang.tphcm.gov.vn/dat-lich/manage?code={code}" in page
    assert "evil.example" not in page
    ics = client.get(f"/appointments/{code}/calendar.ics", headers=evil).get_data(as_text=True)
    assert "https://xephang.tphcm.gov.vn/dat-lich/manage?code=" in ics.replace("\r\n ", "")
    assert "evil.example" not in ics


@pytest.mark.parametrize("value", ["127.0.0.1:5000", "ftp://x.vn", "https://", "https://x.vn/?a=1"])
def test_a_base_url_that_cannot_make_links_stops_the_app(tmp_path, value):
    with pytest.raises(ValueError, match="XEPHANG_BASE_URL"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "BASE_URL": value})


def metrics_from(client, remote: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    served = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
    return served.status_code


def test_the_client_is_read_from_the_proxies_hops_only(tmp_path):
    direct = app_with(tmp_path / "direct").test_client()  # PROXY_HOPS 0: the header is ignored
    assert metrics_from(direct, "127.0.0.1", "203.0.113.9") == 200
    assert metrics_from(direct, "203.0.113.9", "127.0.0.1") == 404
    proxied = app_with(tmp_path / "proxied", PROXY_HOPS=1).test_client()
    assert metrics_from(proxied, "127.0.0.1") == 200  # Prometheus on the instance itself
    assert metrics_from(proxied, "127.0.0.1", "203.0.113.9") == 404  # a citizen via nginx
    # A forged entry only adds to the left of what nginx appends: the client stays outside.
    assert metrics_from(proxied, "127.0.0.1", "127.0.0.1, 203.0.113.9") == 404


def test_each_citizen_behind_the_proxy_has_their_own_booking_limit(tmp_path):
    app = app_with(
        tmp_path, PROXY_HOPS=1, RATE_LIMITS_ENABLED=True, RATE_LIMIT_BOOKING="2 per minute"
    )
    client = app.test_client()

    def attempt(forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return client.post(f"{API}/appointments", json={}, headers=headers).status_code

    assert [attempt("198.51.100.1") for _ in range(3)] == [422, 422, 429]
    assert attempt("198.51.100.2") == 422  # another citizen is not throttled
    # Forging the header does not move a client to a fresh bucket.
    assert attempt("198.51.100.77, 198.51.100.1") == 429


# --- access logs -------------------------------------------------------------------------------


def test_secrets_in_query_strings_are_redacted_from_access_log_lines():
    line = '"GET /manage?code=AB12CD34&token=s3cr3t-V4lue HTTP/1.1" 303'
    assert access_log.redact(line) == '"GET /manage?code=AB12CD34&token=[redacted] HTTP/1.1" 303'
    assert access_log.redact("/kiosk/setup?token=abc") == "/kiosk/setup?token=[redacted]"
    assert access_log.redact("/x?TOKEN=a&b=1") == "/x?TOKEN=[redacted]&b=1"
    assert access_log.redact("/x?notoken=a") == "/x?notoken=a"
    assert access_log.redact("/x?a=1;manage_token=zz") == "/x?a=1;manage_token=[redacted]"


def test_the_development_servers_request_log_is_redacted(app, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info(
            '%s - - [%s] "%s" %s %s',
            "127.0.0.1",
            "now",
            "GET /kiosk/setup?token=k1 HTTP/1.1",
            302,
            "-",
        )
    assert "token=[redacted]" in caplog.text and "k1" not in caplog.text


def test_gunicorns_access_log_atoms_are_redacted():
    from gunicorn.config import Config

    logger = access_log.GunicornLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/manage?code=AB&token=t0ps3cret",
        "PATH_INFO": "/manage",
        "QUERY_STRING": "code=AB&token=t0ps3cret",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": "https://x.vn/kiosk/setup?token=d3vice",
    }
    response = SimpleNamespace(status="303 See Other", sent=0, headers=[])
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
    assert atoms["r"] == "GET /manage?code=AB&token=[redacted] HTTP/1.1"
    assert "t0ps3cret" not in json.dumps(atoms, default=str)
    assert "d3vice" not in json.dumps(atoms, default=str)
    assert atoms["h"] == "203.0.113.9"
