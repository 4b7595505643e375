"""A teacher's day: 学級ボード → a homeroom with alerts → a pupil's board; another school's
pupil is refused; the sensitive section needs the second factor."""

from __future__ import annotations

import re

import pytest
from browser_support import (
    demo_schools,
    full_html,
    names_in,
    pupil_names,
    screenshot,
    sign_in,
    verify,
    wait_widgets,
)

pytestmark = pytest.mark.slow

CODE = "131130"
TEACHER = f"teacher-{CODE}"
STUDENT_URL = re.compile(rf"/m/{CODE}/boards/students/(\d+)/")


def homeroom_pupils(server, homeroom_id: int) -> set[int]:
    rows = server.query(
        f"SELECT student_id FROM m{CODE}.edudata_enrollment WHERE homeroom_id = %s", (homeroom_id,)
    )
    return {r[0] for r in rows}


def pupil_of_another_school(server) -> int:
    own = demo_schools(CODE)[0]
    rows = server.query(
        f"SELECT s.id FROM m{CODE}.edudata_student s JOIN m{CODE}.edudata_school sc "
        f"ON sc.id = s.school_id WHERE sc.code <> %s AND EXISTS (SELECT 1 FROM "
        f"m{CODE}.edudata_studentidentity i WHERE i.student_id = s.id AND i.family_name <> '') "
        f"ORDER BY s.id LIMIT 1",
        (own,),
    )
    assert rows, "the demo data has no pupil outside the teacher's school"
    return rows[0][0]


def open_board_with_alerts(page, server) -> tuple[int, int]:
    """Open the teacher's homerooms one by one until one shows alerts: (homeroom id, count)."""
    links = page.locator('a[data-testid="homeroom-link"]')
    assert links.count() > 0, "学級ボード lists no homeroom for the teacher"
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    for href in hrefs:
        page.goto(server.base_url + href if href.startswith("/") else href)
        wait_widgets(page, selector="renkei-class-board")
        board = page.locator("renkei-class-board")
        assert board.get_attribute("data-state") == "ready", (
            f"class board {href} ended in state {board.get_attribute('data-state')}: "
            f"{page.locator('renkei-class-board [role=alert]').all_inner_texts()}"
        )
        alerts = page.locator('[data-testid="alert-timeline"] [data-testid="alert"]')
        if alerts.count():
            return int(re.search(r"/boards/classes/(\d+)/", page.url).group(1)), alerts.count()
    pytest.fail(
        f"none of the teacher's {len(hrefs)} homerooms shows an alert at the default "
        "基準日 (the demo data has absence streaks)"
    )


def test_teacher_class_board_student_board_and_refusal(page, demo_server):
    server = demo_server
    names = pupil_names(server, CODE)
    sign_in(page, server.base_url, TEACHER)

    # given the teacher's home page and its menu
    page.goto(f"{server.base_url}/m/{CODE}/")
    menu = page.locator("nav.nav a")
    assert "学級ボード" in menu.all_inner_texts(), menu.all_inner_texts()
    screenshot(page, "teacher-home")

    # when they open 学級ボード and a homeroom with alerts
    with page.expect_navigation():
        menu.filter(has_text="学級ボード").first.click()
    assert page.url.split("?")[0].endswith(f"/m/{CODE}/boards/classes/")
    screenshot(page, "teacher-class-list", tablet=True)
    own_school = demo_schools(CODE)[0]
    listed = [
        int(re.search(r"/boards/classes/(\d+)/", h).group(1))
        for h in page.locator('a[data-testid="homeroom-link"]').evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        )
    ]
    foreign = server.query(
        f"SELECT h.id FROM m{CODE}.edudata_homeroom h JOIN m{CODE}.edudata_school s "
        f"ON s.id = h.school_id WHERE s.code <> %s AND h.id = ANY(%s)",
        (own_school, listed),
    )
    assert not foreign, f"homerooms of another school listed for the teacher: {foreign}"
    homeroom_id, alert_count = open_board_with_alerts(page, server)
    screenshot(page, "teacher-class-board", tablet=True)

    # then every alert is about a pupil of this homeroom, named as in the roster
    members = homeroom_pupils(server, homeroom_id)
    member_names = {names[s]["name"] for s in members if s in names}
    member_kana = {names[s]["kana"] for s in members if s in names}
    alerts = page.locator('[data-testid="alert-timeline"] [data-testid="alert"]')
    for i in range(alert_count):
        alert = alerts.nth(i)
        href = alert.locator("a").first.get_attribute("href") or ""
        match = STUDENT_URL.search(href)
        assert match, f"alert {i} links to {href!r}, not to a student board"
        assert int(match.group(1)) in members, (
            f"alert {i} links to pupil {match.group(1)}, not enrolled in homeroom {homeroom_id}"
        )
        # Synthetic names repeat across pupils: compare names, not ids.
        text = re.sub(r"[\s\u3000]+", "", alert.inner_text())
        pupil = names[int(match.group(1))]
        assert pupil["name"] in text or pupil["kana"] in text, (
            f"alert {i} does not name its pupil {pupil['name']}: {alert.inner_text()!r}"
        )
        outsiders = set(names_in(text, names).values()) - member_names - member_kana
        assert not outsiders, f"alert {i} names pupils outside homeroom {homeroom_id}: {outsiders}"
    pupils_table = page.locator('[data-testid="class-pupils"]')
    shown = [re.sub(r"[\s\u3000]+", "", t) for t in pupils_table.locator("a").all_inner_texts()]
    assert shown, "the class-pupils table lists no pupil"
    assert set(shown) <= member_names, set(shown) - member_names
    named_members = [s for s in members if s in names]
    assert len(shown) == len(named_members), (len(shown), len(named_members))

    # when they click an alert's pupil
    first = alerts.first.locator("a").first
    pupil_id = int(STUDENT_URL.search(first.get_attribute("href")).group(1))
    with page.expect_navigation():
        first.click()

    # then the pupil's board shows the attendance calendar
    assert STUDENT_URL.search(page.url).group(1) == str(pupil_id)
    wait_widgets(page, selector="renkei-student-board")
    board = page.locator("renkei-student-board")
    assert board.get_attribute("data-state") == "ready", (
        board.get_attribute("data-state"),
        page.locator("renkei-student-board [role=alert]").all_inner_texts(),
    )
    assert page.locator('[data-testid="attendance-calendar"]').first.is_visible()
    screenshot(page, "teacher-student-board", tablet=True)

    # when they edit the URL to a pupil of another school of the municipality
    stranger = pupil_of_another_school(server)
    response = page.goto(f"{server.base_url}/m/{CODE}/boards/students/{stranger}/")

    # then 403, a message in Japanese, and nothing of that pupil
    assert response.status == 403, response.status
    message = " ".join(page.locator("[role=alert]").all_inner_texts())
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", message), (
        f"the 403 page has no Japanese [role=alert] message: {message!r}"
    )
    html = full_html(page)
    leaked = names_in(html + page.inner_text("body"), {stranger: names[stranger]})
    assert not leaked, f"the 403 page shows the pupil's name: {leaked}"
    screenshot(page, "teacher-student-board-403")


def test_teacher_step_up_unlocks_sensitive_section(page, demo_server):
    server = demo_server
    sign_in(page, server.base_url, TEACHER)
    own_school = demo_schools(CODE)[0]
    # a pupil who answered 心の天気 (the demo's pupils answer it on most school days)
    pupil, checkins = server.query(
        f"SELECT s.id, count(r.id) FROM m{CODE}.edudata_student s JOIN m{CODE}.edudata_school sc "
        f"ON sc.id = s.school_id JOIN m{CODE}.edudata_enrollment e ON e.student_id = s.id "
        f"LEFT JOIN m{CODE}.edudata_surveyresponse r ON r.student_id = s.id "
        f"WHERE sc.code = %s GROUP BY s.id ORDER BY count(r.id) = 0, s.id LIMIT 1",
        (own_school,),
    )[0]
    assert checkins, "no pupil of the teacher's school answered 心の天気 in the demo"
    board_url = f"{server.base_url}/m/{CODE}/boards/students/{pupil}/"

    # given the pupil's board without the second factor
    page.goto(board_url)
    wait_widgets(page, selector="renkei-student-board")
    sensitive = page.locator('renkei-student-board [data-testid="sensitive"]')
    assert sensitive.count() == 1, "the student board has no sensitive section"
    assert sensitive.get_attribute("data-state") == "locked", sensitive.get_attribute("data-state")
    assert "二要素認証" in sensitive.inner_text(), sensitive.inner_text()
    # the calendar shows no mood yet, and says that the second factor shows it
    calendar = page.locator('renkei-student-board [data-testid="attendance-calendar"]')
    assert calendar.locator("td[data-mood]").count() == 0
    locked = calendar.locator('[data-testid="mood-locked"]')
    assert (
        "心の天気" in locked.inner_text() and locked.locator("a[href*='/accounts/verify/']").count()
    )
    screenshot(page, "teacher-sensitive-locked")

    # when they follow the section's link to the step-up page and enter the TOTP
    link = sensitive.locator("a[href*='/accounts/verify/']")
    assert link.count(), "the locked section has no link to the step-up page"
    with page.expect_navigation():
        link.first.click()
    assert "/accounts/verify/" in page.url, page.url
    screenshot(page, "teacher-verify")
    verify(page, None, TEACHER)

    # then they are back on the board and the sensitive section shows
    assert page.url.split("?")[0] == board_url, page.url
    wait_widgets(page, selector="renkei-student-board")
    page.wait_for_function(
        "() => { const s = document.querySelector('renkei-student-board [data-testid=sensitive]');"
        " return s && ['ready', 'error'].includes(s.dataset.state); }",
        timeout=30_000,
    )
    sensitive = page.locator('renkei-student-board [data-testid="sensitive"]')
    assert sensitive.get_attribute("data-state") == "ready", (
        sensitive.get_attribute("data-state"),
        sensitive.inner_text(),
    )
    assert sensitive.locator("a[href*='/accounts/verify/']").count() == 0, (
        "the section still asks for the second factor after step-up"
    )
    content = (sensitive.text_content() or "").replace("要配慮情報", "", 1).strip()
    assert content, "the unlocked sensitive section shows nothing below its heading"
    # and the calendar shows the days' moods
    calendar = page.locator('renkei-student-board [data-testid="attendance-calendar"]')
    assert calendar.locator('[data-testid="mood-locked"]').count() == 0
    assert calendar.locator("td[data-mood]").count() >= 1, calendar.inner_text()[:500]
    assert "心の天気" in (calendar.locator("td[data-mood]").first.get_attribute("title") or "")
    screenshot(page, "teacher-sensitive-unlocked", tablet=True)
