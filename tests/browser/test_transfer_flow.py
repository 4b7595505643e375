"""転校 in the demo, as the two officers meet it: 渋谷区's school manager, after the second
factor, makes a pupil's package with the guardian's consent and is shown the code once;
新宿区's admin uploads the file with that code and the pupil arrives. axe finds nothing on
either form."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import screenshot, sign_in
from test_accessibility import _audit

from renkei.demo.world import demo_school_codes

pytestmark = pytest.mark.slow

SENDER, RECEIVER = "131130", "131041"


def test_a_pupil_moves_from_shibuya_to_shinjuku(page, demo_server, browser, tmp_path):
    base = demo_server.base_url
    school = demo_school_codes(SENDER)[0]
    (source_id,) = demo_server.query(
        f"SELECT i.source_id FROM m{SENDER}.edudata_studentidentity i "
        f"JOIN m{SENDER}.edudata_student s ON s.id = i.student_id "
        f"JOIN m{SENDER}.edudata_school sc ON sc.id = s.school_id "
        "WHERE sc.code = %s ORDER BY i.source_system, i.id LIMIT 1",
        [school],
    )[0]
    before = demo_server.query(f"SELECT count(*) FROM m{RECEIVER}.edudata_student")[0][0]

    sign_in(page, base, f"manager-{SENDER}", second_factor=True)
    page.goto(f"{base}/m/{SENDER}/manage/transfers/")
    assert not _audit(page, Axe())
    page.get_by_label("学校", exact=True).select_option(index=1)
    page.get_by_label("児童生徒の ID").fill(source_id)
    page.get_by_label("転出先の自治体コード").fill(RECEIVER)
    page.get_by_label("同意した保護者").fill("保護者 花子（母）")
    page.get_by_label("同意日").fill("2025-09-01")
    page.get_by_label("保護者の同意書を確認しました").check()
    with page.expect_navigation():
        page.get_by_role("button", name="転校パッケージを作る").click()
    code = page.get_by_test_id("transfer-code").inner_text().strip()
    assert len(code) == 24, page.content()
    screenshot(page, "transfer-out-code")
    with page.expect_download() as download:
        page.get_by_role("link", name="ダウンロード").click()
    package = tmp_path / "transfer.zip"
    download.value.save_as(package)

    receiver = browser.new_page(locale="ja-JP")
    try:
        sign_in(receiver, base, f"admin-{RECEIVER}", second_factor=True)
        receiver.goto(f"{base}/m/{RECEIVER}/manage/transfers/in/")
        assert not _audit(receiver, Axe())
        receiver.get_by_label("転校パッケージ").set_input_files(str(package))
        receiver.get_by_label("転校コード").fill(code)
        receiver.get_by_label("転入先の学校").select_option(index=1)
        with receiver.expect_navigation():
            receiver.get_by_role("button", name="取り込む").click()
        status = receiver.get_by_test_id("transfer-in-status").inner_text()
        assert "取り込みました" in status, status
        screenshot(receiver, "transfer-in-done")
    finally:
        receiver.close()
    after = demo_server.query(f"SELECT count(*) FROM m{RECEIVER}.edudata_student")[0][0]
    assert after == before + 1
