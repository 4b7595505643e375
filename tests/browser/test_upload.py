"""管理 › 取り込み › ファイルを取り込む, as the municipality's IT officer uses it: upload the
C4th export (over a connection that drops once), watch the import reach 完了 without reloading, read the error report of a file
with a broken row, and cancel an import that waits behind another."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
import pytest
from browser_support import screenshot, sign_in
from cli_support import _server

pytestmark = pytest.mark.slow

CODE = "131130"
ADMIN = f"admin-{CODE}"


def demo_export(demo_server) -> list[Path]:
    """The C4th files `renkei demo` imported: uploading them again changes no data."""
    home = Path(demo_server.env["RENKEI_HOME"])
    return sorted((home / "demo-data" / CODE / "c4th").glob("*.csv"))


def start_upload(page, base_url: str, files: list[Path]) -> str:
    page.goto(f"{base_url}/m/{CODE}/manage/imports/")
    page.get_by_test_id("new-import").click()
    page.wait_for_load_state()  # the page's scripts list the files once they are chosen
    page.select_option("#id_connector", "c4th")
    page.set_input_files("#id_files", [str(f) for f in files])
    for f in files:  # listed with their sizes before anything is sent
        assert f.name in page.locator("[data-file-list]").inner_text()
    with page.expect_navigation():
        page.get_by_role("button", name="取り込みを始める").click()
    assert "/manage/imports/" in page.url and "受け付けました" in page.content()
    return page.url


def wait_done(page) -> None:
    page.wait_for_selector('[data-phase="done"][aria-current="step"]', timeout=60_000)


@contextlib.contextmanager
def imports_held(demo_server):
    """Hold 渋谷区's write lock as a running import would: queued imports wait."""
    with psycopg.connect(dbname=demo_server.dbname, autocommit=True, **_server()) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [f"renkei-import:m{CODE}"])
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [f"renkei-import:m{CODE}"])


def test_upload_progress_errors_and_cancel(page, demo_server, tmp_path):
    base = demo_server.base_url
    sign_in(page, base, ADMIN)
    files = demo_export(demo_server)
    # the export, uploaded resumably (tus) over a connection that drops once: the page asks
    # the server how much arrived and goes on; then it follows the import to 完了 by itself
    sent: list[str] = []

    def drop_the_first_part(route):
        sent.append(route.request.method)
        if sent.count("PATCH") == 1 and route.request.method == "PATCH":
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/manage/imports/uploads/**", drop_the_first_part)
    start_upload(page, base, files)
    page.unroute("**/manage/imports/uploads/**")
    assert sent.count("POST") == len(files) and "HEAD" in sent, sent
    wait_done(page)
    assert "除外した行はありません" in page.content()
    screenshot(page, "upload-done")

    # a file with a broken date: imported except that row, which the report names
    attendance = next(f for f in files if f.name == "attendance.csv")
    raw = attendance.read_bytes()
    second_line = raw.index(b"\n") + 1
    broken = tmp_path / "attendance.csv"
    broken.write_bytes(raw[:second_line] + raw[second_line:].replace(b"R7.", b"R7.13.", 1))
    start_upload(page, base, [broken])
    wait_done(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="除外した行の一覧を CSV でダウンロード").click()
    report = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert "attendance.csv,2," in report, report[:500]

    # an import queued behind a running one is cancelled before it starts
    with imports_held(demo_server):
        start_upload(page, base, [broken])
        assert page.locator("[data-queued]").is_visible()
        page.get_by_test_id("cancel-import").click()
        page.wait_for_load_state()
        assert "取り消しました" in page.content()
        screenshot(page, "upload-cancelled")
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    ((status,),) = demo_server.query(
        f"SELECT status FROM m{CODE}.edudata_importrun WHERE id = %s", [run_id]
    )
    assert status == "cancelled"
