"""Accessibility of every page a role uses, at 1280 px and at tablet width: axe-core (WCAG 2
A and AA rules: form labels, colour contrast, names of links and buttons, headings, lang…)
finds nothing, nothing overflows the page sideways, and keyboard focus is always visible."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import DESKTOP, TABLET, sign_in, wait_widgets

pytestmark = pytest.mark.slow

CODE = "131130"
PAGES = {
    f"teacher-{CODE}": [f"/m/{CODE}/", f"/m/{CODE}/boards/classes/", "class board", "pupil board"],
    f"board-{CODE}": [f"/m/{CODE}/analysis/long-term-absence/", f"/m/{CODE}/analysis/schools/"],
    f"admin-{CODE}": [
        f"/m/{CODE}/manage/",
        f"/m/{CODE}/manage/imports/",
        f"/m/{CODE}/manage/imports/new/",
        f"/m/{CODE}/manage/connectors/",
        f"/m/{CODE}/manage/connectors/oneroster/",  # a choice with its help text
        f"/m/{CODE}/manage/opt-outs/",
        f"/m/{CODE}/manage/access-log/",
        f"/m/{CODE}/manage/audit/",
        f"/m/{CODE}/manage/ingest-tokens/",
        f"/m/{CODE}/manage/widgets/",
        f"/m/{CODE}/manage/members/",
        f"/m/{CODE}/manage/school-years/",
    ],
    "pref-13": ["/prefecture/", "/prefecture/token/", "/prefecture/audit/"],
}
AXE_RULES = {"runOnly": ["wcag2a", "wcag2aa"]}

FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {tag: el.tagName, text: (el.innerText || el.value || '').slice(0, 40),
          outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
          raw: style.outlineStyle + ' ' + style.outlineWidth + ' ' + style.outlineColor,
          shadow: style.boxShadow !== 'none'};
}"""


def _resolve(page, base_url: str, path: str) -> str:
    """The class board and pupil board are reached as a teacher would: by clicking."""
    if path == "class board":
        page.goto(f"{base_url}/m/{CODE}/boards/classes/")
        return page.locator("a[data-testid=homeroom-link]").first.get_attribute("href")
    if path == "pupil board":
        wait_widgets(page, 1, selector="renkei-class-board")
        return page.locator("[data-testid=class-pupils] a").first.get_attribute("href")
    return path


def _audit(page, axe: Axe) -> list[str]:
    results = axe.run(page, options=AXE_RULES)
    problems = [results.generate_report()] if results.violations_count else []
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if wide > 1:
        problems.append(f"the page is {wide}px wider than the window")
    return problems


@pytest.mark.parametrize("username", list(PAGES))
def test_pages_pass_axe_at_desktop_and_tablet_width(page, demo_server, username):
    base = demo_server.base_url
    sign_in(page, base, username)
    axe = Axe()
    problems: dict[str, list[str]] = {}
    for path in PAGES[username]:
        url = _resolve(page, base, path)
        for viewport in (DESKTOP, TABLET):
            page.set_viewport_size(viewport)
            page.goto(url if url.startswith("http") else base + url)
            wait_widgets(page, 0)
            found = _audit(page, axe)
            if found:
                problems[f"{url} at {viewport['width']}px"] = found
    assert not problems, "\n\n".join(f"{where}:\n" + "\n".join(p) for where, p in problems.items())


def test_keyboard_focus_is_always_visible(page, demo_server):
    base = demo_server.base_url
    sign_in(page, base, f"teacher-{CODE}")
    page.goto(f"{base}/m/{CODE}/boards/classes/")
    page.locator("a[data-testid=homeroom-link]").first.click()
    wait_widgets(page, 1, selector="renkei-class-board")
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused is None:
            continue
        seen.append(focused)
        assert focused["outline"] or focused["shadow"], f"focus is invisible on {focused}"
    # Tabbing reaches the menu, the 基準日 form and the pupils' links.
    tags = {f["tag"] for f in seen}
    assert {"A", "INPUT", "BUTTON"} <= tags, seen
