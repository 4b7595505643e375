"""Learning time on the boards: a pupil's xAPI statements, imported through the xapi
connector, show on their board (a chart with its table, minutes per subject) and in the
class's weeks on the class board."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from browser_support import demo_schools, screenshot, sign_in, wait_widgets
from cli_support import renkei

pytestmark = pytest.mark.slow

CODE = "131130"
TEACHER = f"teacher-{CODE}"


def statement(account: str, day: dt.date, minutes: int, n: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": f"mailto:{account}"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"ja-JP": "完了"}},
        "object": {"id": f"https://drill.example.jp/browser/{n}"},
        "timestamp": f"{day.isoformat()}T10:{n:02d}:00+09:00",
        "result": {"duration": f"PT{minutes}M"},
    }


def ready(page, selector: str) -> None:
    wait_widgets(page, selector=selector)
    state = page.locator(selector).get_attribute("data-state")
    assert state == "ready", (state, page.locator(f"{selector} [role=alert]").all_inner_texts())


def test_learning_time_on_the_pupil_and_class_boards(page, demo_server, tmp_path):
    server = demo_server
    # given a pupil of the teacher's school who has an account and has not opted out
    pupil, account, homeroom = server.query(
        f"SELECT s.id, i.principal_name, e.homeroom_id FROM m{CODE}.edudata_student s "
        f"JOIN m{CODE}.edudata_school sc ON sc.id = s.school_id "
        f"JOIN m{CODE}.edudata_studentidentity i ON i.student_id = s.id "
        f"JOIN m{CODE}.edudata_enrollment e ON e.student_id = s.id "
        f"WHERE sc.code = %s AND s.opted_out_at IS NULL AND i.principal_name <> '' "
        f"ORDER BY s.id LIMIT 1",
        (demo_schools(CODE)[0],),
    )[0]
    sign_in(page, server.base_url, TEACHER)
    board_url = f"{server.base_url}/m/{CODE}/boards/students/{pupil}/"
    page.goto(board_url)
    ready(page, "renkei-student-board")
    as_of = dt.date.fromisoformat(page.locator("renkei-student-board").get_attribute("as-of"))
    before = json.loads(
        page.locator('[data-testid="learning"]').evaluate(
            "s => JSON.stringify([...s.querySelectorAll('[data-testid=learning-weeks] tbody tr')]"
            ".map(r => r.children[1].textContent))"
        )
        or "[]"
    )

    # when 25 minutes in the week before the reference day's and 35 on it are imported
    export = tmp_path / "statements.jsonl"
    export.write_text(
        "\n".join(
            json.dumps(s)
            for s in (
                statement(account, as_of - dt.timedelta(days=7), 25, 1),
                statement(account, as_of, 35, 2),
            )
        )
        + "\n",
        encoding="utf-8",
    )
    renkei(server.env, "import", "--tenant", CODE, "xapi", str(export))
    page.goto(f"{board_url}?as_of={as_of.isoformat()}")
    ready(page, "renkei-student-board")

    # then the pupil's board shows the weeks, as a chart and a table, and the subjects
    section = page.locator('renkei-student-board [data-testid="learning"]')
    assert section.is_visible()
    assert "学習ツールの利用" in section.locator("h3").inner_text()
    chart = section.locator("canvas[role=img]")
    assert "積み上げ棒グラフ" in (chart.get_attribute("aria-label") or "")
    rows = section.locator('[data-testid="learning-weeks"] tbody tr')
    minutes = [int(rows.nth(i).locator("td").first.text_content()) for i in range(rows.count())]
    previous = [int(m) for m in before] or [0] * len(minutes)
    assert [m - p for m, p in zip(minutes, previous, strict=True)][-2:] == [25, 35], minutes
    subjects = section.locator('[data-testid="learning-subjects"]').inner_text()
    assert "教科の記録なし" in subjects  # the xAPI statements named no subject
    screenshot(page, "teacher-student-board-learning", tablet=True)

    # and the class board counts the pupil among those who used a tool this week
    page.goto(f"{server.base_url}/m/{CODE}/boards/classes/{homeroom}/?as_of={as_of.isoformat()}")
    ready(page, "renkei-class-board")
    weeks = page.locator('[data-testid="class-learning-weeks"] tbody tr')
    assert weeks.count() == len(minutes)
    latest = weeks.first  # newest first
    used = re.match(r"(\d+) / (\d+) 人", latest.locator("td").nth(0).inner_text())
    assert used and 1 <= int(used.group(1)) <= int(used.group(2)), latest.inner_text()
    assert int(latest.locator("td").nth(1).inner_text()) >= 35
    screenshot(page, "teacher-class-board-learning", tablet=True)
