"""Staff API tokens through the API: POST /auth/token trades credentials for a token that the
other APIs accept until it expires or is revoked; DELETE /auth/token revokes it at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from core.access import principals as auth
from core.access.staff_tokens import deactivate_staff, set_password
from core.models import Centre, Service, Staff, StaffToken
from tests.conftest import both_databases
from tests.factories import (
    STAFF_PASSWORD,
    make_centre,
    make_device,
    make_service,
    make_staff,
    make_ticket,
)
from web.db import transaction

API = "/api/v1"
PROBLEM = "application/problem+json"
CHALLENGE = 'Bearer realm="xephang"'


@pytest.fixture
def clock(now):
    return SimpleNamespace(now=now)


@pytest.fixture
def app_config(request, clock):
    """The test clock, and what a test adds (`with_settings`)."""
    return {"CLOCK": lambda: clock.now, **getattr(request, "param", {})}


def with_settings(**settings):
    return pytest.mark.parametrize("app_config", [settings], indirect=True)


@pytest.fixture
def floor(session):
    centre = make_centre("26734", "Phường Bến Thành")
    line = make_service(centre, "A", counters=1)
    floor = SimpleNamespace(
        centre=centre,
        line=line,
        officer=make_staff(centre, "an", full_name="Nguyễn Văn An"),
        other=make_staff(centre, "binh"),
        kiosk=make_device(centre)[1],
    )
    session.commit()
    return floor


def ask(client, body=None, **headers):
    return client.post(f"{API}/auth/token", json=body, headers=headers)


def token_of(client, username="an", password=STAFF_PASSWORD, **extra) -> str:
    answer = ask(client, {"username": username, "password": password, **extra})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["token"]


def revoke(client, token=None, **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.delete(f"{API}/auth/token", headers=headers)


def queue(client, floor, token):
    """A staff endpoint, to see whether `token` is accepted (200) or not."""
    return client.get(
        f"{API}/centres/{floor.centre.code}/queue", headers={"Authorization": f"Bearer {token}"}
    )


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert (body["status"], body["code"]) == (status, code) and body["detail"]
    return body


# --- Issuing ----------------------------------------------------------------------------------


@both_databases
def test_credentials_get_a_token_the_other_apis_accept(client, session, floor, now):
    answer = ask(client, {"username": "An", "password": STAFF_PASSWORD})

    assert answer.status_code == 201
    body = answer.get_json()
    assert set(body) == {"token", "expires_at"}
    assert body["expires_at"] == "2027-01-06T08:00:00+07:00"  # 30 days, local time
    assert datetime.fromisoformat(body["expires_at"]) == now + timedelta(days=30)
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers  # no session is opened
    assert queue(client, floor, body["token"]).status_code == 200
    row = session.scalars(select(StaffToken)).one()
    assert row.staff_id == floor.officer.id and body["token"] not in row.token_hash


@both_databases
def test_days_and_name_are_taken(client, session, floor, now):
    answer = ask(
        client,
        {"username": "an", "password": STAFF_PASSWORD, "days": 365, "name": "xuất số liệu"},
    )
    assert answer.status_code == 201
    assert datetime.fromisoformat(answer.get_json()["expires_at"]) == now + timedelta(days=365)
    assert session.scalars(select(StaffToken.name)).one() == "xuất số liệu"


@pytest.mark.parametrize("days", [0, -3, 366, "7", 2.5, True, None])
def test_days_outside_the_bounds_are_a_field_error(client, floor, session, days):
    answer = ask(client, {"username": "an", "password": STAFF_PASSWORD, "days": days})
    body = assert_problem(answer, 422, "invalid")
    assert set(body["errors"]) == {"days"}
    assert session.scalar(select(func.count()).select_from(StaffToken)) == 0


def in_english(app, send):
    # A fresh app context, as each request has in production: Babel caches the locale on `g`.
    with app.app_context():
        return send(**{"Accept-Language": "en"})


def test_the_days_error_names_the_maximum_in_the_requests_language(app, client, floor):
    body = {"username": "an", "password": "x", "days": 400}
    vi = assert_problem(ask(client, body), 422, "invalid")
    en = assert_problem(in_english(app, lambda **h: ask(client, body, **h)), 422, "invalid")
    assert vi["max_days"] == en["max_days"] == 365
    assert vi["errors"]["days"] == "Số ngày hiệu lực của mã truy cập nằm ngoài khoảng cho phép."
    assert en["errors"]["days"] == "The token's validity in days is outside the allowed range."


@with_settings(STAFF_TOKEN_DAYS=3, STAFF_TOKEN_MAX_DAYS=10)
def test_the_default_and_the_maximum_come_from_the_settings(client, floor, now):
    answer = ask(client, {"username": "an", "password": STAFF_PASSWORD})
    assert datetime.fromisoformat(answer.get_json()["expires_at"]) == now + timedelta(days=3)
    refused = ask(client, {"username": "an", "password": STAFF_PASSWORD, "days": 11})
    assert assert_problem(refused, 422, "invalid")["max_days"] == 10


@pytest.mark.parametrize(
    "body",
    [{"password": STAFF_PASSWORD}, {"username": "an"}, {"username": "an", "password": None}],
)
def test_missing_credentials_are_a_field_error(client, floor, body):
    assert_problem(ask(client, body), 422, "invalid")


@both_databases
def test_wrong_credentials_get_one_answer_with_a_bearer_challenge(app, client, session, floor):
    floor.other.active = False
    session.commit()
    answers = [
        ask(client, {"username": "an", "password": "sai-mat-khau"}),
        ask(client, {"username": "khong-co-ai", "password": STAFF_PASSWORD}),
        ask(client, {"username": "binh", "password": STAFF_PASSWORD}),  # switched off
    ]
    bodies = [assert_problem(a, 401, "invalid_login") for a in answers]
    assert all(a.headers["WWW-Authenticate"] == CHALLENGE for a in answers)
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["detail"] == "Tên đăng nhập hoặc mật khẩu không đúng."
    english = in_english(app, lambda **h: ask(client, {"username": "an", "password": "x"}, **h))
    assert english.get_json()["detail"] == "The username or password is not correct."
    assert session.scalar(select(func.count()).select_from(StaffToken)) == 0


@with_settings(RATE_LIMITS_ENABLED=True, RATE_LIMIT_LOGIN="3 per minute")
def test_asking_for_tokens_is_limited_like_the_sign_in_form(client, floor):
    answers = [ask(client, {"username": "an", "password": "sai"}).status_code for _ in range(3)]
    right = ask(client, {"username": "an", "password": STAFF_PASSWORD})

    assert answers == [401, 401, 401]
    assert_problem(right, 429, "rate_limited")  # the right password too, once over the limit
    # One budget with the form: it is spent for the form as well.
    form = client.post("/counter/login", data={"username": "an", "password": STAFF_PASSWORD})
    assert form.status_code == 429


@with_settings(RATE_LIMITS_ENABLED=True, RATE_LIMIT_LOGIN="3 per minute")
def test_sign_in_attempts_on_the_form_count_against_the_api(client, floor):
    for _ in range(3):
        client.post("/counter/login", data={"username": "an", "password": "sai"})
    assert_problem(ask(client, {"username": "an", "password": STAFF_PASSWORD}), 429, "rate_limited")


@with_settings(WTF_CSRF_ENABLED=True)
def test_no_csrf_check_even_beside_a_signed_in_session(client, floor):
    with client.session_transaction() as browser:
        browser["_user_id"] = str(floor.officer.id)
        browser["_fresh"] = True
    # The session cookie alone does not pass another API's write without the CSRF token…
    refused = client.post(f"{API}/counters/{floor.centre.counters[0].id}/open")
    assert_problem(refused, 400, "csrf")
    # … but the token endpoints never act on it, so they need none.
    token = token_of(client)
    assert revoke(client, token).status_code == 204


# --- Using, expiring, revoking ----------------------------------------------------------------


@both_databases
def test_a_token_is_refused_from_its_expiry_on_though_just_used(client, floor, clock):
    token = token_of(client, days=1)
    assert queue(client, floor, token).status_code == 200  # cached now
    clock.now += timedelta(days=1) - timedelta(seconds=1)
    assert queue(client, floor, token).status_code == 200
    clock.now += timedelta(seconds=1)
    refused = queue(client, floor, token)
    assert_problem(refused, 401, "unauthorized")


@both_databases
def test_delete_revokes_the_token_sent_at_once_and_no_other(client, session, floor):
    first, second = token_of(client), token_of(client)
    assert queue(client, floor, first).status_code == 200  # both cached
    assert queue(client, floor, second).status_code == 200

    answer = revoke(client, first)

    assert answer.status_code == 204 and answer.get_data() == b""
    assert queue(client, floor, first).status_code == 401
    again = revoke(client, first)
    assert_problem(again, 401, "token_invalid")
    assert again.headers["WWW-Authenticate"] == CHALLENGE
    assert queue(client, floor, second).status_code == 200
    assert session.scalar(select(func.count()).select_from(StaffToken)) == 1


def test_delete_without_a_token_is_a_challenge(app, client, floor):
    for answer in (
        revoke(client),
        revoke(client, Authorization="Basic YW46eA=="),
        revoke(client, "never-issued"),
    ):
        assert answer.status_code == 401
        assert answer.mimetype == PROBLEM
        assert answer.headers["WWW-Authenticate"] == CHALLENGE
    english = in_english(app, lambda **h: revoke(client, "never-issued", **h))
    assert english.get_json()["detail"] == (
        "The access token is not valid, has expired or has been revoked."
    )


def test_a_signed_in_session_does_not_stand_for_a_token(client, floor):
    with client.session_transaction() as browser:
        browser["_user_id"] = str(floor.officer.id)
        browser["_fresh"] = True
    assert_problem(revoke(client), 401, "unauthorized")


@both_databases
def test_a_password_change_kills_the_accounts_tokens_at_once(client, floor, now):
    token = token_of(client)
    assert queue(client, floor, token).status_code == 200
    with transaction() as s:
        set_password(s, s.get(Staff, floor.officer.id), "mật-khẩu-mới-2027", now=now)
    assert queue(client, floor, token).status_code == 401
    assert ask(client, {"username": "an", "password": STAFF_PASSWORD}).status_code == 401
    assert queue(client, floor, token_of(client, password="mật-khẩu-mới-2027")).status_code == 200


@both_databases
def test_deactivation_kills_the_accounts_tokens_at_once(client, floor, now):
    token = token_of(client)
    assert queue(client, floor, token).status_code == 200
    with transaction() as s:
        deactivate_staff(s, s.get(Staff, floor.officer.id), now=now)
    assert queue(client, floor, token).status_code == 401
    assert ask(client, {"username": "an", "password": STAFF_PASSWORD}).status_code == 401


@both_databases
def test_staff_and_device_tokens_stay_in_their_lanes(client, floor):
    token = token_of(client)
    walk_in = f"{API}/centres/{floor.centre.code}/tickets"
    as_kiosk = client.post(
        walk_in, json={"service": "A"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(as_kiosk, 403, "forbidden")
    assert_problem(queue(client, floor, floor.kiosk), 403, "forbidden")
    # A device token cannot be revoked (nor a device switched off) through the staff route.
    assert_problem(revoke(client, floor.kiosk), 403, "forbidden")
    kiosk_walk_in = client.post(
        walk_in, json={"service": "A"}, headers={"Authorization": f"Bearer {floor.kiosk}"}
    )
    assert kiosk_walk_in.status_code == 201  # still a kiosk


@both_databases
def test_counter_work_revokes_nothing_and_keeps_the_cache(client, session, floor, monkeypatch):
    # Every revocation is announced to every web process, which then reads its tokens
    # afresh: calling and serving, many times a minute, must not count as one.
    announced: list[int] = []
    monkeypatch.setattr(auth, "revocation_hooks", [lambda: announced.append(1)])
    forgotten: list[int] = []
    forget = auth._principals.forget
    monkeypatch.setattr(auth._principals, "forget", lambda *a: (forgotten.append(1), forget(*a)))
    token = token_of(client)
    headers = {"Authorization": f"Bearer {token}"}
    counter = floor.centre.counters[0].id
    with transaction() as s:
        centre, line = s.get(Centre, floor.centre.id), s.get(Service, floor.line.id)
        ticket = make_ticket(centre, clock_now(client), service=line)
        public_id = ticket.public_id

    for path in (
        f"/counters/{counter}/open",
        f"/counters/{counter}/call-next",
        f"/tickets/{public_id}/start",
        f"/tickets/{public_id}/complete",
        f"/counters/{counter}/close",
    ):
        assert client.post(f"{API}{path}", headers=headers).status_code == 200, path

    assert announced == [] and forgotten == []


def clock_now(client):
    return client.application.config["CLOCK"]()


# --- Documentation ----------------------------------------------------------------------------


def test_both_operations_are_in_the_openapi_document(client):
    doc = client.get(f"{API}/openapi.json").get_json()
    operations = doc["paths"][f"{API}/auth/token"]
    issue, revoke_ = operations["post"], operations["delete"]

    assert {"201", "401", "422", "429"} <= set(issue["responses"])
    assert {"204", "401", "403", "429"} <= set(revoke_["responses"])
    request = issue["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request_schema = doc["components"]["schemas"][request.rsplit("/", 1)[1]]
    assert {"username", "password", "days", "name"} <= set(request_schema["properties"])
    assert set(request_schema["required"]) == {"username", "password"}
    issued = issue["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert set(doc["components"]["schemas"][issued.rsplit("/", 1)[1]]["properties"]) == {
        "token",
        "expires_at",
    }
    for status in ("401", "422", "429"):
        content = issue["responses"][status]["content"]
        assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert revoke_["security"] == [{"bearerAuth": []}]
    assert "security" not in issue
