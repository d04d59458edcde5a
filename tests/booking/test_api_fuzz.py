"""Property-based fuzzing of every booking API endpoint.

Whatever the path, query string, headers or body: never a 500, always JSON or problem+json
(or the requested file), and the database changes only for a request that was a valid
booking, cancellation or move — after which seats still match appointments exactly.
"""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.models import Appointment, AppointmentStatus, Slot
from tests.conftest import both_databases
from tests.factories import (
    PHONE,
    cccd,
    make_centre,
    make_field,
    make_procedure,
    make_service,
    make_slot,
)

# PostgreSQL refuses what SQLite stores (NUL bytes, out-of-range integers): fuzz both.
pytestmark = both_databases

API = "/api/v1"
JSON_TYPES = {"application/json", "application/problem+json"}
FILE_TYPES = {"qr.svg": "image/svg+xml", "qr.png": "image/png", ".ics": "text/calendar"}

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis folder in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


@pytest.fixture
def city(client, session, now):
    civil = make_field("Hộ tịch")
    proc = make_procedure("1.001193", "Đăng ký khai sinh", field=civil)
    other = make_procedure("2.000001", "Cấp phép xây dựng", field=make_field("Xây dựng"))
    centre = make_centre("26734", "Phường Bến Thành")
    service = make_service(centre, "A", fields=[civil], counters=2)
    slots = [make_slot(service, now + timedelta(hours=h), capacity=2) for h in (-1, 2, 3, 26, 50)]
    session.commit()
    first = client.post(
        f"{API}/appointments",
        json={
            "slot_id": slots[1].id,
            "procedure": proc.code,
            "full_name": "Trần Thị Bình",
            "phone": PHONE,
            "citizen_id": cccd(999),
            "consent": True,
        },
    ).get_json()
    return SimpleNamespace(
        centre=centre.code,
        procedures=[proc.code, other.code],
        slot_ids=[s.id for s in slots],
        code=first["code"],
        token=first["manage_token"],
    )


def state(session) -> tuple:
    rows = session.execute(
        select(Appointment.id, Appointment.status, Appointment.slot_id).order_by(Appointment.id)
    ).all()
    seats = session.execute(select(Slot.id, Slot.booked, Slot.capacity).order_by(Slot.id)).all()
    session.rollback()
    return tuple(map(tuple, rows)), tuple(map(tuple, seats))


def assert_consistent(session) -> None:
    """Every slot's seat count is exactly its active appointments, never above capacity."""
    active = dict(
        session.execute(
            select(Appointment.slot_id, func.count())
            .where(Appointment.status == AppointmentStatus.BOOKED)
            .group_by(Appointment.slot_id)
        ).all()
    )
    for slot_id, seats, capacity in session.execute(select(Slot.id, Slot.booked, Slot.capacity)):
        assert 0 <= seats <= capacity
        assert seats == active.get(slot_id, 0)
    session.rollback()


# --- Strategies --------------------------------------------------------------------------


def huge_text() -> st.SearchStrategy[str]:
    return st.builds(lambda ch, n: ch * n, st.characters(), st.integers(100, 20_000))


def any_text() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=40), huge_text(), st.sampled_from(["", " ", "\x00", "%00"]))


def garbage() -> st.SearchStrategy:
    """Any JSON value: wrong types, huge numbers and strings, unicode, nulls, nesting."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**31, max_value=2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        any_text(),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=4,
    )


def header_text() -> st.SearchStrategy[str]:
    # What an HTTP client can put in a header: printable latin-1.
    return st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)


def headers(city) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "X-Manage-Token": st.one_of(st.just(city.token), header_text()),
            "Idempotency-Key": st.one_of(st.sampled_from(["k-1", "k-2"]), header_text()),
            "Accept-Language": st.sampled_from(["en", "vi", "fr", "en;q=x", "*"]),
        },
    )


@st.composite
def mutated(draw, valid: dict[str, st.SearchStrategy], bad: st.SearchStrategy) -> dict:
    """A valid request, then a few of its fields dropped or replaced by `bad` values, and maybe
    an unknown one added (shrinks towards the valid request, so both sides get exercised)."""
    request = {key: draw(values) for key, values in valid.items()}
    for key in draw(st.lists(st.sampled_from(sorted(valid)), unique=True, max_size=3)):
        if draw(st.booleans()):
            request.pop(key)
        else:
            request[key] = draw(bad)
    if draw(st.booleans()):
        request[draw(st.text(max_size=8))] = draw(bad)
    return request


def booking_body(city) -> st.SearchStrategy:
    valid = {
        "slot_id": st.sampled_from(city.slot_ids),
        "procedure": st.sampled_from(city.procedures),
        "full_name": st.sampled_from(["Nguyễn Văn An", "Lê B"]),
        "phone": st.sampled_from([PHONE, "+84 912 345 678"]),
        "citizen_id": st.sampled_from([cccd(n) for n in range(5)]),
        "email": st.sampled_from([None, "an@example.vn"]),
        "consent": st.sampled_from([True, True, False]),
    }
    return st.one_of(mutated(valid, garbage()), garbage(), st.binary(max_size=200))


QUERIES = {
    "/procedures": {
        "q": ["ho tich", "1.001193", "Đăng ký"],
        "field": ["Hộ tịch", "1"],
        "level": ["commune"],
        "page": ["1", "2"],
        "per_page": ["1", "100"],
    },
    "/centres": {"procedure": ["1.001193"], "lat": ["10.77"], "lon": ["106.7"]},
    "/slots": {
        "procedure": ["1.001193", "2.000001"],
        "centre": ["26734"],
        "date": ["2026-12-08", "2026-12-07"],
        "days": ["1", "14"],
    },
    "/suggestions": {
        "procedure": ["1.001193"],
        "lat": ["10.77"],
        "lon": ["106.7"],
        "date": ["2026-12-09"],
    },
}


def query(valid: dict[str, list[str]]) -> st.SearchStrategy[dict[str, str]]:
    # Query values are text: numbers of any size, words, unicode, NUL, huge strings.
    bad = st.one_of(st.integers().map(str), st.floats().map(str), any_text())
    return mutated({key: st.sampled_from(values) for key, values in valid.items()}, bad)


def path_param(valid: list[str]) -> st.SearchStrategy[str]:
    # A URL carries UTF-8: lone surrogates cannot even be sent.
    printable = st.characters(codec="utf-8")
    long = st.builds(lambda ch, n: ch * n, printable, st.integers(100, 5_000))
    return st.one_of(st.sampled_from(valid), st.text(printable, min_size=1, max_size=40), long)


def check(response, *, path: str) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code == 308:
        # Werkzeug canonicalises URLs with repeated slashes by a redirect, before any view.
        assert "//" in unquote(path) and response.headers["Location"]
        return
    if response.status_code == 200 and response.mimetype not in JSON_TYPES:
        assert any(path.endswith(end) and response.mimetype == t for end, t in FILE_TYPES.items())
    else:
        assert response.mimetype in JSON_TYPES, response.mimetype
        json.loads(response.get_data(as_text=True))


# --- Properties ----------------------------------------------------------------------------
# One test per kind of request, drawing the endpoint too: the database is set up once per
# test, which on PostgreSQL costs more than a hundred requests.

LOOKUPS = [
    ("/procedures/{}", "procedure"),
    ("/centres/{}", "centre"),
    ("/appointments/{}", "code"),
    ("/appointments/{}/qr.svg", "code"),
    ("/appointments/{}/qr.png", "code"),
    ("/appointments/{}.ics", "code"),
]


@FUZZ
@given(data=st.data())
def test_reading_endpoints_survive_any_query(client, session, city, data):
    before = state(session)
    path = data.draw(st.sampled_from(sorted(QUERIES)), label="path")
    params = data.draw(query(QUERIES[path]), label="query")
    response = client.get(
        API + path, query_string=params, headers=data.draw(headers(city), label="headers")
    )
    check(response, path=path)
    assert state(session) == before


@FUZZ
@given(data=st.data())
def test_lookups_survive_any_path_and_token(client, session, city, data):
    template, kind = data.draw(st.sampled_from(LOOKUPS), label="endpoint")
    valid = {"procedure": city.procedures, "centre": [city.centre], "code": [city.code]}[kind]
    before = state(session)
    path = template.format(quote(data.draw(path_param(valid), label="param"), safe=""))
    params = data.draw(st.fixed_dictionaries({}, optional={"token": st.just(city.token)}))
    response = client.get(
        API + path, query_string=params, headers=data.draw(headers(city), label="headers")
    )
    check(response, path=path)
    assert state(session) == before


def send(client, path: str, body, hdrs: dict[str, str]):
    if isinstance(body, bytes):
        return client.post(API + path, data=body, headers=hdrs)
    return client.post(
        API + path, data=json.dumps(body), content_type="application/json", headers=hdrs
    )


@FUZZ
@given(data=st.data())
def test_booking_survives_any_body_and_writes_only_when_valid(client, session, city, data):
    before = state(session)
    body = data.draw(booking_body(city), label="body")
    response = send(client, "/appointments", body, data.draw(headers(city), label="headers"))
    check(response, path="/appointments")
    after = state(session)
    if response.status_code == 201:
        assert len(after[0]) == len(before[0]) + 1
        assert response.get_json()["manage_token"]
    else:
        assert after == before
    assert_consistent(session)


@FUZZ
@given(data=st.data())
def test_changes_survive_anything_and_write_only_for_the_owner(client, session, city, data):
    before = state(session)
    action = data.draw(st.sampled_from(["cancel", "reschedule"]), label="action")
    code = data.draw(path_param([city.code]), label="code")
    body = data.draw(
        st.one_of(
            mutated({"slot_id": st.sampled_from(city.slot_ids)}, garbage()),
            garbage(),
            st.binary(max_size=100),
        ),
        label="body",
    )
    hdrs = data.draw(headers(city), label="headers")
    path = f"/appointments/{quote(code, safe='')}/{action}"
    response = send(client, path, body, hdrs)
    check(response, path=path)
    owner = code == city.code and hdrs.get("X-Manage-Token") == city.token
    if response.status_code != 200 or not owner:
        assert state(session) == before
    assert_consistent(session)
