"""The pupil board's 個人カルテ in the demo: a 4th-6th grader of the teacher's school has three
school years; the section shows each year's 出欠の記録 as the register counts it, the five
subjects' trend and the radar of the latest test beside last year's, each chart with its
table; axe finds nothing on it."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import SCREENSHOTS, demo_schools, screenshot, sign_in, wait_widgets
from test_accessibility import _audit

pytestmark = pytest.mark.slow

CODE = "131130"
TEACHER = f"teacher-{CODE}"
ABSENT = "('absent_illness', 'absent_accident', 'absent_other')"
EXCUSED = "('suspension', 'mourning')"


def pupil_with_three_years(server) -> int:
    """A pupil of the teacher's school, 4年 or above, enrolled in three school years."""
    rows = server.query(
        f"SELECT s.id FROM m{CODE}.edudata_student s "
        f"JOIN m{CODE}.edudata_school sc ON sc.id = s.school_id "
        f"JOIN m{CODE}.edudata_enrollment e ON e.student_id = s.id "
        f"JOIN m{CODE}.edudata_homeroom h ON h.id = e.homeroom_id "
        f"WHERE sc.code = %s AND s.grade >= 4 "
        f"GROUP BY s.id HAVING COUNT(DISTINCT h.school_year) = 3 ORDER BY s.id LIMIT 1",
        (demo_schools(CODE)[0],),
    )
    assert rows, "the demo has no pupil of the teacher's school with three school years"
    return rows[0][0]


def register_by_year(server, student: int) -> dict[str, list[str]]:
    """Per school year: 授業日数, 出席停止・忌引等, required, 欠席, 出席, straight from the register."""
    rows = server.query(
        f"SELECT EXTRACT(YEAR FROM date - INTERVAL '3 months')::int, COUNT(*), "
        f"COUNT(*) FILTER (WHERE status IN {EXCUSED}), COUNT(*) FILTER (WHERE status IN {ABSENT}) "
        f"FROM m{CODE}.edudata_attendanceday WHERE student_id = %s GROUP BY 1",
        (student,),
    )
    return {
        str(year): [
            str(n) for n in (days, excused, days - excused, absent, days - excused - absent)
        ]
        for year, days, excused, absent in rows
    }


def test_the_karte_shows_three_school_years_with_charts_and_tables(page, demo_server):
    server = demo_server
    pupil = pupil_with_three_years(server)
    sign_in(page, server.base_url, TEACHER)

    # when the teacher opens the pupil's board
    page.goto(f"{server.base_url}/m/{CODE}/boards/students/{pupil}/")
    wait_widgets(page, selector="renkei-student-board")
    board = page.locator("renkei-student-board")
    assert board.get_attribute("data-state") == "ready", board.get_attribute("data-state")
    karte = board.locator('[data-testid="karte"]')
    assert karte.get_attribute("data-state") == "ready", karte.inner_text()
    assert "個人カルテ" in karte.locator("h3").inner_text()

    # then the attendance record has the three years, as the register counts them
    rows = karte.locator('[data-testid="karte-attendance"] tbody tr')
    years = rows.evaluate_all("trs => trs.map(tr => tr.dataset.year)")
    assert years == ["2025", "2024", "2023"], years
    expected = register_by_year(server, pupil)
    for i, year in enumerate(years):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[1:] == expected[year], (year, cells, expected[year])
        assert cells[0].strip(), f"{year}: no school and class"

    # and the five subjects' trend: a line chart drawn, its table one row per year
    trend = karte.locator('[data-testid="karte-trend"]')
    assert trend.get_attribute("data-chart") == "line"
    assert trend.locator("canvas[role=img]").get_attribute("aria-label").startswith("5 教科")
    assert trend.locator("canvas").evaluate("c => c.width > 0 && c.height > 0")
    header = trend.locator("thead th").all_inner_texts()
    assert header[:3] == ["年度", "国語", "算数・数学"], header
    assert trend.locator("tbody th").all_inner_texts() == ["2023年度", "2024年度", "2025年度"]
    latest = trend.locator("tbody tr").last.locator("td").all_inner_texts()
    assert all(p.endswith("%") and 0 <= float(p[:-1]) <= 100 for p in latest), latest
    # 理科 and 社会 start in 3年: an earlier year may have none ("—"), never a made-up value
    earlier = trend.locator("tbody tr").first.locator("td").all_inner_texts()
    assert all(p == "—" or p.endswith("%") for p in earlier), earlier

    # and the radar of the latest test beside last year's, with its table
    radar = karte.locator('[data-testid="karte-radar"]')
    assert radar.get_attribute("data-chart") == "radar"
    assert radar.locator("canvas").evaluate("c => c.width > 0 && c.height > 0")
    columns = radar.locator("thead th").all_inner_texts()
    assert len(columns) == 3 and columns[1].startswith("2025年度"), columns
    assert columns[2].startswith("2024年度"), columns
    assert radar.locator("tbody tr").count() >= 3  # a radar has three axes or more

    # and each year's tests and evaluations
    details = karte.locator('[data-testid="karte-year"]')
    assert details.evaluate_all("ds => ds.map(d => d.dataset.year)") == ["2025", "2024", "2023"]
    details.nth(1).locator("summary").click()
    assert details.nth(1).locator("table").count() == 2  # tests and evaluations of 2024
    problems = _audit(page, Axe())  # the charts, tables and open details of a full karte
    assert not problems, "\n".join(problems)
    karte.scroll_into_view_if_needed()
    screenshot(page, "teacher-student-karte")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    karte.screenshot(path=str(SCREENSHOTS / "teacher-student-karte-section.png"))
