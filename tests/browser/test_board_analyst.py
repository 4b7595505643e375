"""The board of education's analyst: aggregates only. The long-term absence dashboard and a
学校カルテ render; no page reachable from their home names a pupil; the boards answer 403."""

from __future__ import annotations

from collections import deque
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from browser_support import full_html, names_in, pupil_names, screenshot, sign_in, wait_widgets

pytestmark = pytest.mark.slow

CODE = "131130"
ANALYST = f"board-{CODE}"
MAX_PAGES = 40
# Downloads (.csv) are not pages: the survey table the analyst can download holds counts only
# (tests/edudata/test_absence.py reads it).
SKIP = ("/accounts/logout", "/i18n/", "/static/", "graphql", "/admin/", ".csv")


def widgets_ready(page, tags: tuple[str, ...]) -> None:
    """Every element of these tags settled and none in error (with the alert's text)."""
    selector = ", ".join(tags)
    count = page.locator(selector).count()
    assert count, f"no {selector} at {page.url}"
    wait_widgets(page, count, selector=selector)
    for tag in tags:
        widgets = page.locator(tag)
        for i in range(widgets.count()):
            widget = widgets.nth(i)
            state = widget.get_attribute("data-state")
            assert state == "ready", (
                f"{tag} #{i} at {page.url} is {state}: "
                f"{widget.locator('[role=alert]').all_inner_texts()}"
            )


def test_long_term_absence_dashboard_and_school_karte(page, demo_server):
    server = demo_server
    sign_in(page, server.base_url, ANALYST)
    page.goto(f"{server.base_url}/m/{CODE}/")

    # when the analyst opens 長期欠席 from the menu
    with page.expect_navigation():
        page.locator("nav.nav a").filter(has_text="長期欠席").first.click()

    # then the dashboard's charts and tables are ready, charts drawn on a canvas
    assert "/analysis/long-term-absence/" in page.url, page.url
    assert page.locator("renkei-chart").count() and page.locator("renkei-table").count(), (
        "the dashboard has no renkei-chart or no renkei-table"
    )
    widgets_ready(page, ("renkei-chart", "renkei-table"))
    charts = page.locator("renkei-chart")
    for i in range(charts.count()):
        assert charts.nth(i).locator("canvas").count(), f"renkei-chart #{i} has no canvas"
        assert (charts.nth(i).get_attribute("data-suppressed-count") or "").isdigit()
    # and 不登校 is there, with 長期欠席 and 不登校 of three school years side by side
    assert page.locator("renkei-chart[metric=futoko]").count() == 1
    assert page.locator("renkei-table[metric=futoko]").count() == 1
    years = page.locator("[data-testid=year-over-year] thead th[data-year]")
    assert years.count() == 3
    rows = page.locator("[data-testid=year-over-year] tbody tr")
    assert [rows.nth(i).get_attribute("data-metric") for i in range(rows.count())] == [
        "long_term_absence",
        "futoko",
    ]
    screenshot(page, "board-long-term-absence", tablet=True)

    # when they open 学校カルテ and pick a school
    with page.expect_navigation():
        page.locator("nav.nav a").filter(has_text="学校カルテ").first.click()
    assert "/analysis/schools/" in page.url, page.url
    screenshot(page, "board-school-list")
    karte = page.locator(f"main a[href*='/m/{CODE}/analysis/schools/']")
    assert karte.count(), "the school list links to no 学校カルテ"
    with page.expect_navigation():
        karte.first.click()

    # then the school's karte renders its widgets
    assert page.url.rstrip("/").split("/")[-1].startswith(("B1", "C1")), page.url
    widgets_ready(page, ("renkei-chart, renkei-table",))
    screenshot(page, "board-school-karte", tablet=True)

    # when they switch the language to English with the header's switcher
    page.goto(f"{server.base_url}/m/{CODE}/analysis/long-term-absence/")
    page.locator("#language-select").select_option("en")
    with page.expect_navigation():
        page.locator("form.lang button[type=submit]").click()

    # then the widgets label the cells in English too (categories, grades, totals)
    assert page.locator("html").get_attribute("lang") == "en"
    widgets_ready(page, ("renkei-chart", "renkei-table"))
    tables = " ".join(page.locator("renkei-table").all_text_contents())
    assert "Long-term absence (30+ days)" in tables and "Total" in tables, tables[:300]
    assert "長期欠席（" not in tables and "小学校" not in tables, tables[:300]
    screenshot(page, "board-long-term-absence-en")


def test_no_pupil_name_reachable_and_boards_refused(page, demo_server):
    server = demo_server
    names = pupil_names(server, CODE)
    assert len(names) > 100, f"only {len(names)} named pupils in the demo data"
    sign_in(page, server.base_url, ANALYST)
    start = f"{server.base_url}/m/{CODE}/"
    origin = urlparse(server.base_url).netloc

    # when the analyst visits every page reachable from their home page
    queue, seen, visited = deque([start]), {start}, []
    leaks, broken, widget_errors = [], [], []
    while queue and len(visited) < MAX_PAGES:
        url = queue.popleft()
        response = page.goto(url)
        visited.append(url)
        if response is None or response.status >= 400:
            broken.append((url, response.status if response else None))
        try:
            states = wait_widgets(page, 0, timeout=30)
        except AssertionError as e:
            widget_errors.append(str(e))
            states = []
        widget_errors += [
            f"{url}: {s['tag']} {s['state']}" for s in states if s["state"] == "error"
        ]
        found = names_in(full_html(page) + "\n" + page.inner_text("body"), names)
        if found:
            leaks.append((url, sorted(found.values())[:5]))
        for href in page.locator("a[href]").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        ):
            target = urldefrag(urljoin(page.url, href))[0]
            parsed = urlparse(target)
            # Other municipalities (the landing page lists them) answer 403: not followed.
            if (
                parsed.scheme not in ("http", "https")
                or parsed.netloc != origin
                or not (parsed.path.startswith(f"/m/{CODE}/") or parsed.path == "/")
                or any(s in parsed.path for s in SKIP)
                or target in seen
            ):
                continue
            seen.add(target)
            queue.append(target)
    page.goto(start)
    screenshot(page, "board-crawl-home")

    # then no page names a pupil, and the analyst's own pages all work
    print(
        f"\n[browser] crawled {len(visited)} pages as {ANALYST}: "
        + ", ".join(
            urlparse(u).path + (f"?{urlparse(u).query}" if urlparse(u).query else "")
            for u in visited
        )
    )
    assert len(visited) >= 4, f"only {visited} reachable from the home page"
    assert not leaks, f"pupil names shown to the board analyst: {leaks}"
    assert not broken, f"links from the analyst's pages that fail: {broken}"
    assert not widget_errors, f"widgets in error on the analyst's pages: {widget_errors}"

    # when they type the URL of a class board and of a student board
    homeroom = server.query(f"SELECT id FROM m{CODE}.edudata_homeroom ORDER BY id LIMIT 1")[0][0]
    pupil = min(names)
    for path in (f"/m/{CODE}/boards/classes/{homeroom}/", f"/m/{CODE}/boards/students/{pupil}/"):
        response = page.goto(server.base_url + path)

        # then 403 with a message, and still no name
        assert response.status == 403, (path, response.status)
        assert page.locator("[role=alert]").count(), f"the 403 at {path} has no message"
        assert not names_in(full_html(page), names), f"{path} names a pupil"
    screenshot(page, "board-student-board-403")
