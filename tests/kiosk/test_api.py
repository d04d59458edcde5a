"""The kiosk API and the public ticket API end to end: check-in, walk-in, remote, follow.

Every refusal the kiosk can give is checked with its problem code and with "nothing
changed" (no ticket, no appointment status, no number taken).
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.booking.appointments import qr_payload
from core.common.timeutil import local_day
from core.common.tokens import sign_qr
from core.models import Appointment, AppointmentStatus, Closure, Ticket, TicketSequence
from tests.conftest import both_databases
from tests.factories import (
    CCCD,
    PHONE,
    cccd,
    make_appointment,
    make_centre,
    make_device,
    make_field,
    make_procedure,
    make_service,
)
from web.clock import clock as app_clock

API = "/api/v1"
PROBLEM = "application/problem+json"
SECRET = "test-secret"  # tests/conftest.py


class Clock:
    """The app's clock, movable by a test."""

    def __init__(self, start):
        self.start = self.now = start

    def at(self, hours: float = 0, minutes: float = 0):
        """Move to this long after the test's start (Monday 08:00 local)."""
        self.now = self.start + timedelta(hours=hours, minutes=minutes)


@pytest.fixture
def clock(now) -> Clock:
    return Clock(now)


@pytest.fixture
def app_config(clock):
    return {"CLOCK": lambda: clock.now}


@pytest.fixture
def floor(session, now):
    """Bến Thành (A: civil status, 2 counters; B: land, 1 counter) with a kiosk, and Sài Gòn."""
    civil, land, justice = make_field("Hộ tịch"), make_field("Đất đai"), make_field("Tư pháp")
    here = make_centre("26734", "Phường Bến Thành", address="92 Nguyễn Trãi")
    there = make_centre("26740", "Phường Sài Gòn", address="45–47 Lê Duẩn")
    floor = SimpleNamespace(
        here=here,
        there=there,
        birth=make_procedure("1.001193", "Đăng ký khai sinh", field=civil),
        land=make_procedure("1.012345", "Đăng ký đất đai lần đầu", field=land),
        untaken=make_procedure("2.000001", "Thủ tục không nơi nào nhận", field=justice),
        a=make_service(here, "A", fields=[civil], counters=2),
        b=make_service(here, "B", fields=[land], counters=1, name="Đất đai"),
        there_a=make_service(there, "A", fields=[civil], counters=1),
        kiosk=make_device(here)[1],
    )
    session.commit()
    return floor


def post(client, path, body, token=None, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(f"{API}{path}", json=body, headers=headers)


def check_in(client, floor, body, code=None):
    return post(client, f"/centres/{code or floor.here.code}/check-ins", body, floor.kiosk)


def walk_in(client, floor, body):
    return post(client, f"/centres/{floor.here.code}/tickets", body, floor.kiosk)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


def floor_state(session) -> tuple:
    """Everything a kiosk request may change."""
    state = (
        tuple(map(tuple, session.execute(select(Ticket.id, Ticket.status)).all())),
        tuple(map(tuple, session.execute(select(Appointment.id, Appointment.status)).all())),
        tuple(map(tuple, session.execute(select(TicketSequence.last_number)).all())),
    )
    session.rollback()
    return state


def appointment(session, floor, minutes_from_now: float, *, service=None, **kw) -> Appointment:
    """An appointment starting `minutes_from_now` after the app's current time."""
    starts_at = app_clock() + timedelta(minutes=minutes_from_now)
    appt = make_appointment(service or floor.a, floor.birth, starts_at, **kw)
    session.commit()
    return appt


# --- Check-in ----------------------------------------------------------------------------------


def test_check_in_by_qr_queues_at_the_booked_time_and_repeats_the_same_ticket(
    client, session, floor, clock
):
    appt = appointment(session, floor, 30)
    first = check_in(client, floor, {"qr": qr_payload(SECRET, appt)})
    assert first.status_code == 201, first.get_data(as_text=True)
    ticket = first.get_json()
    assert ticket["label"] == "A001" and ticket["source"] == "appointment"
    assert ticket["status"] == "waiting" and ticket["position"] == 0
    assert ticket["queue_time"] == "2026-12-07T08:30:00+07:00"  # the slot, not the check-in
    assert ticket["centre"] == floor.here.code and ticket["service"] == "A"
    assert set(ticket["eta_minutes"]) == {"low", "high"}
    assert first.headers["Cache-Control"] == "no-store"

    clock.at(minutes=5)
    again = check_in(client, floor, {"qr": qr_payload(SECRET, appt)})
    assert again.status_code == 200
    assert again.get_json()["public_id"] == ticket["public_id"]
    assert session.query(Ticket).count() == 1
    assert session.get(Appointment, appt.id).status is AppointmentStatus.CHECKED_IN


def test_check_in_by_code_and_last_four_digits(client, session, floor):
    appt = appointment(session, floor, 0, phone="0987654321")
    typed = " ".join(appt.code.lower())  # typed loosely on a touch screen
    response = check_in(client, floor, {"code": typed, "phone_last4": "4321"})
    assert response.status_code == 201, response.get_data(as_text=True)
    again = check_in(client, floor, {"code": appt.code, "phone_last4": "4321"})
    assert again.status_code == 200
    assert again.get_json()["public_id"] == response.get_json()["public_id"]


def test_a_late_appointment_within_the_window_queues_as_a_walk_in_from_now(
    client, session, floor, clock
):
    appt = appointment(session, floor, 0)
    clock.at(minutes=40)  # beyond the 15-minute grace, within the 90-minute limit
    ticket = check_in(client, floor, {"qr": qr_payload(SECRET, appt)}).get_json()
    assert ticket["queue_time"] == "2026-12-07T08:40:00+07:00"


def test_wrong_code_and_wrong_digits_get_the_same_answer(client, session, floor):
    appt = appointment(session, floor, 0)
    before = floor_state(session)
    wrong_code = check_in(client, floor, {"code": "ZZZZZZZZ", "phone_last4": "5678"})
    wrong_digits = check_in(client, floor, {"code": appt.code, "phone_last4": "0000"})
    a = assert_problem(wrong_code, 404, "appointment_not_found")
    b = assert_problem(wrong_digits, 404, "appointment_not_found")
    assert a == b
    assert "4 số cuối" in a["detail"]  # the kiosk's wording, not the manage-token one
    assert floor_state(session) == before


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda appt: sign_qr("another-secret", appt.code, appt.qr_nonce), id="forged"),
        pytest.param(lambda appt: "hello, I am a QR code", id="garbled"),
        pytest.param(lambda appt: qr_payload(SECRET, appt)[:-3] + "xyz", id="tampered"),
        pytest.param(lambda appt: sign_qr(SECRET, appt.code, "old-nonce"), id="outdated"),
    ],
)
def test_a_qr_we_did_not_sign_is_refused(client, session, floor, payload):
    appt = appointment(session, floor, 0)
    before = floor_state(session)
    body = assert_problem(check_in(client, floor, {"qr": payload(appt)}), 422, "invalid_qr")
    assert "qr" in body["errors"]
    assert floor_state(session) == before


def test_a_genuine_qr_of_an_unknown_appointment_is_not_found(client, session, floor):
    response = check_in(client, floor, {"qr": sign_qr(SECRET, "NOSUCH23", "n")})
    assert_problem(response, 404, "appointment_not_found")


@pytest.mark.parametrize(("days", "date"), [(-1, "06/12/2026"), (2, "09/12/2026")])
def test_an_appointment_of_another_day_is_refused_with_its_date(client, session, floor, days, date):
    appt = appointment(session, floor, days * 24 * 60)
    before = floor_state(session)
    body = assert_problem(
        check_in(client, floor, {"qr": qr_payload(SECRET, appt)}), 409, "appointment_other_day"
    )
    assert body["date"] == date and date in body["detail"]
    assert floor_state(session) == before


def test_an_appointment_at_another_centre_names_that_centre_and_where_it_is(client, session, floor):
    appt = appointment(session, floor, 0, service=floor.there_a)
    before = floor_state(session)
    body = assert_problem(
        check_in(client, floor, {"qr": qr_payload(SECRET, appt)}), 409, "appointment_other_centre"
    )
    assert body["centre_name"] == "Phường Sài Gòn"
    assert body["centre_address"] == "45–47 Lê Duẩn"
    assert "Phường Sài Gòn" in body["detail"] and "45–47 Lê Duẩn" in body["detail"]
    assert floor_state(session) == before


def test_a_ticket_issued_at_another_centre_is_not_shown_here(client, session, floor):
    appt = appointment(session, floor, 0, service=floor.there_a)
    kiosk_there = make_device(floor.there)[1]
    session.commit()
    path = f"/centres/{floor.there.code}/check-ins"
    assert post(client, path, {"qr": qr_payload(SECRET, appt)}, kiosk_there).status_code == 201
    body = assert_problem(
        check_in(client, floor, {"qr": qr_payload(SECRET, appt)}), 409, "appointment_other_centre"
    )
    assert body["centre_name"] == "Phường Sài Gòn"


def test_too_early_says_from_when(client, session, floor):
    appt = appointment(session, floor, 120)  # 10:00; check-in opens 60 minutes before
    before = floor_state(session)
    body = assert_problem(
        check_in(client, floor, {"qr": qr_payload(SECRET, appt)}), 409, "too_early"
    )
    assert body["time"] == "09:00" and "09:00" in body["detail"]
    assert floor_state(session) == before


def test_too_late(client, session, floor, clock):
    appt = appointment(session, floor, 0)
    clock.at(minutes=91)
    before = floor_state(session)
    assert_problem(check_in(client, floor, {"qr": qr_payload(SECRET, appt)}), 409, "too_late")
    assert floor_state(session) == before


def test_a_cancelled_appointment_is_refused(client, session, floor):
    appt = appointment(session, floor, 0)
    appt.status = AppointmentStatus.CANCELLED
    session.commit()
    before = floor_state(session)
    response = check_in(client, floor, {"code": appt.code, "phone_last4": PHONE[-4:]})
    assert_problem(response, 409, "appointment_cancelled")
    assert floor_state(session) == before


def test_over_lunch_an_afternoon_appointment_checks_in_but_nobody_walks_in(
    client, session, floor, clock
):
    clock.at(hours=3, minutes=45)  # 11:45: the lunch break
    appt = appointment(session, floor, 60)  # 12:45, inside its early window
    response = check_in(client, floor, {"qr": qr_payload(SECRET, appt)})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["queue_time"] == "2026-12-07T12:45:00+07:00"
    before = floor_state(session)
    assert_problem(
        walk_in(client, floor, {"procedure": floor.birth.code}), 409, "centre_closed_now"
    )
    assert floor_state(session) == before


def test_after_closing_nobody_checks_in_but_an_issued_ticket_shows_again(
    client, session, floor, clock
):
    clock.at(hours=8)  # 16:00
    shown = appointment(session, floor, 0)
    ticket = check_in(client, floor, {"qr": qr_payload(SECRET, shown)}).get_json()
    appt = appointment(session, floor, 30)  # 16:30
    clock.at(hours=9, minutes=30)  # 17:30: closed, though within 90 minutes of the slot
    before = floor_state(session)
    assert_problem(
        check_in(client, floor, {"qr": qr_payload(SECRET, appt)}), 409, "centre_closed_now"
    )
    assert_problem(walk_in(client, floor, {"service": "A"}), 409, "centre_closed_now")
    assert floor_state(session) == before
    again = check_in(client, floor, {"qr": qr_payload(SECRET, shown)})
    assert again.status_code == 200 and again.get_json()["public_id"] == ticket["public_id"]


def test_a_closure_day_closes_the_kiosk(client, session, floor, now):
    session.add(Closure(centre_id=floor.here.id, day=local_day(now), reason="Bảo trì"))
    session.commit()
    assert_problem(walk_in(client, floor, {"service": "A"}), 409, "centre_closed_now")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "code", "check_in_required"),
        ({"qr": "  "}, "code", "check_in_required"),
        ({"code": "ABCD2345"}, "phone_last4", "invalid_phone_last4"),
        ({"code": "ABCD2345", "phone_last4": "12a4"}, "phone_last4", "invalid_phone_last4"),
        ({"code": "ABCD2345", "phone_last4": 1234}, "phone_last4", "invalid_phone_last4"),
        ({"qr": "x" * 2000}, "qr", "too_long"),
        ({"qr": "a\x00b"}, "qr", "invalid_value"),
    ],
)
def test_check_in_input_is_validated(client, floor, body, field, code):
    problem = assert_problem(check_in(client, floor, body), 422, "invalid")
    assert field in problem["errors"], problem


def test_a_code_that_cannot_exist_is_invalid_not_looked_up(client, session, floor):
    before = floor_state(session)
    problem = assert_problem(
        check_in(client, floor, {"code": "O0I1", "phone_last4": "1234"}), 422, "invalid"
    )
    assert "code" in problem["errors"]  # look-alike letters are not in booking codes
    assert floor_state(session) == before


def test_malformed_json_is_a_problem(client, floor):
    response = client.post(
        f"{API}/centres/{floor.here.code}/check-ins",
        data=b"{not json",
        headers={"Authorization": f"Bearer {floor.kiosk}", "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_json")


@both_databases
def test_ten_kiosks_checking_in_one_appointment_at_once_make_one_ticket(
    app, client, session, floor
):
    appt = appointment(session, floor, 0)
    payload = {"qr": qr_payload(SECRET, appt)}
    path, token = f"/centres/{floor.here.code}/check-ins", floor.kiosk
    barrier = threading.Barrier(10)
    answers = []

    def kiosk():
        with app.test_client() as c:
            barrier.wait()
            r = post(c, path, payload, token)
            answers.append((r.status_code, r.get_json(force=True).get("public_id")))

    threads = [threading.Thread(target=kiosk) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status for status, _ in answers) == [200] * 9 + [201]
    assert len({public_id for _, public_id in answers}) == 1
    session.rollback()
    assert session.query(Ticket).count() == 1


# --- Walk-in -----------------------------------------------------------------------------------


def test_walk_in_by_procedure_finds_its_line(client, floor):
    response = walk_in(client, floor, {"procedure": floor.land.code})
    assert response.status_code == 201, response.get_data(as_text=True)
    ticket = response.get_json()
    assert ticket["label"] == "B001" and ticket["service"] == "B"
    assert ticket["procedure"] == floor.land.code and ticket["source"] == "walk_in"
    assert ticket["queue_time"] == ticket["issued_at"] == "2026-12-07T08:00:00+07:00"


def test_walk_in_by_service_and_with_priority(client, floor):
    first = walk_in(client, floor, {"service": "a"}).get_json()
    second = walk_in(client, floor, {"service": "A", "priority": "elderly"}).get_json()
    assert (first["label"], first["priority"]) == ("A001", "none")
    assert (second["label"], second["priority"]) == ("A002", "elderly")
    assert second["position"] == 0  # priority goes first
    assert walk_in(client, floor, {"service": "A"}).get_json()["position"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "invalid"),
        ({"service": "A", "priority": "vip"}, 422, "invalid"),
        ({"procedure": "9.999999"}, 404, "procedure_not_found"),
        ({"service": "Z"}, 404, "service_not_found"),
        ({"procedure": "2.000001"}, 409, "procedure_not_taken"),
    ],
)
def test_walk_in_refusals_change_nothing(client, session, floor, body, status, code):
    before = floor_state(session)
    assert_problem(walk_in(client, floor, body), status, code)
    assert floor_state(session) == before


# --- Remote tickets and following a ticket (public) -------------------------------------------


def remote(client, floor, n=None, *, centre=None, **changes):
    body = {
        "procedure": floor.birth.code,
        "full_name": "Nguyễn Văn An",
        "phone": PHONE,
        "citizen_id": CCCD if n is None else cccd(n),
        "consent": True,
        **changes,
    }
    return post(client, f"/centres/{centre or floor.here.code}/remote-tickets", body)


def test_remote_ticket_then_the_daily_limit(client, session, floor):
    first = remote(client, floor)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["source"] == "remote" and first.get_json()["label"] == "A001"
    before = floor_state(session)
    again = remote(client, floor, phone="0987654321")  # same citizen ID, another phone
    assert_problem(again, 429, "remote_per_day")
    assert floor_state(session) == before
    assert remote(client, floor, 2).status_code == 201  # another citizen


def test_suspended_citizen_takes_no_remote_ticket(app, client, session, floor):
    from core.citizens.identity import citizen_hash
    from core.common.timeutil import LOCAL_TZ
    from core.models import CitizenStanding
    from web.settings import citizen_key

    until = app_clock() + timedelta(days=10)
    session.add(
        CitizenStanding(
            citizen_hash=citizen_hash(CCCD, citizen_key()),
            no_show_count=3,
            suspended_until=until,
            updated_at=app_clock(),
        )
    )
    session.commit()
    before = floor_state(session)
    body = assert_problem(remote(client, floor), 429, "suspended")
    assert (
        "không đến" in body["detail"]
        and until.astimezone(LOCAL_TZ).strftime("%d/%m/%Y") in body["detail"]
    )
    assert floor_state(session) == before
    assert remote(client, floor, 2).status_code == 201  # another citizen is not affected


def test_remote_ticket_input_is_validated(client, session, floor):
    before = floor_state(session)
    body = assert_problem(
        remote(client, floor, phone="12345", citizen_id="123", consent=False), 422, "invalid"
    )
    assert set(body["errors"]) == {"phone", "citizen_id", "consent"}
    assert_problem(remote(client, floor, procedure="9.9"), 404, "procedure_not_found")
    assert_problem(remote(client, floor, 2, centre="00000"), 404, "centre_not_found")
    assert floor_state(session) == before


@both_databases
def test_one_citizen_racing_for_remote_tickets_gets_one(app, session, floor):
    path = f"/centres/{floor.here.code}/remote-tickets"
    body = {
        "procedure": floor.birth.code,
        "full_name": "Nguyễn Văn An",
        "phone": PHONE,
        "citizen_id": CCCD,
        "consent": True,
    }
    barrier = threading.Barrier(8)
    statuses = []

    def phone():
        with app.test_client() as c:
            barrier.wait()
            statuses.append(post(c, path, body).status_code)

    threads = [threading.Thread(target=phone) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [429] * 7
    session.rollback()
    assert session.query(Ticket).count() == 1


def test_a_followed_ticket_shows_position_and_wait_and_nothing_personal(client, floor):
    walk_in(client, floor, {"service": "A"})
    walk_in(client, floor, {"service": "A"})
    mine = remote(client, floor).get_json()
    response = client.get(f"{API}/tickets/{mine['public_id']}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    ticket = response.get_json()
    assert ticket["label"] == "A003" and ticket["position"] == 2
    assert ticket["status"] == "waiting" and ticket["counter"] is None
    assert 0 <= ticket["eta_minutes"]["low"] < ticket["eta_minutes"]["high"]
    text = json.dumps(ticket, ensure_ascii=False)
    for personal in ("Nguyễn Văn An", PHONE, PHONE[-4:], CCCD, "full_name", "phone", "citizen"):
        assert personal not in text


def test_kiosk_answers_carry_nothing_personal(client, session, floor):
    appt = appointment(session, floor, 0, full_name="Trần Thị Bình", phone="0987654321")
    response = check_in(client, floor, {"code": appt.code, "phone_last4": "4321"})
    text = response.get_data(as_text=True)
    for personal in ("Trần Thị Bình", "Tr\\u1ea7n", "0987654321", "full_name", "phone", appt.code):
        assert personal not in text


class TestRateLimits:
    @pytest.fixture
    def app_config(self, clock):
        return {
            "CLOCK": lambda: clock.now,
            "RATE_LIMITS_ENABLED": True,
            "RATE_LIMIT_BOOKING": "3 per minute",
        }

    def test_remote_tickets_are_rate_limited_per_client(self, client, floor):
        statuses = [remote(client, floor, n).status_code for n in range(1, 5)]
        assert statuses == [201, 201, 201, 429]
        assert_problem(remote(client, floor, 9), 429, "rate_limited")


def test_an_unknown_ticket_is_not_found(client, floor):
    assert_problem(client.get(f"{API}/tickets/nosuchticket"), 404, "ticket_not_found")
    assert_problem(client.get(f"{API}/tickets/{'x' * 40}"), 404, "ticket_not_found")


def test_the_ticket_endpoints_are_in_the_openapi_document(client):
    paths = client.get(f"{API}/openapi.json").get_json()["paths"]
    for path in (
        "/centres/{code}/check-ins",
        "/centres/{code}/tickets",
        "/centres/{code}/remote-tickets",
        "/tickets/{public_id}",
    ):
        assert f"{API}{path}" in paths, path
    assert paths[f"{API}/centres/{{code}}/check-ins"]["post"]["security"] == [{"bearerAuth": []}]
