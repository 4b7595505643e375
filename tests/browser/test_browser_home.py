"""The infrastructure itself: the demo server answers, a demo account signs in and the tenant
home shows its menu."""

from __future__ import annotations

import pytest
from browser_support import screenshot, sign_in

pytestmark = pytest.mark.slow


def test_landing_and_tenant_home(page, demo_server):
    # given the landing page of the demo
    page.goto(demo_server.base_url + "/")
    assert page.title()
    screenshot(page, "landing")

    # when the board analyst signs in
    sign_in(page, demo_server.base_url, "board-131130")
    page.goto(demo_server.base_url + "/m/131130/")

    # then the home page has the menu in Japanese
    labels = page.locator("nav.nav a").all_inner_texts()
    assert "ホーム" in labels, labels
    assert "長期欠席" in labels and "学校カルテ" in labels, labels
    screenshot(page, "tenant-home-board", tablet=True)
