"""The waiting-room board and the phone ticket page in a real browser, live over Socket.IO.

Runs only with XEPHANG_TEST_BROWSER=1 (and fails instead of skipping under CI=true). The app
runs in a process of its own (tests/display/board_server.py) on a SQLite file, with the clock
stopped on a Monday morning, so that the outage test can kill it like a real one and start
it again. Officers call through the HTTP API with their bearer tokens, as a workstation
does; the pages must follow without a reload. Set XEPHANG_SCREENSHOTS=<dir> to keep the
screenshots (`docs/screenshots` holds the ones shown in the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.floor.tickets import issue_walk_in
from tests import browser_support
from tests.browser_support import accessible, expect, new_page, seeded_app, sign_in
from tests.display.live import free_port
from tests.factories import make_centre, make_field, make_service, make_staff, staff_token
from web.extensions import db

pytestmark = pytest.mark.browser
browser, shots = browser_support.browser_fixture, browser_support.shots_fixture

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "screenshots"
# Monday 7 December 2026, 09:10 in Ho Chi Minh City.
NOW = datetime(2026, 12, 7, 2, 10, tzinfo=UTC)
FULL_HD = {"width": 1920, "height": 1080}
HD = {"width": 1280, "height": 720}
PORTRAIT = {"width": 1080, "height": 1920}
PHONE = {"width": 360, "height": 740}
# The board's clock runs on from the server's (stopped) time when the page loaded.
UPDATED = re.compile(r"^Cập nhật lúc 09:1\d:\d\d$")


@dataclass
class Live:
    url: str
    database_url: str
    port: int
    log: Path
    tokens: dict[int, str]  # counter number → its officer's bearer token
    counter_ids: dict[int, int]  # counter number → id
    phone_ticket: str  # public id of a waiting ticket in line B
    process: subprocess.Popen | None = None
    in_hand: dict[int, str] = field(default_factory=dict)  # counter → public id called there

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.display.board_server", self.database_url,
                 NOW.isoformat(), str(self.port)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                # Loopback http URLs built here, never user input.
                with urllib.request.urlopen(f"{self.url}/board/voice/manifest.json", timeout=2):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(self.log.read_text(errors="replace")[-3000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def api(self, method: str, path: str, counter: int) -> dict | None:
        request = urllib.request.Request(  # noqa: S310 (loopback http only)
            f"{self.url}/api/v1{path}",
            method=method,
            headers={"Authorization": f"Bearer {self.tokens[counter]}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read()
        return json.loads(body) if body else None

    def call(self, counter: int) -> str:
        """The officer at `counter` starts serving whoever is there, then calls the next."""
        if counter in self.in_hand:
            self.api("POST", f"/tickets/{self.in_hand.pop(counter)}/start", counter)
        answer = self.api("POST", f"/counters/{self.counter_ids[counter]}/call-next", counter)
        assert answer is not None, f"nobody waits for counter {counter}"
        ticket = answer["ticket"]
        self.in_hand[counter] = ticket["public_id"]
        return ticket["label"]


def _seed() -> tuple[dict[int, str], dict[int, int], str]:
    centre = make_centre("26743", "Phường Bến Thành", address="92 Nguyễn Trãi")
    civil, land = make_field("Hộ tịch"), make_field("Đất đai")
    line_a = make_service(centre, "A", fields=[civil], counters=4, name="Hộ tịch – chứng thực")
    line_b = make_service(centre, "B", fields=[land], counters=2, name="Đất đai – xây dựng")
    earlier = NOW - timedelta(minutes=70)
    for i in range(18):
        issue_walk_in(db.session, centre, now=earlier + timedelta(minutes=3 * i), service=line_a)
    b_tickets = [
        issue_walk_in(db.session, centre, now=earlier + timedelta(minutes=5 * i), service=line_b)
        for i in range(6)
    ]
    tokens, ids = {}, {}
    for counter in centre.counters:
        officer = make_staff(centre, f"quay{counter.number}")
        tokens[counter.number] = staff_token(officer)
        ids[counter.number] = counter.id
    return tokens, ids, b_tickets[2].public_id


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("board-browser")
    app, (tokens, ids, phone_ticket) = seeded_app(tmp, NOW, _seed)
    database_url = f"sqlite:///{tmp / 'browser.db'}"
    with app.app_context():
        db.engine.dispose()
    port = free_port()
    server = Live(
        f"http://127.0.0.1:{port}",
        database_url,
        port,
        tmp / "server.log",
        tokens,
        ids,
        phone_ticket,
    )
    server.start()
    try:
        for number in ids:
            server.api("POST", f"/counters/{ids[number]}/open", number)
        yield server
    finally:
        server.stop()


@pytest.fixture
def board(browser, live):
    context, page = new_page(browser, live.url, FULL_HD)
    page.goto("/board/26743")
    expect(page.locator("[data-updated]")).to_have_text(UPDATED, timeout=5000)
    yield page
    context.close()


def keep(shots: Path, page, name: str, *, docs: str | None = None) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get("XEPHANG_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / docs)


# ---------------------------------------------------------------- the board


def test_board_follows_calls_without_reload(board, live, shots):
    page = board
    expect(page.locator(".b-latest__none")).to_have_text("Chưa gọi số nào")
    page.get_by_role("button", name="Bấm để bật âm thanh").click()
    expect(page.locator("[data-sound-enable]")).to_be_hidden()
    page.evaluate("window.__sameDocument = true")

    label = live.call(1)
    expect(page.locator(".b-latest__label")).to_have_text(label)
    expect(page.locator(".b-latest__counter")).to_have_text("Quầy 1")
    expect(page.locator(".b-latest")).to_have_class("b-latest is-new")
    # The announcement was queued, read the Vietnamese way (A001 → "a một").
    spoken = page.evaluate("window.xephangBoard.voice.spoken")
    assert spoken == ["moi-cong-dan-co-so letter-a mot den-quay-so mot"]

    # A busy morning: more counters call, the first ones again (line B is the phone's).
    for counter in (2, 3, 4, 1, 2, 3):
        label = live.call(counter)
        expect(page.locator(".b-latest__label")).to_have_text(label)
    expect(page.locator(".b-latest__counter")).to_have_text("Quầy 3")
    expect(page.locator(".b-serving .b-tile")).to_have_count(3)
    expect(page.locator(".b-recent__item")).to_have_count(7)
    first_row = page.locator("[data-waiting] tr").first
    expect(first_row.locator(".b-wait__count")).to_have_text("11")
    assert page.evaluate("window.__sameDocument") is True
    assert len(page.evaluate("window.xephangBoard.voice.spoken")) == 7
    # Nothing spills off the screen.
    assert page.evaluate("document.documentElement.scrollHeight") <= FULL_HD["height"]
    accessible(page)
    keep(shots, page, "board-1920", docs="board-1920.png")


def test_board_at_720p_and_in_portrait(browser, live, shots):
    for viewport, name in ((HD, "board-1280"), (PORTRAIT, "board-portrait")):
        context, page = new_page(browser, live.url, viewport)
        try:
            page.goto("/board/26743")
            expect(page.locator("[data-updated]")).to_have_text(UPDATED)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            assert page.evaluate("document.documentElement.scrollHeight") <= viewport["height"]
            # The latest call (or "none yet") is the biggest thing on the screen.
            height = page.eval_on_selector(
                ".b-latest", "box => box.firstElementChild.getBoundingClientRect().height"
            )
            assert height >= viewport["height"] * 0.06
            keep(shots, page, name)
        finally:
            context.close()


def test_numbers_are_read_the_vietnamese_way(board):
    say = "(args) => XephangVoice.sentence(args[0], args[1]).join(' ')"
    cases = {
        ("A023", 5): "letter-a hai muoi-tens ba den-quay-so nam",
        ("B105", 12): "letter-b mot tram linh nam den-quay-so muoi hai",
        ("A015", 21): "letter-a muoi lam den-quay-so hai muoi-tens mot-units",
        ("C010", 24): "letter-c muoi den-quay-so hai muoi-tens tu-units",
        ("A100", 30): "letter-a mot tram den-quay-so ba muoi-tens",
        ("A1005", 1): "letter-a mot nghin khong tram linh nam den-quay-so mot",
    }
    for (label, counter), expected in cases.items():
        assert board.evaluate(say, [label, counter]) == f"moi-cong-dan-co-so {expected}"
    # Every label a centre can print, at any counter, is covered by a clip.
    missing = board.evaluate(
        """async () => {
          const manifest = await (await fetch('/board/voice/manifest.json')).json();
          const missing = new Set();
          for (const letter of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
            for (let n = 1; n < 1000; n += 1)
              for (const key of XephangVoice.sentence(letter + String(n).padStart(3, '0'), n % 99 + 1))
                if (!manifest.clips[key]) missing.add(key);
          return [...missing];
        }"""
    )
    assert missing == []


# ---------------------------------------------------------------- the phone


def test_phone_page_follows_its_ticket(browser, live, shots):
    context, page = new_page(browser, live.url, PHONE, has_touch=True, is_mobile=True)
    try:
        page.goto(f"/t/{live.phone_ticket}")
        expect(page.locator(".tk__label")).to_have_text("B003")
        position = page.locator("[data-position]")
        ahead = int(position.inner_text().split()[1])
        page.evaluate("window.__sameDocument = true")
        # The line moves: the page asks again (within 2 s) and shows one fewer ahead.
        live.call(5)
        expect(position).to_have_text(f"Còn {ahead - 1} người trước bạn", timeout=6000)
        accessible(page)
        keep(shots, page, "ticket-phone-waiting", docs="ticket-phone-waiting.png")
        counter = 5
        while live.call(counter) != "B003":
            counter = 11 - counter  # counters 5 and 6 take turns
        expect(page.locator("[data-status-text]")).to_have_text(f"Đến lượt bạn: quầy số {counter}")
        expect(page.locator("[data-ticket]")).to_have_class("tk tk--called")
        assert page.evaluate("window.__sameDocument") is True
        accessible(page)
        keep(shots, page, "ticket-phone-called", docs="ticket-phone-called.png")
    finally:
        context.close()


# ---------------------------------------------------------------- the counter workstation


def test_counter_counts_follow_without_polling(browser, live):
    context, page = new_page(browser, live.url, FULL_HD)
    try:
        # Only the socket may update the counts: the workstation's own polling is cut off.
        page.route("**/queue.json", lambda route: route.abort())
        sign_in(page, "quay4")
        page.goto(f"/counter/{live.counter_ids[4]}")
        count = page.locator("[data-service] [data-count]").first
        before = int(count.inner_text())
        live.call(1)
        expect(count).to_have_text(str(before - 1))
        expect(page.locator("[data-total]")).to_have_text(str(before - 1))
    finally:
        context.close()


# ---------------------------------------------------------------- outage (last: restarts the server)


def test_board_shows_outage_and_recovers(board, live, shots):
    page = board
    shown = page.locator(".b-latest").inner_text()
    offline = page.locator("[data-offline]")
    expect(offline).to_be_hidden()
    live.stop()
    expect(offline).to_be_visible(timeout=10000)
    expect(offline).to_have_text("Mất kết nối — đang thử lại")
    # The last state stays on screen, with the time it was last updated.
    assert page.locator(".b-latest").inner_text() == shown
    expect(page.locator("[data-updated]")).to_have_text(UPDATED)
    keep(shots, page, "board-offline")
    live.start()
    expect(offline).to_be_hidden(timeout=15000)
    label = live.call(2)
    # (The test's clock is stopped, so every call has the same time: look at every call shown.)
    expect(page.locator(".b-now").get_by_text(label, exact=True)).to_be_visible()
