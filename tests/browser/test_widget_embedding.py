"""A municipality embeds a chart on its own site: the tenant admin issues a widget token in
the UI; the snippet works on the allowed origin and is refused on any other."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from browser_support import screenshot, sign_in, wait_widgets

pytestmark = pytest.mark.slow

CODE = "131130"
ADMIN = f"admin-{CODE}"


class Site:
    """A stand-in for a website: serves one page at /, published once the port is known."""

    def __init__(self) -> None:
        self.body = b""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(site.body)))
                self.end_headers()
                self.wfile.write(site.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, snippet: str) -> None:
        self.body = (
            "<!doctype html><html lang='ja'><head><meta charset='utf-8'>"
            "<title>区のお知らせ</title></head><body><h1>区のお知らせ</h1>"
            f"{snippet}</body></html>"
        ).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def two_sites():
    """The municipality's site (allowed) and some other site."""
    allowed, other = Site(), Site()
    yield allowed, other
    allowed.close()
    other.close()


def issue_widget_token(page, base_url: str, origin: str, *, snippet: str = "widget-snippet") -> str:
    """Through the admin page, as the administrator would; returns the snippet shown
    (`widget-snippet`: script + element, `widget-iframe-snippet`: the iframe)."""
    page.goto(f"{base_url}/m/{CODE}/manage/widgets/")
    form = page.locator("main form").filter(has=page.locator("textarea[name=allowed_origins]"))
    assert form.count(), "the widgets page has no form with an allowed_origins textarea"
    form.locator("input[name=name]").fill("区のウェブサイト（ブラウザテスト）")
    metrics = form.locator("input[name=metrics]")
    assert metrics.count(), "the form offers no metric checkbox"
    values = metrics.evaluate_all("els => els.map(e => e.value)")
    chosen = "attendance_rate" if "attendance_rate" in values else values[0]
    form.locator(f"input[name=metrics][value='{chosen}']").check()
    form.locator("textarea[name=allowed_origins]").fill(origin)
    days = form.locator("input[name=expires_in_days]")
    if days.count():
        days.fill("30")
    screenshot(page, "admin-widget-form")
    with page.expect_navigation():
        form.locator("button[type=submit], input[type=submit]").first.click()
    snippet_box = page.locator(f"textarea#{snippet}")
    assert snippet_box.count(), (
        f"no snippet after submitting; messages: {page.locator('[role=alert]').all_inner_texts()}"
        f" {page.locator('.errorlist').all_inner_texts()}"
    )
    screenshot(page, "admin-widget-issued", tablet=True)
    return snippet_box.input_value()


def settle(page, timeout: float = 30.0) -> str:
    wait_widgets(page, 1, selector="renkei-chart", timeout=timeout)
    return page.locator("renkei-chart").first.get_attribute("data-state")


def test_widget_on_allowed_and_other_origin(page, browser, demo_server, two_sites):
    server = demo_server
    allowed, other = two_sites
    sign_in(page, server.base_url, ADMIN)

    # given a widget token issued in the UI for the municipality's site
    snippet = issue_widget_token(page, server.base_url, allowed.origin)
    assert "<script" in snippet and "<renkei-chart" in snippet, snippet
    assert server.base_url in snippet, f"the snippet does not point at the server: {snippet}"
    allowed.publish(snippet)
    other.publish(snippet)

    # when the allowed site shows the page (a fresh browser, no session of the platform)
    visitor = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    uncaught = []
    try:
        site_page = visitor.new_page()
        site_page.on("pageerror", lambda e: uncaught.append(f"{e.name}: {e.message}"))
        site_page.goto(allowed.origin + "/")

        # then the chart is drawn
        state = settle(site_page)
        chart = site_page.locator("renkei-chart").first
        assert state == "ready", (state, chart.locator("[role=alert]").all_inner_texts())
        assert chart.locator("canvas").count(), "no canvas on the allowed site"
        released = chart.locator("td:not([data-suppressed])").all_text_contents()
        assert any("%" in text for text in released), f"no released value drawn: {released}"
        screenshot(site_page, "widget-allowed-origin", tablet=True)

        # when another site copies the same snippet
        site_page.goto(other.origin + "/")

        # then the widget refuses, says so, and draws nothing
        state = settle(site_page)
        chart = site_page.locator("renkei-chart").first
        assert state == "error", state
        assert chart.locator("[role=alert]").count(), "no [role=alert] on the other site"
        assert chart.locator("canvas").count() == 0, "a canvas was drawn on the other site"
        screenshot(site_page, "widget-other-origin")
    finally:
        visitor.close()
    assert not uncaught, f"uncaught errors in the embedding pages: {uncaught}"

    # and the API's preflight: the allowed origin is approved, the other refused
    endpoint = f"{server.base_url}/m/{CODE}/graphql"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    ok = requests.options(endpoint, headers={**preflight, "Origin": allowed.origin}, timeout=10)
    assert ok.status_code in (200, 204), ok.status_code
    assert ok.headers.get("Access-Control-Allow-Origin") == allowed.origin, dict(ok.headers)
    refused = requests.options(endpoint, headers={**preflight, "Origin": other.origin}, timeout=10)
    assert refused.status_code == 403, (refused.status_code, refused.text[:300])
    assert "Access-Control-Allow-Origin" not in refused.headers, dict(refused.headers)


def test_iframe_widget_is_framed_only_by_the_allowed_origin(page, browser, demo_server, two_sites):
    allowed, other = two_sites
    sign_in(page, demo_server.base_url, ADMIN)
    snippet = issue_widget_token(
        page, demo_server.base_url, allowed.origin, snippet="widget-iframe-snippet"
    )
    assert "<iframe" in snippet and "#token=" in snippet, snippet
    allowed.publish(snippet)
    other.publish(snippet)
    visitor = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    try:
        site_page = visitor.new_page()
        site_page.goto(allowed.origin + "/")
        frame = site_page.frame_locator("iframe")
        frame.locator("renkei-chart[data-state=ready]").wait_for(timeout=30000)
        assert frame.locator("renkei-chart canvas").count()
        screenshot(site_page, "widget-iframe-allowed-origin")

        # frame-ancestors: the browser itself refuses to show the frame on another site
        site_page.goto(other.origin + "/")
        site_page.wait_for_load_state("load")
        site_page.wait_for_timeout(1000)
        embedded = [f for f in site_page.frames if f != site_page.main_frame]
        assert embedded, "no iframe on the other site"
        assert all(f.locator("renkei-chart").count() == 0 for f in embedded), (
            "the widget frame was shown on a site its token does not list"
        )
        screenshot(site_page, "widget-iframe-other-origin")
    finally:
        visitor.close()
