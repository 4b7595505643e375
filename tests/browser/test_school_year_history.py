"""History that stays true, in the browser: the prefecture's tables of a year are released,
a late opt-out revises the year (改訂履歴 on the prefecture page), the board then closes the
year in 管理 › 年度の締め, and the prefecture page says the year is closed for that
municipality. Screenshots: school-year-closing.png, prefecture-revisions.png."""

from __future__ import annotations

import pytest
from browser_support import DESKTOP, screenshot, sign_in

pytestmark = pytest.mark.slow

CODE = "131130"
YEAR = "2025"


def test_a_revision_then_a_closing_as_the_prefecture_sees_them(browser, demo_server):
    base = demo_server.base_url
    analyst = browser.new_context(
        viewport=DESKTOP, locale="ja-JP", timezone_id="Asia/Tokyo"
    ).new_page()
    admin = browser.new_context(
        viewport=DESKTOP, locale="ja-JP", timezone_id="Asia/Tokyo"
    ).new_page()
    admin.on("dialog", lambda dialog: dialog.accept())  # the confirmation of data-confirm
    # given the prefecture's analyst has seen the year's tables (they are released)
    sign_in(analyst, base, "pref-13")
    analyst.goto(f"{base}/prefecture/?metric=long_term_absence&year={YEAR}")
    assert analyst.locator('[data-testid="revisions"]').count() == 1
    # when 渋谷区 records a late opt-out for one of its pupils
    school_id, source_id = demo_server.query(
        f"SELECT st.school_id, i.source_id FROM m{CODE}.edudata_studentidentity i "
        f"JOIN m{CODE}.edudata_student st ON st.id = i.student_id "
        "WHERE st.opted_out_at IS NULL ORDER BY st.id LIMIT 1"
    )[0]
    sign_in(admin, base, f"admin-{CODE}")
    admin.goto(f"{base}/m/{CODE}/manage/opt-outs/")
    admin.select_option("#id_school", str(school_id))
    admin.fill("#id_source_id", source_id)
    with admin.expect_navigation():
        admin.get_by_role("button", name="分析除外を記録").click()
    assert "分析除外の申出を記録しました" in admin.locator("main").inner_text()
    # then the prefecture page lists the revision of 渋谷区's year
    analyst.goto(f"{base}/prefecture/?metric=long_term_absence&year={YEAR}")
    history = analyst.locator('[data-testid="revisions"]')
    assert "分析除外の申出" in history.inner_text() and "渋谷区" in history.inner_text()
    # when the board closes the year, confirming
    admin.goto(f"{base}/m/{CODE}/manage/school-years/")
    row = admin.locator('[data-testid="open-years"] tr', has_text=f"{YEAR}年度")
    row.locator("input[name=confirm]").check()
    screenshot(admin, "school-year-closing-before")
    with admin.expect_navigation():
        row.get_by_role("button", name=f"{YEAR}年度を締める").click()
    assert f"{YEAR}年度を締めました" in admin.locator("main").inner_text()
    assert f"{YEAR}年度" in admin.locator('[data-testid="closed-years"]').inner_text()
    screenshot(admin, "school-year-closing", tablet=True)
    # then the prefecture page says 渋谷区 closed the year; the revision stays listed
    analyst.goto(f"{base}/prefecture/?metric=long_term_absence&year={YEAR}")
    closing = analyst.locator('[data-testid="closing"] tr', has_text="渋谷区")
    assert "締め済み" in closing.inner_text()
    assert "分析除外の申出" in analyst.locator('[data-testid="revisions"]').inner_text()
    analyst.locator('[data-testid="revisions"]').scroll_into_view_if_needed()
    screenshot(analyst, "prefecture-revisions", tablet=True)
