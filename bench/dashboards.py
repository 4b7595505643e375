"""The teacher's class board in a real browser: page load until the board is drawn, against
the board's own GraphQL request measured in the same page and run.

    .venv/bin/python bench/dashboards.py [--runs 30]

Runs `renkei demo --no-serve` into a scratch database (or reuses DATABASE_URL / RENKEI_HOME
when they point at a loaded demo), serves it with `renkei serve`, signs in as teacher-131130
in Debian's chromium (/usr/bin/chromium) and, for a homeroom of ~33 pupils, measures ``--runs``
times:

* page: navigation start → ``<renkei-class-board data-state="ready">``, timed inside the page
  (HTML, the widget bundle from cache, the GraphQL request, rendering 33 rows × 14 days and
  the alert timeline);
* baseline: the same GraphQL request sent with ``fetch`` from that page (network + server).

Prints p50/p95 of each and their ratio (what the page adds over its data). Machines here are
noisy: compare ratios, not milliseconds.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RENKEI = [sys.executable, "-m", "renkei.site.cli"]
CHROMIUM = "/usr/bin/chromium"
CLASS_BOARD_QUERY = """query($id: ID!, $asOf: Date) { classBoard(homeroomId: $id, asOf: $asOf) {
  asOf homeroom { id name grade schoolYear school { name } } rules { rule threshold description }
  pupils { attendanceNumber pupil { id name nameKana optedOut }
    absenceSummary { asOf thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
    alerts { rule days threshold firstDate lastDate message } alertsExcludedReason
    recentAttendance(days: 14) { date status } } } }"""


# Milliseconds from the start of navigation until the board is drawn, taken inside the page
# (a round trip to Playwright would add its own latency).
READY_AT = """
new MutationObserver(() => {
  const board = document.querySelector("renkei-class-board");
  if (board && board.dataset.state === "ready" && window.__readyAt === undefined) {
    window.__readyAt = performance.now();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [*RENKEI, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return server, base
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("renkei serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    from django_otp.oath import totp  # noqa: F401 - fail early when the venv is wrong
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if "DATABASE_URL" not in env:
        env["RENKEI_HOME"] = env.get("RENKEI_HOME") or tempfile.mkdtemp(prefix="renkei-bench-")
    subprocess.run(
        [*RENKEI, "demo", "--no-serve"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    server, base = serve(env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
            page.add_init_script(READY_AT)
            page.goto(f"{base}/m/131130/accounts/login/")
            page.fill("#id_username", "teacher-131130")
            page.fill("#id_password", "renkei-demo")
            page.click("main button[type=submit]")
            page.goto(f"{base}/m/131130/boards/classes/")
            url = base + page.locator("a[data-testid=homeroom-link]").first.get_attribute("href")
            homeroom = url.split("/boards/classes/")[1].split("/")[0]
            as_of = url.split("as_of=")[1] if "as_of=" in url else None
            pages, apis = [], []
            for i in range(args.runs + 3):  # 3 warm-up runs
                page.goto(url)
                page.wait_for_selector("renkei-class-board[data-state=ready]", timeout=60000)
                page_ms = page.evaluate("window.__readyAt")
                api_ms = page.evaluate(
                    """async ([query, variables]) => {
                  const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
                  const t0 = performance.now();
                  const r = await fetch('/m/131130/graphql', {method: 'POST',
                    credentials: 'same-origin', body: JSON.stringify({query, variables}),
                    headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf}});
                  const body = await r.json();
                  if (body.errors) throw new Error(body.errors[0].message);
                  return performance.now() - t0;
                }""",
                    [CLASS_BOARD_QUERY, {"id": homeroom, "asOf": as_of}],
                )
                if i >= 3:
                    pages.append(page_ms)
                    apis.append(api_ms)
            pupils = page.locator("[data-testid=class-pupils] tbody tr").count()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"class board, {pupils} pupils, {args.runs} warm runs (chromium {CHROMIUM})")
    for name, values in (("page until drawn", pages), ("its GraphQL request", apis)):
        print(
            f"  {name:<22} p50 {statistics.median(values):7.1f} ms   "
            f"p95 {percentile(values, 95):7.1f} ms"
        )
    print(
        f"  ratio page / request   p50 {statistics.median(pages) / statistics.median(apis):.2f}"
        f"   p95 {percentile(pages, 95) / percentile(apis, 95):.2f}"
    )


if __name__ == "__main__":
    main()
