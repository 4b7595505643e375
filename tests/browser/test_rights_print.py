"""A guardian's 開示請求 answered in the browser: the tenant admin, past the second factor, finds
a pupil of the demo, receives the request, opens the document and prints it to an A4 PDF
(Chromium's print engine, the one a municipality officer's browser uses)."""

from __future__ import annotations

import pytest
from browser_support import SCREENSHOTS, screenshot, sign_in

pytestmark = pytest.mark.slow

CODE = "131130"
ADMIN = f"admin-{CODE}"


def test_the_disclosure_prints_to_an_a4_pdf(page, demo_server):
    server = demo_server
    [(pupil,)] = server.query(
        f"SELECT s.id FROM m{CODE}.edudata_student s "
        f"JOIN m{CODE}.edudata_attendanceday a ON a.student_id = s.id "
        "GROUP BY s.id ORDER BY s.id LIMIT 1"
    )
    sign_in(page, server.base_url, ADMIN, second_factor=True)

    # the admin opens the pupil's page and receives a 開示請求
    page.goto(f"{server.base_url}/m/{CODE}/manage/rights/pupils/{pupil}/")
    screenshot(page, "rights-pupil")
    page.select_option("#id_receive-kind", "disclosure")
    with page.expect_navigation():
        page.locator("#receive button[type=submit]").click()
    assert "/manage/rights/requests/" in page.url, page.url
    screenshot(page, "rights-request")

    # the document: headings per kind, the attendance table with its labels
    with page.expect_navigation():
        page.get_by_test_id("disclosure-html").click()
    assert page.locator("h1").inner_text() == "保有個人情報の開示"
    attendance = page.locator("section[data-model='edudata.attendanceday']")
    assert attendance.locator("th").all_inner_texts()[:3] == ["ID", "日付", "出欠"]
    assert attendance.locator("tbody tr").count() > 0
    screenshot(page, "rights-disclosure")
    page.screenshot(path=str(SCREENSHOTS / "rights-disclosure-top.png"))  # the first screen

    # printed: an A4 PDF of several pages (the print button hidden by the print CSS)
    page.emulate_media(media="print")
    assert not page.locator(".print-button").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pdf = page.pdf(path=str(SCREENSHOTS / "rights-disclosure.pdf"), prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page>") + pdf.count(b"/Type/Page") > 0
    assert b"/MediaBox [0 0 595" in pdf or b"/MediaBox [0 0 594" in pdf  # A4 in points
