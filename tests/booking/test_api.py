"""The public booking API end to end: the citizen's journey and every refusal of issue 2 §8."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from core.models import Appointment, Closure, Slot
from tests.conftest import both_databases
from tests.factories import (
    CCCD,
    PHONE,
    cccd,
    make_centre,
    make_field,
    make_procedure,
    make_service,
    make_slot,
)
from web.extensions import db
from web.messages import message
from xephang.i18n import TRANSLATIONS

API = "/api/v1"
PROBLEM = "application/problem+json"
# Every path of ../shared/API.md "Catalogue and availability" and "Appointments".
CONTRACT_PATHS = {
    "/procedures",
    "/procedures/{code}",
    "/centres",
    "/centres/{code}",
    "/slots",
    "/suggestions",
    "/appointments",
    "/appointments/{code}",
    "/appointments/{code}/cancel",
    "/appointments/{code}/reschedule",
    "/appointments/{code}/qr.svg",
    "/appointments/{code}/qr.png",
    "/appointments/{code}.ics",
}


@pytest.fixture
def app_config(now):
    return {"CLOCK": lambda: now}


@pytest.fixture
def city(session, now):
    """Two ward centres 2 km apart taking civil-status procedures; only one takes land ones."""
    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    birth = make_procedure("1.001193", "Đăng ký khai sinh", field=civil)
    land_first = make_procedure("1.012345", "Đăng ký đất đai lần đầu", field=land)
    near = make_centre("26734", "Phường Bến Thành", lat=10.7725, lon=106.6980)
    far = make_centre("26740", "Phường Sài Gòn", lat=10.7905, lon=106.6990)
    near_a = make_service(near, "A", fields=[civil], counters=2)
    make_service(near, "B", fields=[land], counters=1, name="Đất đai")
    far_a = make_service(far, "A", fields=[civil], counters=2)
    tomorrow = now + timedelta(days=1)  # Tuesday 08:00 local
    city = SimpleNamespace(
        birth=birth,
        land=land_first,
        near=near,
        far=far,
        slot=make_slot(near_a, tomorrow + timedelta(hours=1), capacity=2),
        later=make_slot(near_a, tomorrow + timedelta(hours=2), capacity=2),
        next_day=make_slot(near_a, tomorrow + timedelta(days=1, hours=1), capacity=2),
        elsewhere=make_slot(far_a, tomorrow + timedelta(hours=1), capacity=2),
        past=make_slot(near_a, now - timedelta(hours=1), capacity=2),
    )
    session.commit()
    return city


def booking_body(slot, proc, n: int | None = None, /, **changes) -> dict:
    body = {
        "slot_id": slot.id,
        "procedure": proc.code,
        "full_name": "Nguyễn Văn An",
        "phone": PHONE,
        "citizen_id": CCCD if n is None else cccd(n),
        "consent": True,
    }
    return {**body, **changes}


def book(client, body, **headers):
    return client.post(f"{API}/appointments", json=body, headers=headers)


def state(session) -> tuple:
    """Everything a booking request may change: appointments and seats taken."""
    appointments = session.execute(
        select(Appointment.id, Appointment.status, Appointment.slot_id).order_by(Appointment.id)
    ).all()
    seats = session.execute(select(Slot.id, Slot.booked).order_by(Slot.id)).all()
    session.rollback()
    return tuple(map(tuple, appointments)), tuple(map(tuple, seats))


def booked(session, slot) -> int:
    return session.scalar(select(Slot.booked).where(Slot.id == slot.id))


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


# --- The journey -----------------------------------------------------------------------------


@both_databases
def test_booking_journey_through_the_api(client, session, city):
    found = client.get(f"{API}/procedures", query_string={"q": "dang ky khai sinh"}).get_json()
    assert found["total"] == 1 and found["items"][0]["code"] == city.birth.code
    assert found["items"][0] == {
        "code": "1.001193",
        "name": "Đăng ký khai sinh",
        "field": "Hộ tịch",
        "field_id": city.birth.field_id,
        "level": "commune",
        "location_independent": True,
    }
    by_field = client.get(f"{API}/procedures", query_string={"q": "ho tich"}).get_json()
    assert [p["code"] for p in by_field["items"]] == [city.birth.code]
    detail = client.get(f"{API}/procedures/{city.birth.code}").get_json()
    assert detail["intake_minutes"] == 10

    place = {"procedure": city.birth.code, "lat": 10.7720, "lon": 106.6985}
    centres = client.get(f"{API}/centres", query_string=place).get_json()["items"]
    assert [c["code"] for c in centres] == [city.near.code, city.far.code]
    assert centres[0]["distance_km"] < centres[1]["distance_km"]
    assert centres[0]["next_free_slot"] == "2026-12-08T09:00:00+07:00"
    assert set(centres[0]) == {
        "code",
        "name",
        "kind",
        "address",
        "lat",
        "lon",
        "distance_km",
        "next_free_slot",
        "load",
        "overloaded",
    }
    assert centres[0]["overloaded"] is False  # no balancing pass has run: nothing known
    centre = client.get(f"{API}/centres/{city.near.code}").get_json()
    assert [s["prefix"] for s in centre["services"]] == ["A", "B"]
    assert centre["services"][0]["fields"] == ["Hộ tịch"]
    assert centre["counters"] == 3
    assert {"weekday": 1, "opens": "07:30", "closes": "11:30"} in centre["opening_hours"]

    slots = client.get(
        f"{API}/slots",
        query_string={"centre": city.near.code, "procedure": city.birth.code, "date": "2026-12-08"},
    ).get_json()["items"]
    assert [s["id"] for s in slots] == [city.slot.id, city.later.id]
    assert slots[0] == {
        "id": city.slot.id,
        "centre": {"code": city.near.code, "name": "Phường Bến Thành"},
        "service": {"prefix": "A", "name": "Hộ tịch – chứng thực"},
        "starts_at": "2026-12-08T09:00:00+07:00",
        "ends_at": "2026-12-08T09:30:00+07:00",
        "capacity": 2,
        "remaining": 2,
    }

    created = book(client, booking_body(city.slot, city.birth, email="an@example.vn"))
    assert created.status_code == 201, created.get_data(as_text=True)
    appt = created.get_json()
    code, token = appt["code"], appt["manage_token"]
    assert appt["status"] == "booked" and appt["starts_at"] == "2026-12-08T09:00:00+07:00"
    assert appt["centre"]["code"] == city.near.code and appt["procedure"]["code"] == "1.001193"
    assert appt["service"] == {"prefix": "A", "name": "Hộ tịch – chứng thực"}
    assert appt["qr_svg_url"].endswith(f"/api/v1/appointments/{code}/qr.svg")
    assert booked(session, city.slot) == 1

    mine = {"X-Manage-Token": token}
    shown = client.get(f"{API}/appointments/{code}", headers=mine).get_json()
    assert shown["code"] == code and "manage_token" not in shown
    assert shown["full_name"] == "Nguyễn Văn An"

    # The token goes in a header only: in a query string it would reach the access logs.
    assert client.get(appt["qr_svg_url"], query_string={"token": token}).status_code == 404
    svg = client.get(appt["qr_svg_url"], headers=mine)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data and svg.headers["Cache-Control"] == "private, no-store"
    png = client.get(appt["qr_png_url"], headers=mine)
    assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    ics = client.get(appt["ics_url"], headers=mine)
    assert ics.mimetype == "text/calendar"
    assert b"BEGIN:VEVENT" in ics.data and code.encode() in ics.data
    assert b"DTSTART:20261208T020000Z" in ics.data

    moved = client.post(
        f"{API}/appointments/{code}/reschedule", json={"slot_id": city.later.id}, headers=mine
    )
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert moved.get_json()["starts_at"] == "2026-12-08T10:00:00+07:00"
    assert (booked(session, city.slot), booked(session, city.later)) == (0, 1)

    cancelled = client.post(f"{API}/appointments/{code}/cancel", headers=mine)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert booked(session, city.later) == 0
    # The freed seat can be booked again by someone else.
    assert book(client, booking_body(city.later, city.birth, 2)).status_code == 201
    again = client.post(f"{API}/appointments/{code}/cancel", headers=mine)
    assert_problem(again, 409, "appointment_not_active")


def test_suggestions_rank_centres_and_say_why(client, city):
    answer = client.get(
        f"{API}/suggestions",
        query_string={"procedure": city.birth.code, "lat": 10.7905, "lon": 106.6990},
    )
    items = answer.get_json()["items"]
    assert [i["centre"]["code"] for i in items] == [city.far.code, city.near.code]
    assert items[0]["slot"]["id"] == city.elsewhere.id
    assert items[0]["reason"] == "nearest" and items[0]["reason_text"] == message("reason_nearest")
    assert items[0]["distance_km"] == 0.0
    assert all(i["reason"] in {"earliest", "least_loaded", "balanced"} for i in items[1:])

    later = client.get(
        f"{API}/suggestions", query_string={"procedure": city.birth.code, "date": "2026-12-09"}
    ).get_json()["items"]
    assert [i["slot"]["id"] for i in later] == [city.next_day.id]


def test_procedure_search_filters_and_bounds(client, city):
    land = client.get(f"{API}/procedures", query_string={"field": "dat dai"}).get_json()
    assert [p["code"] for p in land["items"]] == [city.land.code]
    by_id = client.get(f"{API}/procedures", query_string={"field": city.birth.field_id})
    assert [p["code"] for p in by_id.get_json()["items"]] == [city.birth.code]
    paged = client.get(f"{API}/procedures", query_string={"per_page": 1, "page": 2}).get_json()
    assert paged["total"] == 2 and len(paged["items"]) == 1 and paged["page"] == 2
    too_many = client.get(f"{API}/procedures", query_string={"per_page": 1000, "level": "x"})
    body = assert_problem(too_many, 422, "invalid")
    assert body["errors"] == {
        "per_page": message("out_of_range"),
        "level": message("invalid_choice"),
    }
    unknown = client.get(f"{API}/procedures/9.999999")
    assert_problem(unknown, 404, "procedure_not_found")


def test_openapi_document_lists_every_path_and_the_docs_page_loads(client):
    spec = client.get(f"{API}/openapi.json").get_json()
    paths = {p.removeprefix("/api/v1") for p in spec["paths"]}
    assert paths >= CONTRACT_PATHS
    booking_op = spec["paths"]["/api/v1/appointments"]["post"]
    assert {"201", "200", "409", "422", "429"} <= set(booking_op["responses"])
    schema = spec["components"]["schemas"]["BookingBody"]
    assert "consent" in schema["required"]

    page = client.get(f"{API}/docs")
    assert page.status_code == 200 and b"/static/booking/booking/api_docs.js" in page.data
    assert b"<script>" not in page.data and b"<style>" not in page.data  # CSP: files only
    with client.get("/static/booking/booking/api_docs.js") as script:
        assert b"SwaggerUIBundle" in script.data
    for asset in ("swagger-ui-dist/swagger-ui.css", "swagger-ui-dist/swagger-ui-bundle.js"):
        assert f"/vendor/{asset}".encode() in page.data
        with client.get(f"/vendor/{asset}") as served:
            assert served.status_code == 200


# --- Refusals: each answers problem+json and changes nothing ---------------------------------


def test_unknown_procedure_or_centre_is_404(client, session, city):
    before = state(session)
    body = assert_problem(
        book(client, booking_body(city.slot, city.birth, procedure="9.999999")),
        404,
        "procedure_not_found",
    )
    assert body["errors"] == {"procedure": message("procedure_not_found")}
    assert_problem(client.get(f"{API}/centres/99999"), 404, "centre_not_found")
    slots = client.get(f"{API}/slots", query_string={"centre": "99999", "procedure": "1.001193"})
    assert_problem(slots, 404, "centre_not_found")
    ranked = client.get(f"{API}/centres", query_string={"procedure": "nope"})
    assert_problem(ranked, 404, "procedure_not_found")
    unknown_slot = book(client, booking_body(city.slot, city.birth, slot_id=987654))
    assert_problem(unknown_slot, 404, "slot_not_found")
    assert state(session) == before


def test_procedure_the_centre_does_not_take_is_422(client, session, city):
    before = state(session)
    refused = book(client, booking_body(city.elsewhere, city.land))
    body = assert_problem(refused, 422, "invalid")
    assert body["errors"] == {"procedure": message("procedure_not_taken")}
    slots = client.get(
        f"{API}/slots", query_string={"centre": city.far.code, "procedure": city.land.code}
    )
    assert_problem(slots, 422, "invalid")
    assert state(session) == before


def test_slot_in_the_past_is_409_with_alternatives(client, session, city):
    before = state(session)
    body = assert_problem(book(client, booking_body(city.past, city.birth)), 409, "slot_past")
    assert body["errors"] == {"slot_id": message("slot_past")}
    offered = [slot["id"] for slot in body["alternatives"]]
    assert offered[:3] == [city.slot.id, city.later.id, city.next_day.id]
    assert city.past.id not in offered
    assert state(session) == before


def test_slot_on_a_closed_day_is_409_with_alternatives_on_open_days(client, session, city, now):
    session.add(Closure(centre_id=city.near.id, day=(now + timedelta(days=1)).date(), reason="x"))
    session.commit()
    before = state(session)
    body = assert_problem(book(client, booking_body(city.slot, city.birth)), 409, "centre_closed")
    offered = [slot["id"] for slot in body["alternatives"]]
    assert offered[0] == city.next_day.id
    assert city.slot.id not in offered and city.later.id not in offered
    assert state(session) == before
    detail = client.get(f"{API}/centres/{city.near.code}").get_json()
    assert detail["closed_days"] == [{"date": "2026-12-08", "reason": "x"}]


@both_databases
def test_full_slot_is_409_with_alternatives_and_changes_nothing(client, session, city):
    for n in range(2):
        assert book(client, booking_body(city.slot, city.birth, n)).status_code == 201
    before = state(session)
    body = assert_problem(book(client, booking_body(city.slot, city.birth, 9)), 409, "slot_full")
    offered = [slot["id"] for slot in body["alternatives"]]
    assert offered and city.slot.id not in offered
    assert offered[0] == city.later.id  # the same centre first
    assert city.elsewhere.id not in offered or offered.index(city.elsewhere.id) > 0
    assert state(session) == before
    assert booked(session, city.slot) == 2


def test_malformed_citizen_id_and_phone_are_422_in_the_request_language(app, client, session, city):
    bad = booking_body(city.slot, city.birth, citizen_id="123", phone="0212345678")
    before = state(session)
    # A fresh app context per request, as in production: Babel caches the locale on `g`.
    with app.app_context():
        vi = assert_problem(book(client, bad), 422, "invalid")
    with app.app_context():
        en = assert_problem(book(client, bad, **{"Accept-Language": "en"}), 422, "invalid")
    with app.test_request_context():
        assert vi["errors"] == {
            "citizen_id": message("invalid_citizen_id"),
            "phone": message("invalid_phone"),
        }
    assert vi["errors"]["citizen_id"].startswith("Số CCCD chưa đúng")
    with app.test_request_context(), force_locale("en"):
        assert en["errors"] == {
            "citizen_id": message("invalid_citizen_id"),
            "phone": message("invalid_phone"),
        }
        assert en["detail"] == message("invalid")
    if (Path(TRANSLATIONS) / "en" / "LC_MESSAGES" / "messages.mo").exists():
        assert en["errors"]["phone"] != vi["errors"]["phone"]
    assert state(session) == before


def test_schema_errors_name_each_field(client, session, city):
    body = {"slot_id": "one", "procedure": None, "full_name": {"a": 1}, "consent": "yes"}
    problem = assert_problem(book(client, body), 422, "invalid")
    assert problem["errors"] == {
        "slot_id": message("invalid_integer"),
        "procedure": message("required"),
        "full_name": message("invalid_value"),
        "phone": message("required"),
        "citizen_id": message("required"),
        "consent": message("consent_required"),
    }
    not_consented = book(client, booking_body(city.slot, city.birth, consent=False))
    assert assert_problem(not_consented, 422, "invalid")["errors"] == {
        "consent": message("consent_required")
    }
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_over_a_per_citizen_limit_is_429(client, session, city):
    assert book(client, booking_body(city.slot, city.birth)).status_code == 201
    before = state(session)
    second = book(client, booking_body(city.later, city.birth))
    body = assert_problem(second, 429, "one_per_procedure_day")
    assert body["limit"] == 1
    assert state(session) == before


def test_wrong_manage_token_is_404_like_an_unknown_code(client, session, city):
    code = book(client, booking_body(city.slot, city.birth)).get_json()["code"]
    before = state(session)
    wrong = {"X-Manage-Token": "not-the-token"}
    for response in (
        client.get(f"{API}/appointments/{code}", headers=wrong),
        client.get(f"{API}/appointments/{code}"),
        client.get(f"{API}/appointments/{code}/qr.svg", query_string={"token": "x"}),
        client.get(f"{API}/appointments/{code}.ics", headers=wrong),
        client.post(f"{API}/appointments/{code}/cancel", headers=wrong),
        client.post(
            f"{API}/appointments/{code}/reschedule", json={"slot_id": city.later.id}, headers=wrong
        ),
        client.get(f"{API}/appointments/ZZZZZZZZ", headers=wrong),
    ):
        assert_problem(response, 404, "appointment_not_found")
    assert state(session) == before


def test_double_submit_with_the_same_idempotency_key_books_once(client, session, city):
    key = {"Idempotency-Key": "form-7f3a9c"}
    first = book(client, booking_body(city.slot, city.birth), **key)
    second = book(client, booking_body(city.slot, city.birth), **key)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json() == second.get_json()
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1
    assert booked(session, city.slot) == 1
    before = state(session)
    other_citizen = book(client, booking_body(city.slot, city.birth, 5), **key)
    assert_problem(other_citizen, 409, "idempotency_key_reused")
    bad_key = book(client, booking_body(city.slot, city.birth, 6), **{"Idempotency-Key": "x" * 65})
    assert assert_problem(bad_key, 422, "invalid")["errors"] == {
        "idempotency_key": message("invalid_idempotency_key")
    }
    assert state(session) == before


def test_malformed_json_is_400(client, session, city):
    before = state(session)
    for raw in (b'{"slot_id": 1,', b"\xff\xfe", b"[" * 60_000):
        response = client.post(f"{API}/appointments", data=raw, content_type="application/json")
        assert_problem(response, 400, "invalid_json")
    assert state(session) == before


def test_unknown_api_route_and_method_are_problems(client):
    assert_problem(client.get(f"{API}/nowhere"), 404, "not_found")
    assert_problem(client.delete(f"{API}/procedures"), 405, "method_not_allowed")


class TestRateLimit:
    @pytest.fixture
    def app_config(self, now):
        return {
            "CLOCK": lambda: now,
            "RATE_LIMITS_ENABLED": True,
            "RATE_LIMIT_BOOKING": "2 per minute",
        }

    def test_booking_is_rate_limited_per_client(self, client, session, city):
        for n in range(2):
            assert book(client, booking_body(city.slot, city.birth, n)).status_code == 201
        before = state(session)
        limited = book(client, booking_body(city.later, city.birth, 3))
        body = assert_problem(limited, 429, "rate_limited")
        assert body["detail"] == message("rate_limited")
        assert state(session) == before
        # Reading is limited separately and more loosely.
        assert client.get(f"{API}/procedures").status_code == 200
