"""Citizen booking pages through the Flask test client: the journey and every bad input."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import refresh
from sqlalchemy import func, select

from core.common.text import fold
from core.common.timeutil import local_day
from core.models import Appointment, AppointmentStatus, Centre, Closure, Procedure, Service, Slot
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

TRANSLATIONS = Path(__file__).resolve().parents[2] / "xephang" / "translations"


@pytest.fixture(scope="module", autouse=True)
def compiled_translations():
    """The English catalogue compiled, as `make` does, so the language switch can be tested."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as src:
                catalog = read_po(src)
            with mo.open("wb") as out:
                write_mo(out, catalog)


@pytest.fixture
def app_config(request, now):
    """Time stands still at `now`; tests add settings with indirect parametrisation."""
    return {"CLOCK": lambda: now, **getattr(request, "param", {})}


@dataclass
class City:
    ben_thanh: Centre
    sai_gon: Centre
    go_vap: Centre
    birth: Procedure
    copy: Procedure
    soon: Slot
    later: Slot
    tomorrow: Slot
    sai_gon_slot: Slot
    go_vap_slot: Slot


@pytest.fixture
def city(session, now) -> City:
    """Two centres taking civil-status procedures near each other, one taking only certification."""
    civil = make_field("Hộ tịch")
    certify = make_field("Chứng thực")
    ben_thanh = make_centre(
        "26743", "Phường Bến Thành", lat=10.77072, lon=106.69452, address="92 Nguyễn Trãi"
    )
    ben_thanh.legacy_names = "Phường Phạm Ngũ Lão"
    ben_thanh.search_text = fold("Phường Bến Thành Phường Phạm Ngũ Lão")
    sai_gon = make_centre("26740", "Phường Sài Gòn", lat=10.78093, lon=106.70418)
    go_vap = make_centre("26884", "Phường Gò Vấp", lat=10.83578, lon=106.67335)
    birth = make_procedure("1.001193", "Đăng ký khai sinh", field=civil)
    copy = make_procedure("2.000815", "Chứng thực bản sao từ bản chính", field=certify)
    a = make_service(ben_thanh, fields=[civil], counters=2)
    b = make_service(sai_gon, fields=[civil], counters=2)
    c = make_service(go_vap, fields=[certify], counters=2, name="Chứng thực")
    city = City(
        ben_thanh,
        sai_gon,
        go_vap,
        birth,
        copy,
        soon=make_slot(a, now + timedelta(hours=2), capacity=2),
        later=make_slot(a, now + timedelta(hours=3), capacity=2),
        tomorrow=make_slot(a, now + timedelta(days=1, hours=1), capacity=2),
        sai_gon_slot=make_slot(b, now + timedelta(hours=4), capacity=2),
        go_vap_slot=make_slot(c, now + timedelta(hours=2), capacity=2),
    )
    session.commit()
    return city


def person(**overrides) -> dict:
    data = {
        "full_name": "Nguyễn Văn An",
        "phone": PHONE,
        "citizen_id": CCCD,
        "email": "",
        "consent": "yes",
        "idempotency_key": "k" * 24,
    }
    data.update(overrides)
    return data


def book(client, proc: Procedure, slot: Slot, **overrides):
    """Submit the booking form as the page does (its action carries the slot too)."""
    return client.post(
        f"/procedures/{proc.code}/book?slot={slot.id}",
        data={"slot_id": slot.id, **person(**overrides)},
    )


def state(session) -> tuple:
    """Everything a booking could change: appointments with their status and seats taken."""
    session.expire_all()
    appointments = session.execute(
        select(Appointment.code, Appointment.status, Appointment.slot_id).order_by(Appointment.id)
    ).all()
    seats = session.execute(select(Slot.id, Slot.booked).order_by(Slot.id)).all()
    return tuple(appointments), tuple(seats)


def text(response) -> str:
    return response.get_data(as_text=True)


def token_from(page: str) -> str:
    match = re.search(r'<code class="token">([^<]+)</code>', page)
    assert match, "manage token shown on the confirmation"
    return match.group(1)


# The journey -------------------------------------------------------------------------------


def test_full_journey_search_book_confirm_download_cancel(app, client, session, city, now):
    found = client.get("/?q=ho+tich")
    assert found.status_code == 200
    assert "Đăng ký khai sinh" in text(found) and "1.001193" in text(found)
    assert "Chứng thực bản sao" not in text(found)

    centres = client.get(f"/procedures/{city.birth.code}?near={city.ben_thanh.code}")
    page = text(centres)
    assert centres.status_code == 200
    assert page.index("Phường Bến Thành") < page.index("Phường Sài Gòn")
    assert "Phường Gò Vấp" not in page  # takes no civil-status procedures
    assert "0,0 km" in page and "Hôm nay, 10:00" in page  # local time, Vietnamese format

    slots = client.get(f"/procedures/{city.birth.code}/centres/{city.ben_thanh.code}")
    assert slots.status_code == 200
    assert "10:00–10:30" in text(slots) and "Còn 2 chỗ" in text(slots)
    assert f"/procedures/{city.birth.code}/book?slot={city.soon.id}" in text(slots)

    form = client.get(f"/procedures/{city.birth.code}/book?slot={city.soon.id}")
    assert form.status_code == 200
    key = re.search(r'name="idempotency_key" value="([^"]+)"', text(form)).group(1)
    assert "91/2025/QH15" in text(form)

    done = book(client, city.birth, city.soon, idempotency_key=key, email="an@example.vn")
    assert done.status_code == 303
    confirmation = client.get(done.location)
    page = text(confirmation)
    appt = session.scalars(select(Appointment)).one()
    assert confirmation.status_code == 200
    assert "Đặt lịch thành công" in page and appt.code in page
    assert '<svg role="img"' in page and "Phường Bến Thành" in page and "92 Nguyễn Trãi" in page
    assert "Thứ Hai, 07/12/2026, 10:00–10:30" in page and "Đăng ký khai sinh" in page
    assert "CCCD" in page and "10 phút" in page
    token = token_from(page)
    assert f"/manage?code={appt.code}&amp;token=" in page

    png = client.get(f"/appointments/{appt.code}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    ics = client.get(f"/appointments/{appt.code}/calendar.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert "BEGIN:VEVENT" in text(ics) and "DTSTART:20261207T030000Z" in text(ics)

    # A manage link (as in a message) is traded for the session at once: the browser goes on
    # to the appointment and the token leaves the address.
    linked = app.test_client()
    traded = linked.get(f"/manage?code={appt.code}&token={token}")
    assert traded.status_code == 303 and traded.location == f"/appointments/{appt.code}"
    assert appt.code in text(linked.get(traded.location))

    # Another browser, with only the code and the token typed in.
    other = app.test_client()
    opened = other.post("/manage", data={"code": appt.code.lower(), "token": token})
    assert opened.status_code == 303
    assert other.get(f"/appointments/{appt.code}/cancel").status_code == 200
    cancelled = other.post(f"/appointments/{appt.code}/cancel", data={"confirm": "yes"})
    assert cancelled.status_code == 303
    after = text(other.get(cancelled.location))
    assert "Đã huỷ" in after and "<svg" not in after
    session.expire_all()
    assert session.get(Appointment, appt.id).status is AppointmentStatus.CANCELLED
    assert session.get(Slot, city.soon.id).booked == 0


def test_search_pages_filters_and_explains_an_empty_result(client, session, city):
    civil = make_field("Hộ tịch")
    for n in range(12):
        make_procedure(f"1.0009{n:02d}", f"Trích lục hộ tịch số {n}", field=civil)
    session.commit()
    first = text(client.get("/?q=ho+tich"))
    assert "13 thủ tục phù hợp" in first and "Trang 1 / 2" in first
    second = text(client.get("/?q=ho+tich&page=2"))
    assert "Trang 2 / 2" in second and 'rel="prev"' in second
    certify = session.scalar(select(Procedure.field_id).where(Procedure.code == city.copy.code))
    by_field = text(client.get(f"/?field={certify}"))
    assert "Chứng thực bản sao" in by_field and "Đăng ký khai sinh" not in by_field
    assert "Không tìm thấy thủ tục nào" in text(client.get("/?q=zzzz"))
    assert client.get("/?page=abc&field=x").status_code == 200


def test_centres_from_an_old_ward_name_and_a_hint_when_the_nearest_is_nearly_full(
    client, session, city
):
    page = text(client.get(f"/procedures/{city.birth.code}?place=pham+ngu+lao"))
    assert "Khoảng cách tính từ:" in page and "<strong>Phường Bến Thành</strong>" in page
    several = text(client.get(f"/procedures/{city.birth.code}?place=phuong"))
    assert f"?near={city.ben_thanh.code}" in several
    assert "Không tìm thấy phường, xã" in text(
        client.get(f"/procedures/{city.birth.code}?place=khong+co")
    )
    for slot in (city.soon, city.later):
        slot.booked = slot.capacity
    city.tomorrow.capacity, city.tomorrow.booked = 10, 9
    session.commit()
    crowded = text(client.get(f"/procedures/{city.birth.code}?lat=10.7707&lon=106.6945"))
    assert "Phường Bến Thành đang gần kín lịch" in crowded
    assert crowded.index("Phường Sài Gòn") < crowded.index(
        'href="/procedures/1.001193/centres/26743"'
    )


def test_slot_picker_shows_day_tabs_and_full_slots_unbookable(client, session, city, now):
    city.soon.booked = city.soon.capacity
    session.commit()
    page = text(client.get(f"/procedures/{city.birth.code}/centres/{city.ben_thanh.code}"))
    assert "Hôm nay" in page and "Thứ Ba 08/12" in page  # tabs for the coming days
    assert "Hết chỗ" in page
    assert f"book?slot={city.soon.id}" not in page and f"book?slot={city.later.id}" in page
    tomorrow = local_day(now + timedelta(days=1)).isoformat()
    other_day = text(
        client.get(f"/procedures/{city.birth.code}/centres/{city.ben_thanh.code}?day={tomorrow}")
    )
    assert f"book?slot={city.tomorrow.id}" in other_day and "Ngày mai" in other_day
    assert 'aria-current="date"' in other_day


def test_english_switch_is_on_every_page_and_remembered(client, city):
    # The `app` fixture keeps one app context open for the whole test, so Flask-Babel's
    # per-context locale cache must be cleared between requests (a server has a fresh one).
    page = text(client.get("/"))
    assert '<html lang="vi">' in page and 'href="/?lang=en"' in page
    refresh()
    english = client.get("/?lang=en")
    assert '<html lang="en">' in text(english) and "Find a procedure" in text(english)
    refresh()
    again = text(client.get(f"/procedures/{city.birth.code}"))
    assert "Choose a centre" in again and "Tiếng Việt" in again


# Bad input ---------------------------------------------------------------------------------


def test_unknown_procedure_centre_slot_and_page_are_404_in_vietnamese(client, city):
    for url in (
        "/procedures/9.999999",
        f"/procedures/9.999999/centres/{city.ben_thanh.code}",
        f"/procedures/{city.birth.code}/centres/99999",
        f"/procedures/{city.birth.code}/book?slot=999999",
        f"/procedures/{city.birth.code}/book?slot=abc",
        "/no-such-page",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Không tìm thấy" in text(response)
    assert "Không tìm thấy thủ tục này." in text(client.get("/procedures/9.999999"))
    assert "Không tìm thấy trung tâm này." in text(
        client.get(f"/procedures/{city.birth.code}/centres/99999")
    )


def test_procedure_the_centre_does_not_take(client, session, city):
    before = state(session)
    slots = client.get(f"/procedures/{city.birth.code}/centres/{city.go_vap.code}")
    assert slots.status_code == 422
    assert "Trung tâm này không tiếp nhận thủ tục đã chọn." in text(slots)
    form = client.get(f"/procedures/{city.birth.code}/book?slot={city.go_vap_slot.id}")
    assert form.status_code == 422
    posted = book(client, city.birth, city.go_vap_slot)
    assert posted.status_code == 422
    assert "Trung tâm này không tiếp nhận thủ tục đã chọn." in text(posted)
    assert state(session) == before


def _close_day(session, city, now):
    session.add(Closure(centre_id=city.ben_thanh.id, day=local_day(now), reason="Bảo trì"))


def _fill(session, city, now):
    city.soon.booked = city.soon.capacity


def _past(session, city, now):
    city.soon.starts_at = now - timedelta(minutes=30)
    city.soon.ends_at = now


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_fill, "Khung giờ này vừa hết chỗ."),
        (_past, "Khung giờ này đã qua."),
        (_close_day, "Trung tâm nghỉ vào ngày này."),
    ],
    ids=["full", "past", "closed"],
)
def test_unbookable_slot_offers_alternatives_and_changes_nothing(
    client, session, city, now, spoil, reason
):
    spoil(session, city, now)
    session.commit()
    before = state(session)
    shown = client.get(f"/procedures/{city.birth.code}/book?slot={city.soon.id}")
    assert shown.status_code == 409 and reason in text(shown)
    posted = book(client, city.birth, city.soon)
    page = text(posted)
    assert posted.status_code == 409
    assert reason in page and "Khung giờ còn chỗ" in page
    assert f'value="{city.sai_gon_slot.id}"' in page  # a nearby centre is offered
    assert 'value="Nguyễn Văn An"' in page  # what was typed is kept
    assert state(session) == before
    # Submitting without picking an alternative asks for one; picking one books it.
    unpicked = client.post(
        f"/procedures/{city.birth.code}/book", data={"full_slot": city.soon.id, **person()}
    )
    assert unpicked.status_code == 422 and "Vui lòng chọn một khung giờ." in text(unpicked)
    picked = book(client, city.birth, city.sai_gon_slot)
    assert picked.status_code == 303
    assert session.scalar(select(Appointment.slot_id)) == city.sai_gon_slot.id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("citizen_id", "12345", "Số CCCD chưa đúng"),
        ("citizen_id", "999090001234", "Số CCCD chưa đúng"),
        ("phone", "0212345678", "Số điện thoại di động chưa đúng"),
        ("phone", "091234", "Số điện thoại di động chưa đúng"),
        ("full_name", "A", "Họ và tên cần từ 2 đến 120 chữ cái"),
        ("email", "an@", "Địa chỉ email chưa đúng."),
        ("consent", "", "Bạn cần đồng ý cho phép xử lý dữ liệu cá nhân"),
    ],
)
def test_malformed_fields_are_explained_next_to_the_field(
    client, session, city, field, value, message
):
    before = state(session)
    response = book(client, city.birth, city.soon, **{field: value})
    page = text(response)
    assert response.status_code == 422
    assert 'class="error-summary"' in page and f'href="#{field}"' in page
    assert f'id="{field}-error"' in page and message in page
    assert re.search(rf'id="{field}"[^>]*aria-describedby="[^"]*{field}-error"', page)
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page)
    assert page.startswith("<!doctype html>") and "<title>Lỗi:" in page
    assert f'href="/procedures/{city.birth.code}/book?slot={city.soon.id}&amp;lang=en"' in page
    assert state(session) == before


@pytest.mark.parametrize("app_config", [{"MAX_ACTIVE_APPOINTMENTS": 1}], indirect=True)
def test_over_the_per_citizen_limit_is_a_429_page(client, session, city):
    assert book(client, city.birth, city.soon).status_code == 303
    before = state(session)
    again = book(client, city.birth, city.tomorrow, idempotency_key="x" * 24)
    assert again.status_code == 429
    assert "Bạn đã có 1 lịch hẹn đang chờ." in text(again)
    assert "Tra cứu lịch hẹn đã đặt" in text(again)
    assert state(session) == before


@pytest.mark.parametrize(
    "app_config",
    [{"RATE_LIMITS_ENABLED": True, "RATE_LIMIT_BOOKING": "2 per minute"}],
    indirect=True,
)
def test_too_many_posts_from_one_client_is_a_429_page(client, session, city):
    for n in range(2):
        response = book(client, city.birth, city.soon, citizen_id="12", idempotency_key=f"{n}" * 20)
        assert response.status_code == 422
    before = state(session)
    limited = book(client, city.birth, city.soon)
    assert limited.status_code == 429
    assert "Bạn thao tác quá nhanh." in text(limited)
    assert state(session) == before
    assert client.get("/").status_code == 200  # reading is not limited


def test_wrong_manage_token_is_refused_and_changes_nothing(app, client, session, city):
    assert book(client, city.birth, city.soon).status_code == 303
    code = session.scalar(select(Appointment.code))
    before = state(session)
    stranger = app.test_client()
    looked_up = stranger.post("/manage", data={"code": code, "token": "wrong-token"})
    assert looked_up.status_code == 404
    assert "Mã đặt lịch hoặc mã quản lý không đúng." in text(looked_up)
    # A token in an address is dropped by a redirect; a wrong one proves nothing.
    linked = stranger.get(f"/appointments/{code}?token=wrong")
    assert linked.status_code == 303 and linked.location == f"/appointments/{code}"
    assert stranger.get(linked.location).location == f"/manage?code={code}"
    cancel = stranger.post(f"/appointments/{code}/cancel?token=wrong", data={"confirm": "yes"})
    assert cancel.status_code == 302 and cancel.location == f"/manage?code={code}"
    cancel = stranger.post(f"/appointments/{code}/cancel", data={"confirm": "yes", "token": "x"})
    assert cancel.status_code == 404
    assert stranger.get(f"/appointments/{code}/qr.png?token=wrong").status_code == 303
    move = stranger.post(
        f"/appointments/{code}/reschedule/slot/{city.later.id}", data={"token": "wrong"}
    )
    assert move.status_code == 404
    # Without any token the citizen is sent to the look-up form.
    assert stranger.get(f"/appointments/{code}").location.endswith(f"/manage?code={code}")
    assert stranger.post("/manage", data={"code": code}).status_code == 422
    assert state(session) == before


def test_double_submit_of_the_same_form_books_once(client, session, city):
    first = book(client, city.birth, city.soon)
    second = book(client, city.birth, city.soon)
    assert first.status_code == second.status_code == 303
    assert first.location == second.location
    assert session.scalar(select(func.count()).select_from(Appointment)) == 1
    session.expire_all()
    assert session.get(Slot, city.soon.id).booked == 1


def test_the_same_form_reused_for_another_person_is_refused(client, session, city):
    assert book(client, city.birth, city.soon).status_code == 303
    before = state(session)
    reused = book(client, city.birth, city.soon, citizen_id=cccd(7))
    assert reused.status_code == 409
    assert "Yêu cầu này đã được dùng cho một người khác." in text(reused)
    assert f'value="{"k" * 24}"' not in text(reused)  # a fresh key for the next try
    assert state(session) == before


def test_cancel_needs_the_confirmation_box(client, session, city):
    assert book(client, city.birth, city.soon).status_code == 303
    code = session.scalar(select(Appointment.code))
    before = state(session)
    refused = client.post(f"/appointments/{code}/cancel", data={})
    assert refused.status_code == 422
    assert "Vui lòng đánh dấu ô xác nhận" in text(refused)
    assert state(session) == before
    assert client.post(f"/appointments/{code}/cancel", data={"confirm": "yes"}).status_code == 303
    again = client.post(f"/appointments/{code}/cancel", data={"confirm": "yes"})
    assert again.status_code == 409 and "không còn hiệu lực" in text(again)


def test_reschedule_to_another_centre_moves_the_seat(client, session, city):
    assert book(client, city.birth, city.soon).status_code == 303
    code = session.scalar(select(Appointment.code))
    centres = text(client.get(f"/appointments/{code}/reschedule"))
    assert f"/appointments/{code}/reschedule/{city.sai_gon.code}" in centres
    same_centre = text(client.get(f"/appointments/{code}/reschedule/{city.ben_thanh.code}"))
    assert "Lịch hiện tại" in same_centre
    slots = text(client.get(f"/appointments/{code}/reschedule/{city.sai_gon.code}"))
    target = f"/appointments/{code}/reschedule/slot/{city.sai_gon_slot.id}"
    assert target in slots
    assert "Xác nhận đổi lịch" in text(client.get(target))
    moved = client.post(target)
    assert moved.status_code == 303
    assert "Đã đổi lịch hẹn" in text(client.get(moved.location))
    session.expire_all()
    appt = session.scalars(select(Appointment)).one()
    assert appt.slot_id == city.sai_gon_slot.id and appt.centre_id == city.sai_gon.id
    assert session.get(Slot, city.soon.id).booked == 0
    assert session.get(Slot, city.sai_gon_slot.id).booked == 1


def test_reschedule_into_a_full_slot_keeps_the_old_one(client, session, city):
    assert book(client, city.birth, city.soon).status_code == 303
    code = session.scalar(select(Appointment.code))
    city.later.booked = city.later.capacity
    session.commit()
    before = state(session)
    refused = client.post(f"/appointments/{code}/reschedule/slot/{city.later.id}")
    assert refused.status_code == 409 and "vừa hết chỗ" in text(refused)
    not_taken = client.post(f"/appointments/{code}/reschedule/slot/{city.go_vap_slot.id}")
    assert not_taken.status_code == 422
    assert state(session) == before


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_forms_carry_a_csrf_token_and_posts_without_it_are_refused(client, session, city):
    before = state(session)
    refused = book(client, city.birth, city.soon)
    assert refused.status_code == 400 and "Phiên làm việc đã hết hạn" in text(refused)
    assert state(session) == before
    form = text(client.get(f"/procedures/{city.birth.code}/book?slot={city.soon.id}"))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    accepted = client.post(
        f"/procedures/{city.birth.code}/book",
        data={"slot_id": city.soon.id, "csrf_token": csrf, **person()},
    )
    assert accepted.status_code == 303


def test_services_of_other_fields_do_not_leak_into_the_slot_picker(client, session, city):
    other = make_service(city.ben_thanh, "B", fields=[make_field("Chứng thực")], name="Chứng thực")
    make_slot(other, city.soon.starts_at, capacity=5)
    session.commit()
    page = text(client.get(f"/procedures/{city.birth.code}/centres/{city.ben_thanh.code}"))
    assert "Còn 5 chỗ" not in page
    assert session.scalar(select(func.count()).select_from(Service)) == 4
