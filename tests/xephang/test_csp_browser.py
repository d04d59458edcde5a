"""The Content-Security-Policy as Chromium enforces it, and the watch every browser test
keeps on it (tests/browser_support.py `watch_csp`, checked after each test by conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests import browser_support
from tests.browser_support import new_page, seeded_app, serve

pytestmark = pytest.mark.browser
browser = browser_support.browser_fixture

PROBE = (
    "<!doctype html><html lang='vi'><title>probe</title>"
    "<p id='styled' style='color: rgb(255, 0, 0)'>x</p>"
    "<script>window.inlineRan = true;</script></html>"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[str]:
    app, _ = seeded_app(
        tmp_path_factory.mktemp("csp"), datetime(2026, 12, 7, 1, 0, tzinfo=UTC), lambda: None
    )
    app.add_url_rule("/csp-probe", "csp_probe", lambda: PROBE)
    with serve(app) as url:
        yield url


def test_inline_code_is_blocked_and_every_violation_is_caught(browser, live):
    context, page = new_page(browser, live, {"width": 390, "height": 844})
    page.goto("/csp-probe")
    page.wait_for_load_state("load")
    assert page.evaluate("window.inlineRan === undefined")  # the inline script never ran
    colour = page.evaluate("getComputedStyle(document.getElementById('styled')).color")
    assert colour != "rgb(255, 0, 0)"  # nor did the inline style apply
    seen = list(browser_support.CSP_VIOLATIONS)
    context.close()
    assert any("script-src" in v for v in seen), seen
    assert any("style-src" in v for v in seen), seen
    browser_support.CSP_VIOLATIONS.clear()  # expected here; any other test fails on one


def test_the_real_pages_need_nothing_the_policy_forbids(browser, live):
    context, page = new_page(browser, live, {"width": 390, "height": 844})
    for path in ("/", "/manage", "/counter/login", "/api/v1/docs"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    context.close()
    assert browser_support.CSP_VIOLATIONS == []
