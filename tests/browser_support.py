"""What every browser test needs: a live app, Debian's Chromium, screenshots and axe-core.

Browser tests run only with XEPHANG_TEST_BROWSER=1 (and fail instead of skipping under
CI=true). A module builds its app with `seeded_app()` — a SQLite file, the clock fixed by
`CLOCK`, tables and seed data committed — serves it with `serve()` in a `live` fixture, and
takes the `browser` and `shots` fixtures from here (see `browser_fixture`). Set
XEPHANG_SCREENSHOTS=<dir> to keep the screenshots; otherwise they go to a temporary folder.

Page helpers that more than one module drives (the booking form, binding a kiosk, signing
in at a counter, pressing a shortcut) live here too, so a change of selector is made once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from flask import Flask
from werkzeug.serving import make_server

from core.catalogue.search import index
from tests.conftest import _make_app, need
from tests.factories import STAFF_PASSWORD, cccd
from web.extensions import db

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

T = TypeVar("T")


def need_browser() -> None:
    """Skip (fail under CI=true) unless browser tests are switched on and Chromium is there."""
    need(
        os.environ.get("XEPHANG_TEST_BROWSER") == "1",
        "browser tests are off: set XEPHANG_TEST_BROWSER=1 (uses Debian's /usr/bin/chromium)",
    )
    need(
        Path(CHROMIUM).exists(),
        f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver",
    )


def seeded_app(tmp: Path, now: datetime, seed: Callable[[], T], **config: Any) -> tuple[Flask, T]:
    """An app on a fresh SQLite file in `tmp`, its clock stopped at `now`, seeded by `seed`.

    The gate runs first so that a switched-off run skips before any seeding work. CSRF stays
    on, as in production, because the browser posts the real forms. `seed` runs in an app
    context and its result is returned beside the app; it is committed here.
    """
    need_browser()
    app = _make_app(
        tmp,
        f"sqlite:///{tmp / 'browser.db'}",
        {"WTF_CSRF_ENABLED": True, "CLOCK": lambda: now, **config},
    )
    with app.app_context():
        db.create_all()
        index.invalidate()
        seeded = seed()
        db.session.commit()
        db.session.remove()
    return app, seeded


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` from a thread on a free local port; yields the base URL.

    On the way out the engine is disposed (the SQLite file's connections are closed) and
    the catalogue index, a process-wide cache, is dropped so the next module starts clean.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()
        index.invalidate()


@contextmanager
def launch() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright (no downloaded browser needed)."""
    # Imported here so that collecting the tests works without Playwright installed.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# Fixtures: a module binds them to module-level names (`browser, shots =
# browser_support.browser_fixture, browser_support.shots_fixture`) and pytest collects them
# there under the names given below. `browser` asks for the module's own `live`, so the
# gate and the server come first.


@pytest.fixture(scope="module", name="browser")
def browser_fixture(live) -> Iterator[Browser]:
    with launch() as chromium:
        yield chromium


@pytest.fixture(scope="module", name="shots")
def shots_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("XEPHANG_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# What Chromium reported blocked by the Content-Security-Policy since the last test began;
# tests/conftest.py fails the test that leaves anything here.
CSP_VIOLATIONS: list[str] = []


def watch_csp(context: BrowserContext) -> BrowserContext:
    """Record every Content-Security-Policy violation a page of `context` reports: Chromium
    logs each one to the console, and a listener on the DOM event catches the rest."""

    def on_console(message) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("csp-violation"):
            CSP_VIOLATIONS.append(f"{message.location.get('url', '')}: {message.text}")

    context.on("console", on_console)
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'csp-violation ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile))"
    )
    return context


def new_context(browser: Browser, base_url: str, viewport: dict[str, int], **options: Any):
    """A fresh context (own cookies, as a separate device) in Vietnamese, its CSP watched."""
    options.setdefault("locale", "vi-VN")
    return watch_csp(browser.new_context(viewport=viewport, base_url=base_url, **options))


def new_page(
    browser: Browser, base_url: str, viewport: dict[str, int], **options: Any
) -> tuple[BrowserContext, Page]:
    """A fresh context (see `new_context`) and its page."""
    context = new_context(browser, base_url, viewport, **options)
    return context, context.new_page()


def wait_until(page: Page, expression: str, timeout: float = 5.0) -> None:
    """Poll a JavaScript expression until it is true. Playwright's `wait_for_function` polls
    by `eval` inside the page, which the Content-Security-Policy forbids; `evaluate` goes
    through the DevTools protocol, outside the page's policy."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def expect(locator):
    """Playwright's auto-waiting assertions, imported lazily like the rest of Playwright."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def accessible(page: Page) -> None:
    """axe-core's WCAG 2.0/2.1 A and AA rules find nothing on the current page."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url="/vendor/axe-core/axe.min.js")
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
    ]
    assert not problems, f"{page.url}\n" + "\n".join(problems)


# ---------------------------------------------------------------- pages used by several modules


def fill_person(page: Page, n: int, **overrides: str) -> None:
    """The booking form's personal fields; `n` picks a distinct valid citizen ID."""
    values = {
        "#full_name": "Nguyễn Thị Mai",
        "#phone": "0912 345 678",
        "#citizen_id": cccd(n),
        "#email": "",
        **overrides,
    }
    for selector, value in values.items():
        page.fill(selector, value)


def bind_kiosk(page: Page, token: str) -> None:
    """Bind this browser context to a kiosk device, as a technician does once per machine."""
    page.goto(f"/kiosk/setup?token={token}")
    assert page.url.endswith("/kiosk/")


def sign_in(page: Page, username: str, password: str = STAFF_PASSWORD) -> None:
    """Sign in at the counter workstation and land on the counter choice."""
    page.goto("/counter/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/counter/")


def press(page: Page, key: str) -> None:
    """Press a shortcut that submits a form, and wait for the page that answers."""
    with page.expect_navigation():
        page.keyboard.press(key)
