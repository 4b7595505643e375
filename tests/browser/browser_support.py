"""Helpers of the browser tests: signing in as a demo account, waiting for widgets,
screenshots, and pupil names read straight from the demo database."""

from __future__ import annotations

import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 800, "height": 1100}
DEMO_PASSWORD = "renkei-demo"
WIDGET_STATES = ("ready", "error")


def launch_args() -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# --- screenshots ---------------------------------------------------------------------------


def screenshot(page, name: str, *, tablet: bool = False) -> list[Path]:
    """Full-page PNG at artifacts/screenshots/<name>.png; with tablet=True also
    <name>-tablet.png at 800×1100 (then back to the previous viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = [SCREENSHOTS / f"{name}.png"]
    page.screenshot(path=str(paths[0]), full_page=True)
    if tablet:
        previous = page.viewport_size
        page.set_viewport_size(TABLET)
        page.wait_for_timeout(300)  # let charts re-layout
        paths.append(SCREENSHOTS / f"{name}-tablet.png")
        page.screenshot(path=str(paths[1]), full_page=True)
        if previous:
            page.set_viewport_size(previous)
    return paths


# --- signing in ----------------------------------------------------------------------------


def tenant_code_of(username: str) -> str | None:
    """teacher-131130 → 131130; pref-13 (a prefecture analyst) → None."""
    if username.startswith("pref-"):
        return None
    return username.rsplit("-", 1)[1]


def totp_code(username: str) -> str:
    """The demo account's current TOTP, as its authenticator app would show it."""
    from django_otp.oath import totp

    from renkei.demo import world

    return f"{totp(bytes.fromhex(world.totp_secret_hex(username))):06d}"


def sign_in(page, base_url: str, username: str, *, second_factor: bool = False) -> None:
    """Log in through the login form (tenant users at /m/<code>/accounts/login/, the
    prefecture analyst at /accounts/login/); with second_factor, also pass the step-up page."""
    code = tenant_code_of(username)
    prefix = f"{base_url}/m/{code}" if code else base_url
    page.goto(f"{prefix}/accounts/login/")
    field = "#id_username"
    page.fill(field, username)
    page.fill("#id_password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.locator("main form").filter(has=page.locator(field)).locator(
            "button[type=submit], input[type=submit]"
        ).first.click()
    if "/accounts/login/" in page.url:
        raise AssertionError(
            f"login of {username} failed, still at {page.url}: {_alert_text(page)}"
        )
    if second_factor:
        verify(page, f"{prefix}/accounts/verify/", username)


def verify(page, verify_url: str | None, username: str) -> None:
    """Enter the TOTP on the step-up page (verify_url, or the page already open). A code is
    accepted once per device: when the current one was spent (another test, same 30 s),
    wait for the next step and try again."""
    if verify_url:
        page.goto(verify_url)
    field = "#id_otp_token"
    for attempt in range(2):
        page.fill(field, totp_code(username))
        with page.expect_navigation():
            page.locator("main form").filter(has=page.locator(field)).locator(
                "button[type=submit], input[type=submit]"
            ).first.click()
        if "/accounts/verify/" not in page.url:
            return
        errors = " ".join(page.locator(".errorlist").all_inner_texts())
        if attempt == 0 and "device" not in errors:
            time.sleep(30 - time.time() % 30 + 1)
    raise AssertionError(
        f"second factor of {username} refused at {page.url}: "
        f"{_alert_text(page)} {page.locator('.errorlist').all_inner_texts()}"
    )


def _alert_text(page) -> str:
    alerts = page.locator("[role=alert]")
    return " / ".join(alerts.all_inner_texts()) if alerts.count() else "(no message)"


# --- widgets -------------------------------------------------------------------------------


_STATES_JS = """
() => {
  const all = [];
  const walk = (root) => {
    root.querySelectorAll('[data-state]').forEach((el) => all.push(el));
    root.querySelectorAll('*').forEach((el) => { if (el.shadowRoot) walk(el.shadowRoot); });
  };
  walk(document);
  return all.map((el) => ({tag: el.tagName.toLowerCase(), state: el.dataset.state,
                           testid: el.dataset.testid || ''}));
}
"""


def widget_states(page) -> list[dict]:
    return page.evaluate(_STATES_JS)


def wait_widgets(
    page, minimum: int = 1, *, selector: str | None = None, timeout: float = 30.0
) -> list[dict]:
    """Wait until no element is data-state="loading" and at least `minimum` elements (those
    matching `selector` when given) are ready or error. Returns the states seen."""
    deadline = time.monotonic() + timeout
    while True:
        states = widget_states(page)
        if selector:
            chosen = page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.state)")
        else:
            chosen = [s["state"] for s in states]
        loading = [s for s in states if s["state"] == "loading"]
        done = [s for s in chosen if s in WIDGET_STATES]
        if not loading and len(done) >= minimum:
            return states
        if time.monotonic() > deadline:
            raise AssertionError(
                f"widgets did not settle within {timeout:.0f} s at {page.url}: "
                f"{len(done)} of at least {minimum} ready/error"
                f"{f' among {selector}' if selector else ''}, still loading: {loading}, "
                f"all: {states}"
            )
        page.wait_for_timeout(200)


def full_html(page) -> str:
    """page.content() plus the markup of open shadow roots (which content() omits)."""
    shadows = page.evaluate("""
() => {
  const out = [];
  const walk = (root) => root.querySelectorAll('*').forEach((el) => {
    if (el.shadowRoot) { out.push(el.shadowRoot.innerHTML); walk(el.shadowRoot); }
  });
  walk(document);
  return out.join('\\n');
}""")
    return page.content() + "\n" + shadows


# --- the demo database ---------------------------------------------------------------------


def demo_schools(municipality_code: str) -> list[str]:
    from renkei.demo import world

    return world.demo_school_codes(municipality_code)


def pupil_names(server, municipality_code: str) -> dict[int, dict[str, str]]:
    """student id → {"name": 姓名, "kana": せいめい, "family": …, "given": …} from the
    identities (the first identity that carries a name)."""
    rows = server.query(
        f"SELECT student_id, family_name, given_name, family_name_kana, given_name_kana "
        f"FROM m{municipality_code}.edudata_studentidentity ORDER BY student_id, id"
    )
    names: dict[int, dict[str, str]] = {}
    for student_id, family, given, family_kana, given_kana in rows:
        if student_id in names or not (family or given):
            continue
        names[student_id] = {
            "family": family,
            "given": given,
            "name": f"{family}{given}",
            "kana": f"{family_kana}{given_kana}",
        }
    return names


def names_in(text: str, names: dict[int, dict[str, str]]) -> dict[int, str]:
    """Which pupils' full names (kanji, with or without a space, or kana) occur in text."""
    squeezed = re.sub(r"[\s\u3000]+", "", text)
    found = {}
    for student_id, name in names.items():
        for variant in (name["name"], name["kana"]):
            if len(variant) >= 3 and variant in squeezed:
                found[student_id] = variant
                break
    return found
