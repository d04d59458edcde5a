"""The counter workstation in a real browser: Debian's Chromium driven by Playwright.

Runs only with XEPHANG_TEST_BROWSER=1 (and fails instead of skipping under CI=true). The app
is served by werkzeug on 127.0.0.1 from a SQLite file holding a small real-looking city, with
the clock fixed to a Monday morning. An officer signs in, opens a counter and serves a
citizen with the keyboard alone. Set XEPHANG_SCREENSHOTS=<dir> to keep the screenshots
(`docs/screenshots/counter-*.png` are taken from them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.floor import tickets
from core.models import (
    Appointment,
    AppointmentStatus,
    Centre,
    CounterService,
    PriorityClass,
    Procedure,
    Service,
    Ticket,
    TicketStatus,
)
from tests import browser_support
from tests.browser_support import (
    accessible,
    new_page,
    press,
    seeded_app,
    serve,
    sign_in,
    wait_until,
)
from tests.factories import make_demo_city, make_field, make_slot, make_staff
from web.extensions import db

pytestmark = pytest.mark.browser
# The shared fixtures, under the names the tests ask for.
browser, shots = browser_support.browser_fixture, browser_support.shots_fixture

# Monday 7 December 2026, 09:10 in Ho Chi Minh City.
NOW = datetime(2026, 12, 7, 2, 10, tzinfo=UTC)
DESK = {"width": 1366, "height": 768}
TABLET = {"width": 820, "height": 1180}


@dataclass
class Live:
    url: str
    app: object
    counter_ids: dict[int, int]  # number → id at Bến Thành
    centre_id: int


def _seed() -> tuple[dict[int, int], int]:
    centres = make_demo_city(NOW, days=1)
    here = next(c for c in centres if c.code == "26743")
    land = Service(
        centre_id=here.id, prefix="B", name="Đất đai – xây dựng", fields=[make_field("Đất đai")]
    )
    db.session.add(land)
    db.session.flush()
    first, second, third = here.counters
    first.name = "Hộ tịch, chứng thực"
    db.session.add(CounterService(counter_id=first.id, service_id=land.id, rank=1))
    db.session.add(CounterService(counter_id=third.id, service_id=land.id, rank=1))
    make_staff(here, "an", full_name="Nguyễn Văn An")
    make_staff(here, "chi", full_name="Hoàng Minh Chi")
    colleague = make_staff(here, "binh", full_name="Lê Thị Bình")
    second.is_open, second.staff_id = True, colleague.id
    db.session.flush()
    db.session.refresh(here)
    line = next(s for s in here.services if s.prefix == "A")
    birth = db.session.scalars(select(Procedure).filter_by(code="1.001193")).one()
    # An elderly citizen who booked 09:00 and checked in at 08:50: first in line.
    slot = make_slot(line, NOW - timedelta(minutes=10))
    appt = Appointment(
        code="BT7K2M",
        slot_id=slot.id,
        centre_id=here.id,
        service_id=line.id,
        procedure_id=birth.id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.BOOKED,
        full_name="Phạm Thị Dung",
        phone="0903123456",
        citizen_hash="h" * 64,
        manage_token_hash="t" * 64,
        qr_nonce="n",
        consent_at=NOW - timedelta(days=2),
        created_at=NOW - timedelta(days=2),
    )
    db.session.add(appt)
    db.session.flush()
    rules = tickets.FloorRules()
    booked, _ = tickets.check_in(
        db.session, appt, here, now=NOW - timedelta(minutes=20), rules=rules
    )
    booked.priority = PriorityClass.ELDERLY  # chose the priority button at the kiosk
    for minutes, service, priority in (
        (8, line, PriorityClass.NONE),
        (6, land, PriorityClass.NONE),
        (5, land, PriorityClass.PREGNANT),
        (4, line, PriorityClass.NONE),
        (2, land, PriorityClass.NONE),
        (1, line, PriorityClass.NONE),
    ):
        tickets.issue_walk_in(
            db.session,
            here,
            now=NOW - timedelta(minutes=minutes),
            service=service,
            procedure=birth if service is line else None,
            priority=priority,
        )
    return {c.number: c.id for c in here.counters}, here.id


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    app, (counter_ids, centre_id) = seeded_app(
        tmp_path_factory.mktemp("counter-browser"), NOW, _seed
    )
    with serve(app) as url:
        yield Live(url, app, counter_ids, centre_id)


def ticket(live, label: str) -> Ticket:
    with live.app.app_context():
        row = db.session.scalars(
            select(Ticket).where(Ticket.label == label, Ticket.centre_id == live.centre_id)
        ).one()
        db.session.expunge_all()
        return row


def test_serve_a_citizen_by_keyboard(browser, live, shots):
    context, page = new_page(browser, live.url, DESK)
    page.goto("/counter/login")
    accessible(page)
    page.screenshot(path=shots / "counter-login.png")
    sign_in(page, "an")

    # The choice: counter 2 is taken by a colleague, 1 and 3 are free.
    assert page.get_by_text("Đang mở bởi Lê Thị Bình").is_visible()
    accessible(page)
    page.screenshot(path=shots / "counter-choose.png")
    page.get_by_role("button", name="Mở quầy số 1").click()
    page.wait_for_url(f"**/counter/{live.counter_ids[1]}")
    assert page.get_by_text("Chưa có số nào tại quầy").is_visible()

    # N calls the next citizen: the appointment holder who checked in first.
    press(page, "n")
    label = page.locator(".ticket__label").inner_text()
    assert label == "A001"
    assert page.get_by_text("Đã gọi số A001.").is_visible()
    assert page.get_by_text("Phạm Thị Dung").is_visible()
    assert ticket(live, "A001").status == TicketStatus.CALLED
    accessible(page)

    press(page, "s")
    assert page.locator(".ticket--serving").is_visible()
    assert ticket(live, "A001").status == TicketStatus.SERVING
    page.screenshot(path=shots / "counter-workstation.png")

    press(page, "c")
    assert page.locator(".ticket--empty").is_visible()
    assert page.get_by_text("Đã hoàn thành số A001.").is_visible()
    assert ticket(live, "A001").status == TicketStatus.DONE

    # Space calls next as well; a second press while the citizen is called is refused.
    press(page, " ")
    second = page.locator(".ticket__label").inner_text()
    assert page.get_by_text("Phụ nữ mang thai").is_visible()  # the next priority ticket
    press(page, "n")
    assert f"Quầy đang gọi số {second}" in page.locator(".notice--error").inner_text()
    # A key whose button is off says why, without leaving the page.
    page.keyboard.press("c")
    wait_until(page, "document.getElementById('hint').textContent.length > 0")
    assert "Bắt đầu" in page.locator("#hint").inner_text()
    page.screenshot(path=shots / "counter-refusal.png")
    context.close()


def test_transfer_dialog_by_keyboard(browser, live, shots):
    context, page = new_page(browser, live.url, TABLET)
    sign_in(page, "chi")
    page.get_by_role("button", name="Mở quầy số 3").click()
    page.wait_for_url(f"**/counter/{live.counter_ids[3]}")
    press(page, "n")
    label = page.locator(".ticket__label").inner_text()
    accessible(page)
    page.screenshot(path=shots / "counter-workstation-tablet.png", full_page=True)

    page.keyboard.press("t")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert page.evaluate("document.activeElement.id") == "to-service"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    # The dialog's close handler gives focus back to its link: only then is the page settled
    # (pressing on before that raced the close event and lost the key now and then).
    wait_until(page, "document.activeElement && document.activeElement.dataset.dialog")

    page.keyboard.press("t")
    dialog.wait_for()
    page.screenshot(path=shots / "counter-transfer.png")
    page.keyboard.press("Tab")  # from the service list to its "Chuyển" button
    press(page, "Enter")
    assert f"Đã chuyển số {label} đến" in page.locator(".notice--success").inner_text()
    moved = ticket(live, label)
    assert moved.status == TicketStatus.TRANSFERRED
    context.close()


def test_waiting_counts_refresh_by_themselves(browser, live):
    context, page = new_page(browser, live.url, DESK)
    sign_in(page, "binh")  # already at counter 2
    page.goto(f"/counter/{live.counter_ids[2]}")
    before = int(page.locator("[data-total]").inner_text())
    with live.app.app_context():
        here = db.session.get(Centre, live.centre_id)
        line = next(s for s in here.services if s.prefix == "A")
        tickets.issue_walk_in(db.session, here, now=NOW, service=line)
        db.session.commit()
        db.session.remove()
    wait_until(
        page,
        f"Number(document.querySelector('[data-total]').textContent) === {before + 1}",
        timeout=12,
    )
    context.close()
