"""長期欠席の理由 in the demo, as its users meet it: a teacher, after the second factor, sees
the school's pupils absent 30 days or more and records one as 不登校; the board of
education downloads the survey's table and finds that pupil counted; axe finds nothing on
the page."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import screenshot, sign_in
from test_accessibility import _audit

pytestmark = pytest.mark.slow

CODE = "131130"


def test_a_teacher_records_futoko_and_the_board_counts_it(page, demo_server, browser):
    base = demo_server.base_url
    sign_in(page, base, f"teacher-{CODE}", second_factor=True)
    page.goto(f"{base}/m/{CODE}/")
    page.get_by_role("link", name="長期欠席の理由").first.click()
    rows = page.get_by_test_id("long-absence")
    assert rows.count() > 0, "the demo's school has no pupil absent 30 days or more"
    problems = _audit(page, Axe())
    assert not problems, "\n".join(problems)
    first = rows.first
    first.get_by_label("長期欠席の理由").select_option(label="不登校")
    with page.expect_navigation():
        first.get_by_role("button").click()
    assert "記録しました" in page.content()
    assert "不登校 — teacher-131130" in page.get_by_test_id("long-absence").first.inner_text()
    screenshot(page, "absence-classification", tablet=True)

    board = browser.new_page(locale="ja-JP")
    try:
        sign_in(board, base, f"board-{CODE}")
        board.goto(f"{base}/m/{CODE}/analysis/long-term-absence/")
        with board.expect_download() as download:
            board.get_by_test_id("absence-survey-csv").click()
        text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    finally:
        board.close()
    table = list(csv.DictReader(io.StringIO(text)))
    assert sum(int(row["不登校"]) for row in table) >= 1, text
    assert sum(int(row["長期欠席者数（計）"]) for row in table) >= rows.count()


def test_the_pupil_board_shows_the_schools_records_after_step_up(page, demo_server):
    base = demo_server.base_url
    sign_in(page, base, f"teacher-{CODE}", second_factor=True)
    page.goto(f"{base}/m/{CODE}/boards/long-term-absence/")
    # the demo's teacher wrote records for the school's first long-term absentee
    page.get_by_test_id("long-absence").first.get_by_role("link").click()
    # 共有配慮事項 first, above the board; everything in the records section below it
    assert "卵アレルギー" in page.get_by_test_id("considerations").inner_text()
    records = page.get_by_test_id("staff-records")
    assert "卵アレルギー" in records.inner_text()
    assert "保護者と面談" in page.get_by_test_id("support-case").first.inner_text()
    records.get_by_test_id("add-note").locator("summary").click()
    records.get_by_label("内容", exact=True).fill("今日は 3 時間目から登校した。")
    with page.expect_navigation():
        records.get_by_role("button", name="記入する", exact=True).click()
    assert "今日は 3 時間目から登校した。" in page.get_by_test_id("staff-notes").inner_text()
    problems = _audit(page, Axe())
    assert not problems, "\n".join(problems)
    screenshot(page, "pupil-board-records", tablet=True)


def test_the_class_board_news_lists_low_moods_and_the_pupil_board_the_check_ins(page, demo_server):
    base = demo_server.base_url
    sign_in(page, base, f"teacher-{CODE}", second_factor=True)
    page.goto(f"{base}/m/{CODE}/boards/classes/")
    page.locator("a[data-testid=homeroom-link]").first.click()
    news = page.get_by_test_id("class-news")
    assert "心の天気" in news.inner_text(), news.inner_text()
    screenshot(page, "class-board-news")
    with page.expect_navigation():
        news.locator("li", has_text="心の天気").first.get_by_role("link").click()
    page.wait_for_selector("renkei-student-board[data-state=ready]", timeout=30_000)
    board = page.locator("renkei-student-board").inner_text()
    assert "心の天気" in board and ("あめ" in board or "かみなり" in board), board[-2000:]
    problems = _audit(page, Axe())
    assert not problems, "\n".join(problems)
