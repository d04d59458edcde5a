"""Kiosk pages with the Flask client: binding, check-in and its refusals, walk-in tickets."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.booking.appointments import qr_payload
from core.common.timeutil import local_day
from core.models import (
    Appointment,
    AppointmentStatus,
    Closure,
    PriorityClass,
    Ticket,
    TicketEvent,
)
from tests.conftest import both_databases
from tests.factories import (
    make_appointment,
    make_centre,
    make_device,
    make_field,
    make_procedure,
    make_service,
)
from web.extensions import db

SECRET = "test-secret"


@pytest.fixture
def floor(app, session, now):
    """A ward centre with two lines and open counters, a second centre, and a kiosk."""
    app.config["CLOCK"] = lambda: now
    app.config["BASE_URL"] = "https://xephang.example.vn"
    civil = make_field("Hộ tịch")
    land = make_field("Đất đai")
    birth = make_procedure("1.000001", "Đăng ký khai sinh", field=civil)
    marriage = make_procedure("1.000002", "Đăng ký kết hôn", field=civil)
    parcel = make_procedure("1.000003", "Đăng ký biến động đất đai", field=land)
    centre = make_centre("26743", "Phường Bến Thành", address="92 Nguyễn Trãi, Phường Bến Thành")
    line_a = make_service(centre, "A", fields=[civil], counters=2, name="Hộ tịch – chứng thực")
    line_b = make_service(centre, "B", fields=[land], counters=1, name="Đất đai")
    other = make_centre("26734", "Phường Sài Gòn", address="45 Lê Duẩn, Phường Sài Gòn")
    other_line = make_service(other, "A", fields=[civil], counters=1)
    for c in (*centre.counters, *other.counters):
        c.is_open = True
    _, token = make_device(centre)
    _, other_token = make_device(other)
    session.commit()
    return {
        "centre": centre,
        "other": other,
        "line_a": line_a,
        "line_b": line_b,
        "other_line": other_line,
        "birth": birth,
        "marriage": marriage,
        "parcel": parcel,
        "token": token,
        "other_token": other_token,
    }


@pytest.fixture
def kiosk(client, floor):
    """A client bound to the kiosk of Phường Bến Thành."""
    response = client.get(f"/kiosk/setup?token={floor['token']}")
    assert response.status_code == 302
    return client


def text_of(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def appointment(floor, now, **kw):
    appt = make_appointment(floor["line_a"], floor["birth"], now + timedelta(minutes=30), **kw)
    db.session.commit()
    return appt


def status_of(appt) -> AppointmentStatus:
    db.session.rollback()
    return db.session.get(Appointment, appt.id).status


# ---------------------------------------------------------------- binding


def test_setup_binds_the_browser_and_drops_the_token_from_the_address(client, floor):
    response = client.get(f"/kiosk/setup?token={floor['token']}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/kiosk/"
    assert floor["token"] not in response.headers["Location"]
    start = client.get("/kiosk/")
    page = text_of(start)
    assert start.status_code == 200
    assert "Phường Bến Thành" in page
    assert "Tôi có lịch hẹn" in page and "Lấy số thứ tự" in page
    assert 'class="k-clock' in page and "08:00" in page
    assert floor["token"] not in page
    assert start.headers["Cache-Control"] == "no-store"


def test_setup_by_pasting_the_token(client, floor):
    assert client.get("/kiosk/setup").status_code == 200
    response = client.post("/kiosk/setup", data={"token": floor["token"]})
    assert response.status_code == 302
    assert client.get("/kiosk/").status_code == 200


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 300])
def test_a_bad_token_is_refused_and_binds_nothing(client, floor, token):
    response = client.post("/kiosk/setup", data={"token": token})
    assert response.status_code == 403
    assert "Mã thiết bị không đúng" in text_of(response)
    page = client.get("/kiosk/")
    assert page.status_code == 403
    assert "Thiết bị chưa được kích hoạt" in text_of(page)


def test_a_display_token_does_not_make_a_kiosk(client, floor, session):
    _, display_token = make_device(floor["centre"], "display")
    session.commit()
    assert client.get(f"/kiosk/setup?token={display_token}").status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/kiosk/", "/kiosk/checkin", "/kiosk/take", "/kiosk/take/confirm?service=1"],
)
def test_every_kiosk_page_needs_a_bound_device(client, floor, path):
    response = client.get(path)
    assert response.status_code == 403
    assert "Thiết bị chưa được kích hoạt" in text_of(response)


def test_posting_without_a_binding_issues_nothing(client, floor):
    response = client.post(
        "/kiosk/take/confirm", data={"service": floor["line_a"].id, "form_id": "f" * 22}
    )
    assert response.status_code == 403
    assert count(Ticket) == 0


def test_revoking_the_device_unbinds_the_kiosk(kiosk, floor, session):
    device = floor["centre"]
    from core.models import Device

    row = session.scalars(select(Device).where(Device.centre_id == device.id)).first()
    row.active = False
    session.commit()
    assert kiosk.get("/kiosk/").status_code == 403


def test_a_new_token_for_the_device_unbinds_browsers_set_up_with_the_old_one(kiosk, floor, session):
    from core.common.tokens import token_hash
    from core.models import Device

    row = session.scalars(select(Device).where(Device.centre_id == floor["centre"].id)).first()
    row.token_hash = token_hash("a-rotated-token-value")
    session.commit()
    assert kiosk.get("/kiosk/").status_code == 403


def test_english_switch(kiosk):
    page = text_of(kiosk.get("/kiosk/?lang=en"))
    assert '<html lang="en">' in page
    assert 'hreflang="vi"' in page


# ---------------------------------------------------------------- check-in


@both_databases
def test_check_in_by_code_and_last_four_digits(kiosk, floor, now):
    appt = appointment(floor, now)
    response = kiosk.post(
        "/kiosk/checkin", data={"code": appt.code.lower(), "last4": appt.phone[-4:]}
    )
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert response.headers["Location"] == f"/kiosk/tickets/{ticket.public_id}?print=1"
    assert ticket.label == "A001" and ticket.appointment_id == appt.id
    assert ticket.queue_time == appt.starts_at
    assert status_of(appt) == AppointmentStatus.CHECKED_IN


@both_databases
def test_check_in_by_the_scanner_typed_qr_payload(kiosk, floor, now):
    appt = appointment(floor, now)
    payload = qr_payload(SECRET, appt)
    response = kiosk.post("/kiosk/checkin", data={"code": f"{payload}\r\n"})
    assert response.status_code == 303
    assert count(Ticket) == 1
    assert status_of(appt) == AppointmentStatus.CHECKED_IN


def test_checking_in_twice_shows_the_same_ticket_again(kiosk, floor, now):
    appt = appointment(floor, now)
    first = kiosk.post("/kiosk/checkin", data={"code": appt.code, "last4": appt.phone[-4:]})
    again = kiosk.post("/kiosk/checkin", data={"code": qr_payload(SECRET, appt)})
    assert count(Ticket) == 1
    assert again.headers["Location"].startswith(first.headers["Location"].split("?")[0])
    assert "again=1" in again.headers["Location"]
    page = text_of(kiosk.get(again.headers["Location"]))
    assert "Bạn đã xác nhận lịch hẹn này rồi" in page and "A001" in page


def test_a_typed_code_without_the_phone_digits_asks_for_them(kiosk, floor, now):
    appt = appointment(floor, now)
    response = kiosk.post("/kiosk/checkin", data={"code": appt.code, "last4": ""})
    assert response.status_code == 422
    page = text_of(response)
    assert "4 số cuối của số điện thoại" in page
    assert f'value="{appt.code}"' in page
    assert count(Ticket) == 0
    assert status_of(appt) == AppointmentStatus.BOOKED


def refused(kiosk, data, status, *phrases):
    """POST a check-in that must be refused with `status` and these words; nothing changes."""
    tickets_before, events_before = count(Ticket), count(TicketEvent)
    response = kiosk.post("/kiosk/checkin", data=data)
    page = text_of(response)
    assert response.status_code == status, page
    for phrase in phrases:
        assert phrase in page
    assert count(Ticket) == tickets_before and count(TicketEvent) == events_before
    return page


@both_databases
def test_unknown_code_and_wrong_digits_get_the_same_answer(kiosk, floor, now):
    appt = appointment(floor, now)
    unknown = refused(kiosk, {"code": "ZZZZ9999", "last4": "5678"}, 404, "Không tìm thấy lịch hẹn")
    wrong = refused(kiosk, {"code": appt.code, "last4": "0000"}, 404, "Không tìm thấy lịch hẹn")
    assert (
        re.search(r'role="alert">([^<]+)<', unknown)[1]
        == re.search(r'role="alert">([^<]+)<', wrong)[1]
    )
    assert status_of(appt) == AppointmentStatus.BOOKED


@pytest.mark.parametrize(
    "payload",
    [
        "eyJjIjoiQUJDREVGR0giLCJuIjoieCJ9.forgedforgedforgedforged",
        "garbled.....................................",
    ],
)
def test_a_forged_or_garbled_qr_is_refused(kiosk, floor, payload):
    refused(kiosk, {"code": payload}, 422, "Mã QR không hợp lệ")


def test_a_qr_signed_by_another_system_is_refused(kiosk, floor, now):
    appt = appointment(floor, now)
    refused(kiosk, {"code": qr_payload("another-secret", appt)}, 422, "Mã QR không hợp lệ")
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_an_outdated_qr_is_refused(kiosk, floor, now, session):
    appt = appointment(floor, now)
    payload = qr_payload(SECRET, appt)
    appt.qr_nonce = "renewed"
    session.commit()
    refused(kiosk, {"code": payload}, 422, "hết hiệu lực")
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_an_appointment_at_another_centre_says_which_and_where(kiosk, floor, now, session):
    appt = make_appointment(floor["other_line"], floor["birth"], now + timedelta(minutes=30))
    session.commit()
    refused(
        kiosk,
        {"code": appt.code, "last4": appt.phone[-4:]},
        409,
        "Lịch hẹn ở trung tâm khác",
        "Phường Sài Gòn",
        "45 Lê Duẩn, Phường Sài Gòn",
    )
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_checked_in_elsewhere_points_there_rather_than_reprinting(kiosk, floor, now, session, app):
    appt = make_appointment(floor["other_line"], floor["birth"], now + timedelta(minutes=30))
    session.commit()
    there = app.test_client()
    there.get(f"/kiosk/setup?token={floor['other_token']}")
    assert (
        there.post("/kiosk/checkin", data={"code": appt.code, "last4": "5678"}).status_code == 303
    )
    refused(kiosk, {"code": appt.code, "last4": "5678"}, 409, "Phường Sài Gòn", "45 Lê Duẩn")


@pytest.mark.parametrize(
    ("shift", "phrase"),
    [(timedelta(days=1), "08/12/2026"), (timedelta(days=-3), "04/12/2026")],
)
def test_an_appointment_on_another_day_says_the_date(kiosk, floor, now, session, shift, phrase):
    appt = make_appointment(floor["line_a"], floor["birth"], now + shift)
    session.commit()
    refused(kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "không phải hôm nay", phrase)
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_too_early_says_from_what_time(kiosk, floor, now, session):
    appt = make_appointment(floor["line_a"], floor["birth"], now + timedelta(hours=3))
    session.commit()
    # Booked 11:00, early check-in allowed an hour before.
    refused(kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "Bạn đến sớm", "10:00")
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_too_late_offers_a_walk_in_ticket_for_the_same_procedure(kiosk, floor, now, session):
    appt = make_appointment(floor["line_a"], floor["birth"], now - timedelta(hours=2))
    session.commit()
    page = refused(
        kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "Đã quá giờ hẹn", "lấy số"
    )
    assert "/kiosk/take/confirm?procedure=1.000001" in page
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_a_cancelled_appointment_is_refused(kiosk, floor, now, session):
    appt = appointment(floor, now)
    appt.status = AppointmentStatus.CANCELLED
    session.commit()
    refused(kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "đã được huỷ")


def test_a_finished_appointment_is_refused(kiosk, floor, now, session):
    appt = appointment(floor, now)
    appt.status = AppointmentStatus.DONE
    session.commit()
    refused(kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "không còn hiệu lực")


def test_check_in_on_a_closure_day_says_the_centre_is_closed(kiosk, floor, now, session):
    appt = appointment(floor, now)
    session.add(Closure(centre_id=floor["centre"].id, day=local_day(now), reason="Sự cố điện"))
    session.commit()
    refused(kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "Trung tâm đang nghỉ")
    assert status_of(appt) == AppointmentStatus.BOOKED


def test_check_in_after_closing_time_says_the_centre_is_closed(app, kiosk, floor, now, session):
    # 16:30 booking, 17:05 arrival: within the late window, but the doors have shut.
    appt = make_appointment(floor["line_a"], floor["birth"], now + timedelta(hours=8, minutes=30))
    session.commit()
    app.config["CLOCK"] = lambda: now + timedelta(hours=9, minutes=5)
    refused(kiosk, {"code": appt.code, "last4": appt.phone[-4:]}, 409, "không làm việc")


# ---------------------------------------------------------------- walk-in


@both_databases
def test_walk_in_through_field_and_procedure(kiosk, floor):
    take = text_of(kiosk.get("/kiosk/take"))
    assert "Hộ tịch" in take and "Đất đai" in take
    assert f"/kiosk/take/fields/{floor['birth'].field_id}" in take
    field = text_of(kiosk.get(f"/kiosk/take/fields/{floor['birth'].field_id}"))
    assert "Đăng ký khai sinh" in field and "Đăng ký kết hôn" in field
    assert "Đăng ký biến động đất đai" not in field
    confirm = kiosk.get("/kiosk/take/confirm?procedure=1.000001")
    page = text_of(confirm)
    assert "Đăng ký khai sinh" in page and "Hộ tịch – chứng thực" in page
    form_id = re.search(r'name="form_id" value="([^"]+)"', page)[1]
    response = kiosk.post("/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": form_id})
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.label == "A001" and ticket.procedure_id == floor["birth"].id
    assert ticket.priority == PriorityClass.NONE
    assert response.headers["Location"] == f"/kiosk/tickets/{ticket.public_id}?print=1"


@pytest.mark.parametrize("q", ["khai sinh", "KHAI SINH", "khai sinh", "Khai Sinh"])
def test_procedure_search_with_or_without_diacritics(kiosk, floor, q):
    page = text_of(kiosk.get("/kiosk/take", query_string={"q": q}))
    assert "Đăng ký khai sinh" in page
    assert "Đăng ký kết hôn" not in page


def test_search_finds_only_what_this_centre_takes(kiosk, floor, session):
    make_procedure("1.000009", "Đăng ký khai sinh lưu động", field=make_field("Tư pháp"))
    session.commit()
    page = text_of(kiosk.get("/kiosk/take?q=khai+sinh"))
    assert "Đăng ký khai sinh" in page and "lưu động" not in page


def test_live_search_returns_only_the_result_list(kiosk, floor):
    page = text_of(kiosk.get("/kiosk/take?q=ket+hon&partial=1"))
    assert "Đăng ký kết hôn" in page
    assert "<html" not in page and "data-results" in page


def test_walk_in_for_a_line_directly(kiosk, floor):
    page = text_of(kiosk.get(f"/kiosk/take/confirm?service={floor['line_b'].id}"))
    form_id = re.search(r'name="form_id" value="([^"]+)"', page)[1]
    kiosk.post("/kiosk/take/confirm", data={"service": floor["line_b"].id, "form_id": form_id})
    assert db.session.scalars(select(Ticket)).one().label == "B001"


def test_priority_with_its_group(kiosk, floor):
    page = text_of(kiosk.get("/kiosk/take/confirm?procedure=1.000001"))
    for group in ("Người cao tuổi", "Người khuyết tật", "Phụ nữ mang thai", "Người có công"):
        assert group in page
    response = kiosk.post(
        "/kiosk/take/confirm",
        data={"procedure": "1.000001", "form_id": "p" * 22, "priority": "on", "group": "elderly"},
    )
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.priority == PriorityClass.ELDERLY
    shown = text_of(kiosk.get(response.headers["Location"]))
    assert "ƯU TIÊN" in shown and "Người cao tuổi" in shown


def test_priority_without_a_group_asks_for_one(kiosk, floor):
    response = kiosk.post(
        "/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": "q" * 22, "priority": "on"}
    )
    assert response.status_code == 422
    assert "Vui lòng chọn nhóm ưu tiên" in text_of(response)
    assert count(Ticket) == 0


def test_a_group_without_the_toggle_is_not_priority(kiosk, floor):
    kiosk.post(
        "/kiosk/take/confirm",
        data={"procedure": "1.000001", "form_id": "r" * 22, "group": "pregnant"},
    )
    assert db.session.scalars(select(Ticket)).one().priority == PriorityClass.NONE


@both_databases
def test_a_double_tap_gives_one_ticket(kiosk, floor):
    data = {"procedure": "1.000001", "form_id": "double-tap-form-0001"}
    first = kiosk.post("/kiosk/take/confirm", data=data)
    second = kiosk.post("/kiosk/take/confirm", data=data)
    assert count(Ticket) == 1
    assert first.headers["Location"] == second.headers["Location"]
    fresh = kiosk.post(
        "/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": "another-form-00002"}
    )
    assert fresh.headers["Location"] != first.headers["Location"]
    assert count(Ticket) == 2


def test_a_missing_form_id_issues_nothing(kiosk, floor):
    response = kiosk.post("/kiosk/take/confirm", data={"procedure": "1.000001"})
    assert response.status_code == 422
    assert "hết hạn" in text_of(response)
    assert count(Ticket) == 0


@both_databases
def test_taps_arriving_at_once_still_give_one_ticket(app, floor):
    clients = [app.test_client() for _ in range(6)]
    for client in clients:
        client.get(f"/kiosk/setup?token={floor['token']}")
    data = {"procedure": "1.000001", "form_id": "simultaneous-taps-001"}
    start = threading.Barrier(len(clients))
    locations: list[str] = []

    def tap(client):
        with app.app_context():
            start.wait()
            locations.append(client.post("/kiosk/take/confirm", data=data).headers["Location"])

    threads = [threading.Thread(target=tap, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(locations) == len(clients) and len(set(locations)) == 1
    assert count(Ticket) == 1


@both_databases
def test_the_issuing_kiosk_is_on_the_ticket_event(kiosk, floor):
    kiosk.post("/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": "s" * 22})
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "issued")).one()
    assert event.data["form"] == "s" * 22 and event.data["device_id"]
    assert event.data["source"] == "walk_in"


def test_walk_in_when_the_centre_is_closed(app, kiosk, floor, now):
    app.config["CLOCK"] = lambda: now + timedelta(hours=11)  # 19:00
    start = text_of(kiosk.get("/kiosk/"))
    assert "Trung tâm hiện không làm việc" in start
    response = kiosk.post(
        "/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": "t" * 22}
    )
    assert response.status_code == 409
    assert "Trung tâm hiện không làm việc" in text_of(response)
    assert count(Ticket) == 0


def test_a_procedure_this_centre_does_not_take(kiosk, floor, session):
    make_procedure("9.000001", "Cấp giấy phép xây dựng", field=make_field("Xây dựng"))
    session.commit()
    response = kiosk.get("/kiosk/take/confirm?procedure=9.000001")
    assert response.status_code == 409
    assert "không tiếp nhận thủ tục" in text_of(response)


def test_unknown_choices_are_refused_kindly(kiosk, floor):
    assert kiosk.get("/kiosk/take/confirm?procedure=nope").status_code == 404
    assert kiosk.get("/kiosk/take/confirm?service=99999").status_code == 404
    assert kiosk.get("/kiosk/take/confirm").status_code == 404
    assert kiosk.get("/kiosk/take/fields/99999").status_code == 404


# ---------------------------------------------------------------- the printed ticket


def take_ticket(kiosk, form_id="u" * 22):
    response = kiosk.post("/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": form_id})
    return response.headers["Location"]


def test_ticket_page_has_label_qr_and_print_layout(app, kiosk, floor):
    take_ticket(kiosk, "v" * 22)
    location = take_ticket(kiosk)
    ticket = db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    page = text_of(kiosk.get(location))
    assert "A002" in page and "Hộ tịch – chứng thực" in page and "Phường Bến Thành" in page
    assert "08:00" in page and "07/12/2026" in page
    assert "Số người chờ trước" in page
    assert re.search(r"Dự kiến chờ</dt><dd>\d+–\d+ phút", page)
    assert "<svg" in page and f"https://xephang.example.vn/t/{ticket.public_id}" in page
    assert "data-autoprint" in page
    assert 'data-idle-seconds="30"' in page
    with kiosk.get("/kiosk/static/kiosk.css") as served:
        css = text_of(served)
    assert "@page { size: 80mm auto; margin: 0; }" in css
    assert "@media print" in css and "width: 72mm" in css


def test_autoprint_only_when_asked_and_allowed(app, kiosk, floor):
    location = take_ticket(kiosk)
    assert "data-autoprint" not in text_of(kiosk.get(location.split("?")[0]))
    app.config["KIOSK_AUTO_PRINT"] = False
    assert "data-autoprint" not in text_of(kiosk.get(location))


def test_a_kiosk_of_another_centre_cannot_see_this_centre(client, floor, session):
    own = client.application.test_client()
    own.get(f"/kiosk/setup?token={floor['token']}")
    location = take_ticket(own)
    client.get(f"/kiosk/setup?token={floor['other_token']}")
    assert "Phường Sài Gòn" in text_of(client.get("/kiosk/"))
    assert client.get(location).status_code == 404
    response = client.post(
        "/kiosk/take/confirm", data={"service": floor["line_a"].id, "form_id": "w" * 22}
    )
    assert response.status_code == 404
    assert count(Ticket) == 1


def test_forms_carry_a_csrf_token_and_posts_without_it_are_refused(app, kiosk, floor):
    app.config["WTF_CSRF_ENABLED"] = True
    for path in ("/kiosk/checkin", "/kiosk/take/confirm?procedure=1.000001", "/kiosk/"):
        assert 'name="csrf_token"' in text_of(kiosk.get(path))
    response = kiosk.post(
        "/kiosk/take/confirm", data={"procedure": "1.000001", "form_id": "x" * 22}
    )
    assert response.status_code == 400
    assert "Phiên làm việc đã hết hạn" in text_of(response)
    assert count(Ticket) == 0
    page = text_of(kiosk.get("/kiosk/take/confirm?procedure=1.000001"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    ok = kiosk.post(
        "/kiosk/take/confirm",
        data={"procedure": "1.000001", "form_id": "y" * 22, "csrf_token": token},
    )
    assert ok.status_code == 303
