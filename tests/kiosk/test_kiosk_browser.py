"""The kiosk in a real browser: Debian's Chromium driven by Playwright, by touch and keys.

Runs only with XEPHANG_TEST_BROWSER=1 (and fails instead of skipping under CI=true). The app
is served by werkzeug on 127.0.0.1 from a SQLite file holding a small real-looking city, with
the clock fixed to a Monday morning. Set XEPHANG_SCREENSHOTS=<dir> to keep the screenshots
(`docs/screenshots` holds the ones shown in the docs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.booking.appointments import qr_payload
from core.floor.tickets import issue_walk_in
from core.models import (
    Appointment,
    AppointmentStatus,
    PriorityClass,
    Procedure,
    Service,
    Ticket,
)
from tests import browser_support
from tests.browser_support import accessible, bind_kiosk, expect, new_page, seeded_app, serve
from tests.factories import make_appointment, make_demo_city, make_device
from web.extensions import db

pytestmark = pytest.mark.browser
# The shared fixtures, under the names the tests ask for.
browser, shots = browser_support.browser_fixture, browser_support.shots_fixture

# Monday 7 December 2026, 08:00 in Ho Chi Minh City.
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
# 80 mm roll at 96 CSS px per inch.
ROLL = {"width": 302, "height": 400}
SECRET = "test-secret"


@dataclass
class Live:
    url: str
    app: object
    token: str
    codes: dict[str, tuple[str, str]]  # name → (booking code, last 4 phone digits)
    qr: str


def _seed() -> tuple[str, dict[str, tuple[str, str]], str]:
    centres = make_demo_city(NOW)
    here = next(c for c in centres if c.code == "26743")
    there = next(c for c in centres if c.code == "26740")
    db.session.add(Service(centre_id=here.id, prefix="B", name="Đất đai – xây dựng", fields=[]))
    for counter in here.counters:
        counter.is_open = True
    db.session.flush()
    db.session.refresh(here)
    line = next(s for s in here.services if s.prefix == "A")
    birth = db.session.scalars(select(Procedure).filter_by(code="1.001193")).one()
    # People already waiting, so the ticket shows a queue ahead and a wait range.
    for minutes in range(2, 30, 4):
        issue_walk_in(db.session, here, now=NOW - timedelta(minutes=minutes), service=line)
    _, token = make_device(here)
    on_time = make_appointment(line, birth, NOW + timedelta(minutes=10), phone="0903123456")
    scanned = make_appointment(line, birth, NOW + timedelta(minutes=40), phone="0987654321")
    elsewhere = make_appointment(
        next(s for s in there.services if s.prefix == "A"), birth, NOW + timedelta(minutes=10)
    )
    return (
        token,
        {
            "on_time": (on_time.code, on_time.phone[-4:]),
            "elsewhere": (elsewhere.code, elsewhere.phone[-4:]),
        },
        qr_payload(SECRET, scanned),
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    app, (token, codes, qr) = seeded_app(
        tmp_path_factory.mktemp("kiosk-browser"),
        NOW,
        _seed,
        BASE_URL="https://xephang.tphcm.gov.vn",
        # Printing would open the print dialog; the print layout is checked by media.
        KIOSK_AUTO_PRINT=False,
    )
    with serve(app) as url:
        yield Live(url, app, token, codes, qr)


def _kiosk_page(browser, live, viewport):
    context, page = new_page(browser, live.url, viewport, has_touch=True)
    bind_kiosk(page, live.token)
    return context, page


@pytest.fixture
def portrait(browser, live):
    context, page = _kiosk_page(browser, live, PORTRAIT)
    yield page
    context.close()


@pytest.fixture
def landscape(browser, live):
    context, page = _kiosk_page(browser, live, LANDSCAPE)
    yield page
    context.close()


def big_enough(page, selector: str) -> None:
    """Every matching touch target is at least 64 px tall."""
    heights = page.eval_on_selector_all(
        selector,
        "els => els.filter(e => e.getClientRects().length)"
        ".map(e => e.getBoundingClientRect().height)",
    )
    assert heights and min(heights) >= 64, (selector, heights)


def tickets_of(live, **where) -> list[Ticket]:
    with live.app.app_context():
        rows = db.session.scalars(select(Ticket).filter_by(**where).order_by(Ticket.id)).all()
        db.session.expunge_all()
        return rows


def ticket_count(live) -> int:
    with live.app.app_context():
        return db.session.scalar(select(func.count()).select_from(Ticket))


# ---------------------------------------------------------------- journeys


def test_start_screen_in_both_orientations(portrait, landscape, shots):
    for page, name in ((portrait, "kiosk-start-portrait"), (landscape, "kiosk-start-landscape")):
        assert page.get_by_role("link", name="Tôi có lịch hẹn").is_visible()
        assert page.get_by_role("link", name="Lấy số thứ tự").is_visible()
        assert page.locator(".k-clock__time").inner_text() == "08:00"
        big_enough(page, ".k-big, .k-lang")
        # Nothing spills sideways on either screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        accessible(page)
        page.screenshot(path=shots / f"{name}.png")


def test_walk_in_ticket_by_touch(portrait, live, shots):
    page = portrait
    before = ticket_count(live)
    page.get_by_role("link", name="Lấy số thứ tự").tap()
    expect(page.locator(".k-choice--line")).to_have_count(2)
    accessible(page)
    page.screenshot(path=shots / "kiosk-fields.png")
    page.locator(".k-choice--field", has_text="Hộ tịch").tap()
    expect(page.get_by_role("heading", name="Hộ tịch")).to_be_visible()
    big_enough(page, ".k-choice, .k-osk__key, .k-button")
    accessible(page)
    page.screenshot(path=shots / "kiosk-procedure-choice.png")
    page.get_by_role("link", name="Thủ tục đăng ký khai sinh", exact=True).tap()
    expect(page.get_by_text("Hộ tịch – chứng thực")).to_be_visible()
    # The priority groups appear once the toggle is on.
    expect(page.get_by_text("Người cao tuổi")).to_be_hidden()
    page.locator(".k-toggle").tap()
    page.get_by_text("Người cao tuổi").tap()
    accessible(page)
    page.screenshot(path=shots / "kiosk-confirm.png")
    page.get_by_role("button", name="Lấy số").dblclick()
    page.wait_for_url("**/kiosk/tickets/**")
    expect(page.locator(".k-ticket__label")).to_be_visible()
    assert ticket_count(live) == before + 1
    ticket = tickets_of(live)[-1]
    assert ticket.priority == PriorityClass.ELDERLY
    assert page.locator(".k-ticket__label").inner_text() == ticket.label
    expect(page.locator(".k-ticket__priority")).to_contain_text("Người cao tuổi")
    accessible(page)
    page.screenshot(path=shots / "kiosk-ticket-screen.png")


def test_search_with_the_on_screen_keyboard(landscape, shots):
    page = landscape
    page.get_by_role("link", name="Lấy số thứ tự").click()
    keyboard = page.locator("[data-osk]")
    expect(keyboard).to_be_hidden()
    page.locator("#k-q").tap()
    expect(keyboard).to_be_visible()
    for key in "KET HON":
        page.locator(f'.k-osk__key[data-key="{key}"]').click()
    assert page.locator("#k-q").input_value() == "KET HON"
    expect(page.locator("[data-results] .k-choice").first).to_contain_text("đăng ký kết hôn")
    assert page.locator("[data-browse]").is_hidden()
    big_enough(page, ".k-osk__key, .k-choice")
    page.screenshot(path=shots / "kiosk-search.png")
    page.locator('.k-osk__key[data-key="close"]').click()
    expect(keyboard).to_be_hidden()


def test_check_in_by_typing_the_code(portrait, live, shots):
    page = portrait
    code, last4 = live.codes["on_time"]
    page.get_by_role("link", name="Tôi có lịch hẹn").click()
    expect(page.locator("#k-code")).to_be_focused()
    big_enough(page, ".k-input, .k-osk__key, .k-button")
    accessible(page)
    page.screenshot(path=shots / "kiosk-checkin.png")
    page.keyboard.type(code.lower())
    page.keyboard.press("Enter")  # a typed code moves on to the phone digits
    expect(page.locator("#k-last4")).to_be_focused()
    for digit in last4:
        page.locator(f'.k-osk__key[data-key="{digit}"]').click()
    page.get_by_role("button", name="Xác nhận lịch hẹn").click()
    page.wait_for_url("**/kiosk/tickets/**")
    with live.app.app_context():
        appt = db.session.scalars(select(Appointment).filter_by(code=code)).one()
        assert appt.status == AppointmentStatus.CHECKED_IN
        ticket = db.session.scalars(select(Ticket).filter_by(appointment_id=appt.id)).one()
        label = ticket.label
    assert page.locator(".k-ticket__label").inner_text() == label


def test_a_scanner_on_the_start_screen_checks_in(landscape, live):
    page = landscape
    # Scanners type the payload and Enter within milliseconds, no field focused.
    page.keyboard.type(live.qr, delay=2)
    page.keyboard.press("Enter")
    page.wait_for_url("**/kiosk/tickets/**")
    assert page.locator(".k-ticket__label").inner_text().startswith("A")


def test_printed_ticket_at_80_mm(browser, live, shots):
    context, page = _kiosk_page(browser, live, LANDSCAPE)
    page.goto("/kiosk/take/confirm?procedure=1.001193")
    page.get_by_role("button", name="Lấy số").click()
    page.wait_for_url("**/kiosk/tickets/**")
    page.set_viewport_size(ROLL)
    page.emulate_media(media="print")
    ticket = page.locator(".k-ticket")
    box = ticket.bounding_box()
    assert box and 260 <= box["width"] <= 290  # 72 mm printable
    assert page.locator(".k-bar").is_hidden() and page.locator(".k-ticket-actions").is_hidden()
    svg = page.locator(".k-ticket__qr svg").bounding_box()
    assert svg and svg["width"] >= 110  # ~30 mm: scannable from a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= ROLL["width"]
    page.screenshot(path=shots / "kiosk-ticket-print.png", full_page=True)
    context.close()


def test_an_appointment_elsewhere_says_where(landscape, live, shots):
    page = landscape
    code, last4 = live.codes["elsewhere"]
    page.get_by_role("link", name="Tôi có lịch hẹn").click()
    page.fill("#k-code", code)
    page.fill("#k-last4", last4)
    page.get_by_role("button", name="Xác nhận lịch hẹn").click()
    expect(page.get_by_role("heading", name="Lịch hẹn ở trung tâm khác")).to_be_visible()
    expect(page.locator(".k-answer__place")).to_contain_text("Phường Sài Gòn")
    accessible(page)
    page.screenshot(path=shots / "kiosk-error-other-centre.png")


def test_any_screen_returns_to_start_when_left_alone(landscape, live):
    page = landscape
    live.app.config["KIOSK_IDLE_SECONDS"] = 3
    try:
        page.goto("/kiosk/take?lang=en")
        assert page.locator("html").get_attribute("lang") == "en"
        page.wait_for_url("**/kiosk/?lang=vi", timeout=8000)
        assert page.locator("html").get_attribute("lang") == "vi"
    finally:
        live.app.config["KIOSK_IDLE_SECONDS"] = 30
