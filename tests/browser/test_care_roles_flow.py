"""養護教諭 and スクールカウンセラー in the demo, as they meet it: the nurse finds a pupil
through the school's classes and reads the health records after the second factor, and
is refused the class board; the manager sees who the pupil with the school's records is
assigned to; the SC lists only that pupil and reads their records. axe finds nothing on
the new pages."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import screenshot, sign_in
from test_accessibility import _audit

pytestmark = pytest.mark.slow

CODE = "131130"


def test_the_nurse_finds_a_pupil_and_reads_health_records(page, demo_server):
    base = demo_server.base_url
    sign_in(page, base, f"nurse-{CODE}", second_factor=True)
    page.goto(f"{base}/m/{CODE}/")
    menu = page.locator("nav.nav a")
    assert "保健" in menu.all_inner_texts() and "学級ボード" not in menu.all_inner_texts()
    with page.expect_navigation():
        menu.filter(has_text="保健").first.click()
    with page.expect_navigation():
        page.get_by_test_id("health-homeroom").first.click()
    pupils = page.get_by_test_id("health-pupils").locator("tbody a")
    assert pupils.count() > 0
    screenshot(page, "nurse-health-class", tablet=True)
    with page.expect_navigation():
        pupils.first.click()
    assert page.get_by_test_id("health-observations").is_visible()
    assert "症状" in page.get_by_test_id("health-observations").inner_text()  # after step-up
    problems = _audit(page, Axe())
    assert not problems, "\n".join(problems)
    screenshot(page, "nurse-health-pupil", tablet=True)
    assert page.goto(f"{base}/m/{CODE}/boards/classes/").status == 403


def test_the_manager_assigns_and_the_sc_reads_only_that_pupil(page, demo_server, browser):
    base = demo_server.base_url
    ((pupil,),) = demo_server.query(f"SELECT student_id FROM m{CODE}.edudata_pupilassignment")
    sign_in(page, base, f"manager-{CODE}", second_factor=True)
    page.goto(f"{base}/m/{CODE}/boards/students/{pupil}/")
    assignments = page.get_by_test_id("assignments")
    assert f"sc-{CODE}" in assignments.inner_text()
    assignments.scroll_into_view_if_needed()
    screenshot(page, "manager-assignments")

    sc = browser.new_page(locale="ja-JP")
    try:
        sign_in(sc, base, f"sc-{CODE}", second_factor=True)
        sc.goto(f"{base}/m/{CODE}/boards/assigned/")
        listed = sc.get_by_test_id("assigned-pupils").locator("tbody a")
        assert listed.count() == 1
        screenshot(sc, "sc-assigned-list")
        with sc.expect_navigation():
            listed.first.click()
        assert "卵アレルギー" in sc.get_by_test_id("care-notes").inner_text()
        assert sc.get_by_test_id("care-cases").locator("article").count() == 1
        problems = _audit(sc, Axe())
        assert not problems, "\n".join(problems)
        screenshot(sc, "sc-assigned-pupil", tablet=True)
        assert sc.goto(f"{base}/m/{CODE}/boards/students/{pupil}/").status == 403
    finally:
        sc.close()
