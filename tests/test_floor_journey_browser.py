"""One citizen from booking to done, across the three front ends, in headless Chromium.

A phone books the next slot at Phường Tân Định through the booking pages; the centre's kiosk
checks the booking in with the code and the last four phone digits and hands out a ticket;
an officer opens a counter, calls the next citizen with N — it must be that ticket — starts
with S and completes with C. The database must then tell the same story.

Runs only with XEPHANG_TEST_BROWSER=1 (and fails instead of skipping under CI=true); see
`tests/browser_support.py`. Set XEPHANG_SCREENSHOTS=<dir> to keep the screenshot of each step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.common.timeutil import local_day
from core.models import (
    Appointment,
    AppointmentStatus,
    Slot,
    Ticket,
    TicketEvent,
    TicketSource,
    TicketStatus,
)
from tests import browser_support
from tests.browser_support import (
    bind_kiosk,
    expect,
    fill_person,
    new_page,
    press,
    seeded_app,
    serve,
    sign_in,
)
from tests.factories import make_demo_city, make_device, make_staff
from web.extensions import db

pytestmark = pytest.mark.browser
# The shared fixtures, under the names the tests ask for.
browser, shots = browser_support.browser_fixture, browser_support.shots_fixture

# Monday 7 December 2026, 08:10 in Ho Chi Minh City: the centres opened at 07:30, and the
# next slot (08:30) is within the 60 minutes before its start in which check-in is allowed.
NOW = datetime(2026, 12, 7, 1, 10, tzinfo=UTC)
CENTRE = "26737"  # Phường Tân Định
CENTRE_NAME = "Phường Tân Định"
CITIZEN = "Lê Hoàng Nam"
PHONE_NUMBER = "0903 456 789"  # typed with spaces, as people do
LAST4 = "6789"
PHONE = {"width": 390, "height": 844}
KIOSK = {"width": 1080, "height": 1920}
DESK = {"width": 1366, "height": 768}


@dataclass
class Live:
    url: str
    app: object
    kiosk_token: str
    officer_id: int


def _seed() -> tuple[str, int]:
    centres = make_demo_city(NOW, days=1)
    here = next(c for c in centres if c.code == CENTRE)
    # The demo city books some slots full; today's at this centre are all free here, so the
    # citizen's first choice is the next slot of the day, whatever the demo arithmetic does.
    for slot in db.session.scalars(
        select(Slot).where(Slot.centre_id == here.id, Slot.day == local_day(NOW))
    ):
        slot.booked = 0
    _, token = make_device(here)
    officer = make_staff(here, "lan", full_name="Võ Thị Lan")
    return token, officer.id


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    app, (token, officer_id) = seeded_app(
        tmp_path_factory.mktemp("floor-journey"),
        NOW,
        _seed,
        # Printing would open the print dialog; the kiosk ticket is read from the screen.
        KIOSK_AUTO_PRINT=False,
    )
    with serve(app) as url:
        yield Live(url, app, token, officer_id)


def book_next_slot(page, shots) -> str:
    """Home → search → procedure → centre → today's next slot → form → the booking code."""
    page.goto("/")
    page.fill("#q", "khai sinh")
    page.click("button:has-text('Tìm thủ tục')")
    page.get_by_role("link", name="Thủ tục đăng ký khai sinh", exact=True).click()
    page.fill("#place", "tan dinh")
    page.click(".origin__form button")
    # Waiting for the answer also keeps the screenshot from racing the navigation.
    expect(page.locator(".origin__now")).to_contain_text(CENTRE_NAME)
    page.screenshot(path=shots / "journey-01-centres.png")
    page.locator(".centre a.stretched", has_text=CENTRE_NAME).click()

    first = page.locator("a.slot").first
    expect(first.locator(".slot__time")).to_have_text("08:30–09:00")
    page.screenshot(path=shots / "journey-02-slots.png")
    first.click()

    fill_person(page, 301, **{"#full_name": CITIZEN, "#phone": PHONE_NUMBER})
    page.check("#consent")
    page.click("button:has-text('Đặt lịch')")
    expect(page.locator("h1")).to_have_text("Đặt lịch thành công")
    page.screenshot(path=shots / "journey-03-confirmation.png", full_page=True)
    return page.inner_text(".ticket__code").strip()


def check_in_at_kiosk(page, shots, code: str) -> str:
    """Kiosk start → «Tôi có lịch hẹn» → code and last four phone digits → the ticket label."""
    page.screenshot(path=shots / "journey-04-kiosk-start.png")
    page.get_by_role("link", name="Tôi có lịch hẹn").tap()
    page.fill("#k-code", code)
    page.fill("#k-last4", LAST4)
    page.screenshot(path=shots / "journey-05-kiosk-checkin.png")
    page.get_by_role("button", name="Xác nhận lịch hẹn").tap()
    page.wait_for_url("**/kiosk/tickets/**")
    expect(page.locator(".k-ticket__centre")).to_have_text(CENTRE_NAME)
    expect(page.locator(".k-ticket__appointment")).to_contain_text("08:30")
    page.screenshot(path=shots / "journey-06-kiosk-ticket.png")
    return page.inner_text(".k-ticket__label").strip()


def serve_at_counter(page, shots, label: str) -> None:
    """Sign in → open counter 1 → N calls `label` → S starts → C completes."""
    sign_in(page, "lan")
    page.screenshot(path=shots / "journey-07-counter-choose.png")
    page.get_by_role("button", name="Mở quầy số 1").click()
    page.wait_for_url(re.compile(r"/counter/\d+$"))
    expect(page.locator(".ticket--empty")).to_be_visible()
    # The queue panel already counts the checked-in citizen.
    expect(page.locator("[data-total]")).to_have_text("1")

    press(page, "n")
    expect(page.locator(".ticket__label")).to_have_text(label)
    expect(page.get_by_text(f"Đã gọi số {label}.")).to_be_visible()
    expect(page.locator(".citizen__name")).to_have_text(CITIZEN)
    page.screenshot(path=shots / "journey-08-counter-called.png")

    press(page, "s")
    expect(page.locator(".ticket--serving .ticket__label")).to_have_text(label)
    page.screenshot(path=shots / "journey-09-counter-serving.png")

    press(page, "c")
    expect(page.locator(".ticket--empty")).to_be_visible()
    expect(page.get_by_text(f"Đã hoàn thành số {label}.")).to_be_visible()
    page.screenshot(path=shots / "journey-10-counter-done.png")


def test_book_check_in_call_and_complete(browser, live, shots):
    citizen, phone = new_page(browser, live.url, PHONE)
    code = book_next_slot(phone, shots)
    citizen.close()

    kiosk, screen = new_page(browser, live.url, KIOSK, has_touch=True)
    bind_kiosk(screen, live.kiosk_token)
    label = check_in_at_kiosk(screen, shots, code)
    kiosk.close()

    desk, workstation = new_page(browser, live.url, DESK)
    serve_at_counter(workstation, shots, label)
    desk.close()

    with live.app.app_context():
        appointment = db.session.scalars(select(Appointment).filter_by(code=code)).one()
        assert appointment.status is AppointmentStatus.DONE
        assert appointment.full_name == CITIZEN
        ticket = db.session.scalars(select(Ticket).filter_by(appointment_id=appointment.id)).one()
        assert (ticket.label, ticket.status, ticket.source) == (
            label,
            TicketStatus.DONE,
            TicketSource.APPOINTMENT,
        )
        events = db.session.scalars(
            select(TicketEvent).filter_by(ticket_id=ticket.id).order_by(TicketEvent.id)
        ).all()
        assert [e.kind for e in events] == ["issued", "called", "started", "completed"]
        # The counter's steps are signed by the officer, at the counter that called.
        assert {(e.staff_id, e.counter_id) for e in events[1:]} == {
            (live.officer_id, ticket.counter_id)
        }
        db.session.remove()
