"""Browser tests: a real `renkei` server with the demo data, driven by Playwright through
Debian's chromium (never a downloaded browser).

Session fixtures: `chromium_path` (skip — or fail on CI — when chromium is missing),
`demo_server` (scratch database + `renkei demo --no-serve` + `renkei serve`), `browser`.
Per test: `page` (a fresh context, ja-JP, 1280×900) whose uncaught page errors fail the test;
`page_errors` holds what it saw. Helpers live in browser_support.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from apt_support import apt_install
from browser_support import DESKTOP, launch_args

CHROMIUM = "/usr/bin/chromium"


PACKAGES = ["chromium", "fonts-noto-cjk"]  # the font: screenshots of Japanese pages


def _warn_without_japanese_fonts() -> None:
    """Screenshots of Japanese pages show empty boxes (tofu) without a Japanese font."""
    if shutil.which("fc-list") is None:
        return
    listed = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True).stdout
    if not listed.strip():
        warnings.warn(
            "no Japanese font installed: screenshots will show boxes instead of "
            "Japanese text (apt-get install fonts-noto-cjk)",
            stacklevel=2,
        )


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if os.path.exists(CHROMIUM):
        _warn_without_japanese_fonts()
        return CHROMIUM
    reason = apt_install(*PACKAGES)
    if os.path.exists(CHROMIUM):
        _warn_without_japanese_fonts()
        return CHROMIUM
    message = (
        f"Debian's chromium is not installed and could not be installed: "
        f"{reason or f'{CHROMIUM} is still missing after apt-get'}; "
        f"install with apt-get install chromium"
    )
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --- the demo server -----------------------------------------------------------------------


@dataclass
class DemoServer:
    base_url: str
    env: dict
    dbname: str
    build_seconds: float
    log: Path

    def query(self, sql: str, params=()) -> list[tuple]:
        from cli_support import query

        return query(self.dbname, sql, params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def demo_server(chromium_path, tmp_path_factory):
    """One server for the whole session: the demo build (8 municipalities through the real
    connectors) is slow."""
    from cli_support import renkei, scratch_database

    home = tmp_path_factory.mktemp("renkei-home")
    with scratch_database(home) as (env, dbname):
        env = {**env, "DEBUG": "false"}
        started = time.monotonic()
        renkei(env, "demo", "--no-serve")
        build_seconds = time.monotonic() - started
        print(f"\n[browser] renkei demo --no-serve took {build_seconds:.1f} s", flush=True)
        port = free_port()
        log = home / "server.log"
        with log.open("wb") as log_file:
            server = subprocess.Popen(
                [sys.executable, "-m", "renkei.site.cli", "serve", "--port", str(port)],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _healthy(f"{base_url}/healthz"):
                if server.poll() is not None or time.monotonic() > deadline:
                    output = log.read_text(errors="replace")
                    sys.stderr.write(f"renkei serve output:\n{output}\n")
                    pytest.fail(
                        f"renkei serve did not answer /healthz within 60 s "
                        f"(exit code {server.poll()}):\n{output[-4000:]}",
                        pytrace=False,
                    )
                time.sleep(0.3)
            yield DemoServer(
                base_url=base_url, env=env, dbname=dbname, build_seconds=build_seconds, log=log
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


# --- Playwright ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=launch_args())
        try:
            yield chromium
        finally:
            chromium.close()


class PageErrors:
    """What a page reported: uncaught errors fail the test, console errors are kept for
    messages."""

    def __init__(self) -> None:
        self.uncaught: list[str] = []
        self.console: list[str] = []

    def on_console(self, message) -> None:
        if message.type == "error":
            self.console.append(f"{message.text} ({message.location.get('url', '')})")

    def on_pageerror(self, error) -> None:
        self.uncaught.append(f"{error.name}: {error.message}\n{error.stack or ''}".strip())


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser, page_errors):
    context = browser.new_context(viewport=DESKTOP, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    new_page.on("console", page_errors.on_console)
    new_page.on("pageerror", page_errors.on_pageerror)
    yield new_page
    context.close()
    if page_errors.uncaught:
        pytest.fail(
            "uncaught errors in the page:\n"
            + "\n".join(page_errors.uncaught)
            + (
                "\nconsole errors:\n" + "\n".join(page_errors.console)
                if page_errors.console
                else ""
            ),
            pytrace=False,
        )
