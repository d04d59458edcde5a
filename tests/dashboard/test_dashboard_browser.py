"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Runs only with XEPHANG_TEST_BROWSER=1 (and fails instead of skipping under CI=true). The app
is served from a SQLite file holding a small city: the five demo centres plus a ring of
wards and communes across Ho Chi Minh City, Bến Thành swamped on Mondays, an officer in the
mobile pool and two spare officers at Sài Gòn, and a week of served tickets at Bến Thành.
An operator signs in, reads the overview (map and list), opens Bến Thành's statistics and
accepts the dispatch plan. Set XEPHANG_SCREENSHOTS=<dir> to keep the screenshots
(`docs/screenshots/dashboard-*.png` are taken from them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from core.common.timeutil import local_to_utc
from core.models import Field, Procedure, StaffAssignment, TicketSource, TicketStatus
from tests import browser_support
from tests.browser_support import accessible, expect, new_page, seeded_app, serve, wait_until
from tests.factories import (
    STAFF_PASSWORD,
    make_centre,
    make_demo_city,
    make_history_ticket,
    make_service,
    make_staff,
)
from web.extensions import db

pytestmark = pytest.mark.browser
browser, shots = browser_support.browser_fixture, browser_support.shots_fixture

# Monday 7 December 2026, 10:30 in Ho Chi Minh City.
NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
PLAN_DAY = date(2026, 12, 14)  # the Monday after
DESK = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# More wards and communes, spread over the city (approximate coordinates; test codes).
RING = (
    ("90101", "Phường Thủ Đức", 10.8494, 106.7537, 3),
    ("90102", "Phường Bình Thạnh", 10.8106, 106.7091, 3),
    ("90103", "Phường Tân Bình", 10.8015, 106.6527, 3),
    ("90104", "Phường Phú Nhuận", 10.7992, 106.6803, 2),
    ("90105", "Phường Chợ Lớn", 10.7537, 106.6580, 3),
    ("90106", "Phường Bình Tân", 10.7652, 106.6038, 2),
    ("90107", "Phường Tân Phú", 10.7901, 106.6282, 2),
    ("90108", "Phường Phú Mỹ Hưng", 10.7295, 106.7217, 3),
    ("90109", "Phường Long Trường", 10.8085, 106.8115, 2),
    ("90110", "Xã Bình Hưng", 10.7202, 106.6710, 2),
    ("90111", "Xã Hóc Môn", 10.8868, 106.5920, 2),
    ("90112", "Xã Củ Chi", 10.9730, 106.4935, 2),
    ("90113", "Xã Nhà Bè", 10.6950, 106.7390, 2),
    ("90114", "Xã Cần Giờ", 10.4113, 106.9547, 1),
    ("90115", "Phường Thủ Dầu Một", 10.9804, 106.6519, 3),
    ("90116", "Phường Dĩ An", 10.9069, 106.7694, 3),
    ("90117", "Phường Vũng Tàu", 10.3460, 107.0843, 3),
    ("90118", "Phường Bà Rịa", 10.4963, 107.1684, 2),
    ("90119", "Đặc khu Côn Đảo", 8.6824, 106.6090, 1),  # 180 km out at sea
)
PAST_MONDAYS = (date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30))
STATS_DAYS = (
    date(2026, 12, 1),
    date(2026, 12, 2),
    date(2026, 12, 3),
    date(2026, 12, 4),
    date(2026, 12, 7),
)


@dataclass
class Live:
    url: str
    app: object


def _served_day(line, day: date, count: int) -> None:
    """`count` tickets over the morning: most served, some no-shows, waits growing to 10:00;
    three in five for a Hộ tịch procedure, one for a Chứng thực one, one with none (the line
    takes both fields: field not known)."""
    sources = (TicketSource.APPOINTMENT, TicketSource.WALK_IN, TicketSource.REMOTE)
    first = {}
    for name in ("Hộ tịch", "Chứng thực"):
        q = select(Procedure.id).join(Field).where(Field.name == name).order_by(Procedure.code)
        first[name] = db.session.scalars(q).first()
    procedures = (first["Hộ tịch"],) * 3 + (first["Chứng thực"], None)
    for n in range(count):
        at = time(8 + n * 3 // count, (n * 17) % 60)
        issued = local_to_utc(day, at)
        if issued + timedelta(minutes=40) > NOW:
            break
        wait = 4 + (n * 7) % 23 + (8 if at.hour == 9 else 0)
        called = issued + timedelta(minutes=wait)
        kw = {"called_at": called, "eta_low_minutes": 5, "eta_high_minutes": 20}
        kw["procedure_id"] = procedures[n % 5]
        if n % 9 == 4:
            kw.update(status=TicketStatus.NO_SHOW, finished_at=called + timedelta(minutes=5))
        else:
            kw.update(
                status=TicketStatus.DONE,
                started_at=called,
                finished_at=called + timedelta(minutes=6 + n % 8),
            )
        make_history_ticket(line, day, at, sources[n % 3], **kw)


def _seed() -> None:
    centres = {c.code: c for c in make_demo_city(NOW, days=8)}
    ring = {}
    for code, name, lat, lon, counters in RING:
        ring[code] = make_centre(code, name, lat=lat, lon=lon)
        make_service(ring[code], counters=counters)
    ben_thanh = centres["26743"].services[0]
    for day in PAST_MONDAYS:
        for _ in range(22):
            make_history_ticket(ben_thanh, day, time(9, 10))
    for day in STATS_DAYS:
        _served_day(ben_thanh, day, 30)
    # Officers on the rolls of centres with counters to spare.
    make_staff(centres["26884"], "lan", full_name="Võ Thị Lan")
    make_staff(ring["90101"], "tuan", full_name="Ngô Văn Tuấn")
    make_staff(ring["90102"], "hoa", full_name="Đỗ Thị Hoa")
    pool = make_staff(None, "codong", full_name="Phan Thị Cơ Động")
    pool.in_mobile_pool = True
    make_staff(None, "dieuhanh", role="operator", full_name="Lê Văn Điều")


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    app, _ = seeded_app(tmp_path_factory.mktemp("dashboard-browser"), NOW, _seed)
    with serve(app) as url:
        yield Live(url, app)


def sign_in_operator(page) -> None:
    page.goto("/counter/login")
    page.get_by_label("Tên đăng nhập").fill("dieuhanh")
    page.get_by_label("Mật khẩu").fill(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard")


def loaded(page) -> None:
    expect(page.locator("#status")).to_contain_text("Cập nhật lúc", timeout=20_000)


def test_overview_map_and_list(browser, live, shots):
    context, page = new_page(browser, live.url, DESK)
    sign_in_operator(page)
    loaded(page)
    centres = 5 + len(RING)
    assert page.locator("svg a.dot").count() == centres
    assert page.locator("[data-rows] tr").count() == centres
    # Sorted by load: the swamped Bến Thành first, flagged in the warnings.
    first = page.locator("[data-rows] tr").first
    expect(first.locator("th a")).to_have_text("Phường Bến Thành")
    expect(page.locator("[data-warnings]")).to_contain_text("Phường Bến Thành")
    assert page.locator("svg a.dot--over").count() >= 1
    # Sunday (the last day) is closed everywhere: grey cells and grey dots once picked.
    page.locator(".day-pick").last.click()
    assert page.locator("svg a.dot--closed").count() == centres
    page.locator(".day-pick").first.click()
    # Focus shows a dot's name and figures.
    dot = page.locator('svg a.dot[data-code="26743"]')
    dot.focus()
    tip = page.locator("[data-tip]")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Phường Bến Thành")
    expect(tip).to_contain_text("cán bộ")
    assert "quá tải" in (dot.get_attribute("aria-label") or "")
    accessible(page)
    page.mouse.move(0, 0)
    dot.blur()
    expect(tip).to_be_hidden()
    page.screenshot(path=shots / "dashboard-overview.png")
    # The island far out at sea does not shrink the city: it sits in an inset, by name.
    inset = page.locator("svg [data-inset]")
    expect(inset).to_contain_text("Đặc khu Côn Đảo")
    assert inset.locator("a.dot").count() == 1
    frame = page.evaluate("document.querySelector('[data-svg]').getAttribute('viewBox')")
    # The inner city, zoomed: fewer dots in view, each as large on screen; back again.
    zoom_in = page.get_by_role("button", name="Nội thành")
    zoom_in.click()
    expect(zoom_in).to_have_attribute("aria-pressed", "true")
    expect(inset).to_be_hidden()
    zoomed = page.evaluate("document.querySelector('[data-svg]').getAttribute('viewBox')")
    assert zoomed != frame and float(zoomed.split()[2]) < float(frame.split()[2]) / 1.5
    expect(page.locator('svg a.dot[data-code="26743"]')).to_be_visible()
    page.screenshot(path=shots / "dashboard-overview-inner-city.png")
    page.get_by_role("button", name="Toàn thành phố").click()
    assert page.evaluate("document.querySelector('[data-svg]').getAttribute('viewBox')") == frame
    # Sorting by name, in Vietnamese order: Đặc khu before Phường, Bà Rịa before Bến Thành.
    page.select_option("#sort", "name")
    rows = page.locator("[data-rows] tr")
    expect(rows.first.locator("th a")).to_have_text("Đặc khu Côn Đảo")
    expect(rows.nth(1).locator("th a")).to_have_text("Phường Bà Rịa")
    context.close()


def test_overview_on_a_phone(browser, live, shots):
    context, page = new_page(browser, live.url, PHONE)
    sign_in_operator(page)
    loaded(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    accessible(page)
    page.screenshot(path=shots / "dashboard-overview-phone.png", full_page=True)
    # A centre's statistics fit the phone too: the range form and both downloads wrap.
    page.goto(f"{live.url}/dashboard/centres/26743")
    expect(page.get_by_role("link", name="Tải CSV cho Excel")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=shots / "dashboard-centre-stats-phone.png", full_page=False)
    context.close()


def test_centre_statistics_charts_and_tables(browser, live, shots):
    context, page = new_page(browser, live.url, DESK)
    sign_in_operator(page)
    loaded(page)
    page.locator("[data-rows] a", has_text="Phường Bến Thành").click()
    page.wait_for_url("**/dashboard/centres/26743")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thống kê Phường Bến Thành")
    for chart in ("days", "sources", "services", "fields", "hours"):
        wait_until(page, f"document.getElementById('{chart}-chart').chart !== undefined", 10)
    drawn = page.evaluate(
        "['days','sources','services','fields','hours'].map(id => "
        "document.getElementById(id + '-chart').chart.data.datasets[0].data)"
    )
    days_table = page.locator("#days-table table")
    rows = days_table.locator("tbody tr")
    assert rows.count() == 7
    # The first chart's bars are the table's "Phát số" column.
    issued = [int(rows.nth(i).locator("td").first.text_content()) for i in range(7)]
    assert drawn[0] == issued and sum(issued) > 0
    assert sum(drawn[1]) == sum(issued)  # every ticket has a source
    # By field: the chart's bars are its table's, and every ticket is in one row of it.
    fields = page.locator("#fields-table tbody tr")
    names = [fields.nth(i).locator("th").text_content() for i in range(fields.count())]
    assert names == ["Hộ tịch", "Chứng thực", "Chưa rõ lĩnh vực"]
    by_field = [int(fields.nth(i).locator("td").first.text_content()) for i in range(3)]
    assert drawn[3] == by_field and sum(by_field) == sum(issued)
    assert page.evaluate("document.getElementById('fields-chart').chart.data.labels") == names
    # The table is tucked away visually, then shown by its button.
    toggle = page.locator('[aria-controls="days-table"]')
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(days_table).to_be_visible()
    accessible(page)
    page.screenshot(path=shots / "dashboard-centre-stats.png", full_page=True)
    context.close()


def assignments(live) -> int:
    with live.app.app_context():
        count = db.session.scalar(select(func.count()).select_from(StaffAssignment))
        db.session.remove()
        return count


def test_dispatch_plan_changed_then_accepted(browser, live, shots):
    context, page = new_page(browser, live.url, DESK)
    sign_in_operator(page)
    page.get_by_role("link", name="Điều động cán bộ").click()
    page.wait_for_url("**/dashboard/dispatch")
    page.fill("#date", PLAN_DAY.isoformat())
    page.get_by_role("button", name="Xem kế hoạch").click()
    page.wait_for_url(f"**/dashboard/dispatch?date={PLAN_DAY.isoformat()}")
    moves = page.locator("[data-moves] tr")
    expect(moves.first).to_be_visible(timeout=20_000)
    expect(moves.first).to_contain_text("Đội cơ động")
    expect(moves.first).to_contain_text("Phường Bến Thành")
    accessible(page)
    page.screenshot(path=shots / "dashboard-dispatch.png", full_page=True)

    # Someone adds a second pool officer meanwhile: the plan shown is no longer the plan.
    with live.app.app_context():
        extra = make_staff(None, "codong2", full_name="Trương Văn Hai")
        extra.in_mobile_pool = True
        db.session.commit()
        db.session.remove()
    shown = page.locator("[data-status]").text_content()
    page.get_by_role("button", name="Chấp nhận kế hoạch").click()
    outcome = page.locator("[data-outcome]")
    expect(outcome).to_contain_text("Kế hoạch đã thay đổi")
    expect(page.locator("[data-status]")).not_to_have_text(shown)
    assert assignments(live) == 0

    page.get_by_role("button", name="Chấp nhận kế hoạch").click()
    expect(outcome).to_contain_text("Đã chấp nhận kế hoạch")
    assert assignments(live) > 0
    accessible(page)
    page.screenshot(path=shots / "dashboard-dispatch-accepted.png", full_page=True)

    # Reloaded, the day's plan is a new one (the officers moved); the acceptance is still said.
    page.reload()
    decision = page.locator("[data-decision]")
    expect(decision).to_be_visible(timeout=20_000)
    expect(decision).to_contain_text("Kế hoạch trước đó trong ngày")
    expect(decision).to_contain_text("chấp nhận lúc")
    context.close()
