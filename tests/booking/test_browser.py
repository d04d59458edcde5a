"""Citizen booking pages in a real browser: Debian's Chromium driven by Playwright.

Runs only with XEPHANG_TEST_BROWSER=1 (and fails instead of skipping under CI=true). The app
is served by werkzeug on 127.0.0.1 from a SQLite file holding a small real-looking city, with
the clock fixed to a Monday morning so pages and screenshots are the same on every run.
Set XEPHANG_SCREENSHOTS=<dir> to keep the screenshots taken along the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.models import Appointment, AppointmentStatus, Slot
from tests import browser_support
from tests.browser_support import (
    accessible,
    fill_person,
    new_context,
    new_page,
    seeded_app,
    serve,
)
from tests.factories import cccd, make_demo_city
from web.extensions import db

pytestmark = pytest.mark.browser
# The shared fixtures, under the names the tests ask for.
browser, shots = browser_support.browser_fixture, browser_support.shots_fixture

# Monday 7 December 2026, 08:00 in Ho Chi Minh City.
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Screenshots of long pages: the first screen and a half, enough for the README.
TALL = {"x": 0, "y": 0, "width": 390, "height": 1280}
BIRTH = "1.001193"


@dataclass
class Live:
    url: str
    app: object


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    app, _ = seeded_app(tmp_path_factory.mktemp("browser"), NOW, lambda: make_demo_city(NOW))
    with serve(app) as url:
        yield Live(url, app)


@pytest.fixture
def phone(browser, live):
    context, page = new_page(browser, live.url, PHONE)
    yield page
    context.close()


def book_through_pages(page, n: int) -> tuple[str, str]:
    """Search → centre → first free slot → form → confirmation; returns (code, token)."""
    page.goto(f"/procedures/{BIRTH}?place=tan+dinh")
    page.click(".centre a.stretched >> nth=0")
    page.click("a.slot >> nth=0")
    fill_person(page, n)
    page.check("#consent")
    page.click("button:has-text('Đặt lịch')")
    page.wait_for_selector(".ticket__code")
    return page.inner_text(".ticket__code").strip(), page.inner_text("code.token").strip()


def appointment_status(live: Live, code: str) -> AppointmentStatus:
    with live.app.app_context():
        status = db.session.scalar(select(Appointment.status).where(Appointment.code == code))
        db.session.remove()
    return status


def test_journey_search_centre_slot_book_see_qr_then_cancel_with_the_code(
    browser, live, phone, shots
):
    page = phone
    page.goto("/")
    page.screenshot(path=shots / "01-home.png")
    page.fill("#q", "ho tich")
    page.click("button:has-text('Tìm thủ tục')")
    page.wait_for_selector(".result")
    assert "Thủ tục đăng ký khai sinh" in page.inner_text(".results")
    page.screenshot(path=shots / "02-search.png")
    page.get_by_role("link", name="Thủ tục đăng ký khai sinh", exact=True).click()

    page.fill("#place", "pham ngu lao")  # a ward name from before the 2025 merger
    page.click(".origin__form button")
    assert "Phường Bến Thành" in page.inner_text(".origin__now")
    assert "đang gần kín lịch" in page.inner_text("main")  # the crowded centre is flagged
    page.screenshot(path=shots / "03-centres.png", full_page=True, clip=TALL)
    first = page.inner_text(".centre .centre__name >> nth=0")
    assert first != "Phường Bến Thành"  # the nearly full nearest centre is not first
    page.click(".centre a.stretched >> nth=0")

    page.wait_for_selector(".days")
    page.screenshot(path=shots / "04-slots.png")
    page.click("a.slot >> nth=0")

    fill_person(page, 201, **{"#citizen_id": "0790", "#phone": "0212"})
    page.click("button:has-text('Đặt lịch')")
    assert page.is_visible(".error-summary")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    page.screenshot(path=shots / "05-form-errors.png")
    fill_person(page, 201)
    page.check("#consent")
    page.click("button:has-text('Đặt lịch')")

    page.wait_for_selector(".ticket__qr svg")
    assert page.inner_text("h1") == "Đặt lịch thành công"
    assert page.is_visible(".ticket__qr svg")
    code = page.inner_text(".ticket__code").strip()
    token = page.inner_text("code.token").strip()
    page.screenshot(path=shots / "06-confirmation.png", full_page=True, clip=TALL)
    with page.expect_download() as download:
        page.click("a:has-text('Tải mã QR')")
    assert download.value.suggested_filename == f"lich-hen-{code}.png"
    assert appointment_status(live, code) is AppointmentStatus.BOOKED

    # Later, on another device, with the booking code and the manage code.
    other = new_context(browser, live.url, PHONE).new_page()
    other.goto("/manage")
    other.fill("#code", code)
    other.fill("#token", token)
    other.click("button:has-text('Xem lịch hẹn')")
    other.click("a:has-text('Huỷ lịch hẹn')")
    other.check("#confirm")
    other.click("button:has-text('Huỷ lịch hẹn')")
    other.wait_for_selector(".ticket--inactive")
    assert "Đã huỷ" in other.inner_text(".ticket__status")
    other.context.close()
    assert appointment_status(live, code) is AppointmentStatus.CANCELLED


def _full_slot_id(live: Live) -> int:
    with live.app.app_context():
        slot_id = db.session.scalar(
            select(Slot.id).where(Slot.booked >= Slot.capacity).order_by(Slot.starts_at).limit(1)
        )
        db.session.remove()
    return slot_id


def test_every_booking_page_passes_axe_wcag_2_1_aa(browser, live, phone):
    page = phone
    for url in (
        "/",
        "/?q=ho+tich",
        "/?q=khong+co+thu+tuc+nay",
        f"/procedures/{BIRTH}",
        f"/procedures/{BIRTH}?place=ben+thanh",
        f"/procedures/{BIRTH}?place=phuong",
        f"/procedures/{BIRTH}/centres/26743",
        f"/procedures/{BIRTH}/centres/26737",
        f"/procedures/{BIRTH}/book?slot={_full_slot_id(live)}",
        "/manage",
        "/no-such-page",
        "/procedures/9.999999",
        "/?lang=en",
        f"/procedures/{BIRTH}/centres/26737",
        "/?lang=vi",
    ):
        page.goto(url)
        accessible(page)

    page.goto(f"/procedures/{BIRTH}/centres/26737")
    page.click("a.slot >> nth=0")
    accessible(page)  # the form
    page.click("button:has-text('Đặt lịch')")
    accessible(page)  # the form with every error

    code, _token = book_through_pages(page, 202)
    accessible(page)  # confirmation
    for url in (
        f"/appointments/{code}/reschedule",
        f"/appointments/{code}/reschedule/26740",
        f"/appointments/{code}/cancel",
    ):
        page.goto(url)
        accessible(page)
    page.goto(f"/appointments/{code}/reschedule/26740")
    page.click("a.slot >> nth=0")
    accessible(page)  # reschedule confirmation
    page.click("button:has-text('Đổi sang giờ này')")
    accessible(page)  # appointment after the move

    page.goto(f"/appointments/{code}/cancel")
    page.click("button:has-text('Huỷ lịch hẹn')")  # without ticking the box
    accessible(page)
    page.goto("/manage")
    page.fill("#code", code)
    page.fill("#token", "sai-ma")
    page.click("button:has-text('Xem lịch hẹn')")
    assert "không đúng" in page.inner_text(".error-summary")
    accessible(page)


def test_desktop_layout_passes_axe_too(browser, live, shots):
    context = new_context(browser, live.url, DESKTOP)
    page = context.new_page()
    page.goto(f"/procedures/{BIRTH}/centres/26737")
    accessible(page)
    page.screenshot(path=shots / "07-slots-desktop.png")
    page.goto("/?q=ho+tich")
    accessible(page)
    page.screenshot(path=shots / "08-search-desktop.png")
    context.close()


def tab_to(page, selector: str, *, limit: int = 150) -> None:
    """Press Tab until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector} on {page.url}")


def press_and_wait(page, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


def test_keyboard_only_journey_reaches_the_confirmation(browser, live, phone):
    page = phone
    page.goto("/")
    tab_to(page, "#q")
    page.keyboard.type("ho tich")
    press_and_wait(page, "Enter")

    tab_to(page, ".result a.stretched")
    assert "khai sinh" in page.evaluate("document.activeElement.textContent")
    press_and_wait(page, "Enter")

    tab_to(page, "#place")
    page.keyboard.type("tan dinh")
    press_and_wait(page, "Enter")
    tab_to(page, ".centre a.stretched")
    press_and_wait(page, "Enter")

    tab_to(page, "a.slot")
    press_and_wait(page, "Enter")

    tab_to(page, "#full_name")
    page.keyboard.type("Trần Văn Bình")
    page.keyboard.press("Tab")
    page.keyboard.type("0987654321")
    page.keyboard.press("Tab")
    page.keyboard.type(cccd(203))
    tab_to(page, "#consent")
    page.keyboard.press("Space")
    assert page.is_checked("#consent")
    tab_to(page, "button[type=submit]")
    press_and_wait(page, "Enter")

    assert page.inner_text("h1") == "Đặt lịch thành công"
    assert page.is_visible(".ticket__qr svg")
    code = page.inner_text(".ticket__code").strip()
    assert appointment_status(live, code) is AppointmentStatus.BOOKED
