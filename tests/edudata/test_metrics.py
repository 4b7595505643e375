"""The metric registry against the raw rows, and an attacker's view of everything it releases.

Values: every released figure equals the same figure computed here straight from the raw
tables (AttendanceDay, NurseVisit, M365DailyUsage, AssessmentResult) for analyzable pupils,
independently of the rollups. Disclosure: every suppressed cell is None with a reason; and
the differencing battery asks every metric at every allowed combination of breakdowns, for
the municipality and for each school, collects every released figure as a linear form over
the finest cells ("atoms"), and proves that no withheld figure lies in their span - i.e. no
subtraction (or any linear combination) of released figures recovers it.
"""

from __future__ import annotations

import calendar
import itertools
import math
import re
import sys
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphql" / "federation"))
from differencing import (
    ALL_BINS,
    DISTRIBUTION_BINS,
    LONG_TERM_BINS,
    Battery,
    absence_bin,
    in_grade,
)
from fed_world import METRICS_WORLD, SCHOOL_YEAR, build_world, drop_world

from renkei.edudata import metrics
from renkei.edudata.metrics import METRICS, TOTAL, compute
from renkei.tenants.context import in_tenant

CODE = next(iter(METRICS_WORLD))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        built = build_world(METRICS_WORLD, with_users=False)
    yield built
    with django_db_blocker.unblock():
        drop_world(METRICS_WORLD, users=False)


@pytest.fixture
def muni(world, db):
    return world.municipality(CODE)


def _sql(sql, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# -- raw figures ---------------------------------------------------------------------------------

RAW_PUPIL_MONTHS = """
    SELECT st.id, sc.code, sc.school_type, st.grade, extract(month FROM a.date)::int,
           count(*),
           count(*) FILTER (WHERE a.status IN ('suspension', 'mourning')),
           count(*) FILTER (WHERE a.status = 'absent_illness'),
           count(*) FILTER (WHERE a.status = 'absent_accident'),
           count(*) FILTER (WHERE a.status = 'absent_other')
    FROM edudata_attendanceday a
    JOIN edudata_student st ON st.id = a.student_id
    JOIN edudata_school sc ON sc.id = st.school_id
    WHERE st.opted_out_at IS NULL AND a.date BETWEEN %s AND %s
    GROUP BY 1, 2, 3, 4, 5"""


def raw_pupil_months():
    """(pupil, school, grade code, month code) -> dict of day counts, analyzable pupils only."""
    rows = _sql(RAW_PUPIL_MONTHS, [f"{SCHOOL_YEAR}-04-01", f"{SCHOOL_YEAR + 1}-03-31"])
    out = {}
    for pid, school, kind, grade, month, days, excused, ill, acc, oth in rows:
        out[pid, school, f"{kind}-{grade}", metrics.month_code(SCHOOL_YEAR, month)] = {
            "days": days,
            "required": days - excused,
            "ill": ill,
            "acc": acc,
            "oth": oth,
        }
    return out


def raw_pupil_years():
    years = defaultdict(lambda: {"ill": 0, "acc": 0, "oth": 0, "required": 0})
    for (pid, school, grade, _m), v in raw_pupil_months().items():
        y = years[pid, school, grade]
        for f in ("ill", "acc", "oth", "required"):
            y[f] += v[f]
    return years


def assert_rate(cell):
    if not cell.suppressed:
        assert cell.value == pytest.approx(100.0 * cell.numerator / cell.denominator)


# Released figures carry cell-key noise (docs/disclosure.md): a count is within NOISE_BOUND
# of the truth, a sum of n released cells within n times that, days within 8 times that.
NOISE = metrics.release.NOISE_BOUND
DAYS_NOISE = NOISE * metrics.release.MEASURE_STEP["attended"]


def near(released, true, parts=1, bound=NOISE):
    """A released figure is the true one up to the published noise."""
    return released is not None and abs(released - true) <= bound * parts


# -- the registry and its errors ------------------------------------------------------------


def test_registry_names_labels_and_dimensions():
    assert set(METRICS) == {
        "attendance_rate",
        "absence_days_distribution",
        "long_term_absence",
        "monthly_absence_10_days",
        "nurse_visits_per_100",
        "m365_active_rate",
        "learning_minutes_distribution",
        "learning_active_rate",
        "assessment_score_distribution",
        "futoko",
    }
    # 不登校 (an absence reason: sensitive) is the one metric the municipality keeps to itself
    assert {n for n, m in METRICS.items() if m.scope != metrics.PREFECTURE_WIDE} == {"futoko"}
    assert set(metrics.PREFECTURE_WIDE_METRICS) == set(METRICS) - {"futoko"}
    for spec in METRICS.values():
        assert spec.label_ja and spec.label_en and spec.description_ja and spec.description_en
        assert spec.unit and spec.source.startswith("edudata.")
        assert set(spec.dimensions) <= {"month", "grade"}
        assert "municipality" not in spec.all_dimensions
        assert spec.min_cell_size >= 10


def test_every_fixed_code_has_an_english_label():
    japanese = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
    codes = [(dim, code) for dim, labels in metrics.CATEGORY_LABELS.items() for code in labels]
    codes += [("grade", f"{kind}-{g}") for kind in ("B1", "C1") for g in (1, 3)]
    codes += [
        ("month", "2025-04"),
        ("month", "2026-01"),
        ("month", "2025"),
        ("grade", "B1"),
        ("subject", "数学"),
    ]
    for dim, code in codes:
        english = metrics.code_label_en(dim, code, 2025)
        assert english and not japanese.search(english), (dim, code, english)
    assert metrics.code_label_en("grade", "B1-3") == "Elementary grade 3"
    assert metrics.code_label_en("month", "2026-01") == "Jan 2026"
    assert metrics.code_label_en("absence_category", TOTAL) == "Total"


def test_unknown_metric_and_breakdown_are_refused_in_japanese(muni):
    with in_tenant(muni):
        with pytest.raises(ValueError, match="指標「pupil_names」はありません"):
            compute("pupil_names", muni, school_year=SCHOOL_YEAR)
        with pytest.raises(ValueError, match="内訳できません"):
            compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["month"])
        with pytest.raises(ValueError, match="内訳できません"):
            compute("attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["sex"])
        with pytest.raises(ValueError, match="都道府県"):
            compute("attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["municipality"])


def test_compute_answers_the_same_inside_and_outside_the_tenant(muni):
    # The release is the prefecture's, read with schema-qualified queries: where the caller
    # stands does not change a cell.
    outside = compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["grade"])
    metrics.clear_cache()
    with in_tenant(muni):
        inside = compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["grade"])
    assert [c.to_json() for c in inside.cells] == [c.to_json() for c in outside.cells]
    assert any(not c.suppressed for c in inside.cells)


# -- values equal the raw rows ------------------------------------------------------------


def test_long_term_absence_and_distribution_equal_the_raw_rows(muni):
    with in_tenant(muni):
        years = raw_pupil_years()
        long_term = compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["grade"])
        distribution = compute(
            "absence_days_distribution", muni, school_year=SCHOOL_YEAR, breakdown=["grade"]
        )
    assert long_term.dimensions == ["grade", "absence_category"]
    checked = 0
    for table, bins, dim in (
        (long_term, LONG_TERM_BINS, "absence_category"),
        (distribution, DISTRIBUTION_BINS, "absence_days"),
    ):
        for cell in table.cells:
            g, c = cell.key["grade"], cell.key[dim]
            wanted = ALL_BINS if c == TOTAL else bins[c]
            true = sum(
                1
                for (_p, _s, grade), y in years.items()
                if in_grade(grade, g) and absence_bin(y) in wanted
            )
            if cell.suppressed and cell.pupils is None:
                continue
            assert near(cell.pupils, true), (cell.key, cell.pupils, true)
            if not cell.suppressed:
                total = sum(1 for (_p, _s, grade) in years if in_grade(grade, g))
                assert near(cell.denominator, total)
                assert_rate(cell)
            checked += 1
    assert checked > 20
    # The whole population is released, and it is the analyzable pupils.
    assert near(long_term.cell(grade=TOTAL, absence_category=TOTAL).pupils, len(years))


def test_attendance_rate_equals_the_raw_rows(muni):
    with in_tenant(muni):
        months = raw_pupil_months()
        table = compute(
            "attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month", "grade"]
        )
    released = [c for c in table.cells if not c.suppressed]
    assert len(released) > 10
    for cell in released:
        m, g = cell.key["month"], cell.key["grade"]
        rows = [
            v
            for (_p, _s, grade, month), v in months.items()
            if in_grade(grade, g) and (m == str(SCHOOL_YEAR) or month == m)
        ]
        required = sum(v["required"] for v in rows)
        absent = sum(v["ill"] + v["acc"] + v["oth"] for v in rows)
        assert near(cell.numerator, required - absent, bound=DAYS_NOISE), cell.key
        assert near(cell.denominator, required, bound=DAYS_NOISE), cell.key
        pupils = {
            p
            for (p, _s, grade, month) in months
            if in_grade(grade, g) and (m == str(SCHOOL_YEAR) or month == m)
        }
        assert near(cell.pupils, len(pupils))
        assert_rate(cell)


def test_monthly_absence_equals_the_raw_rows(muni):
    with in_tenant(muni):
        months = raw_pupil_months()
        table = compute(
            "monthly_absence_10_days", muni, school_year=SCHOOL_YEAR, breakdown=["month", "grade"]
        )
    for cell in table.cells:
        if cell.pupils is None:
            continue
        m, g, c = cell.key["month"], cell.key["grade"], cell.key["monthly_absence"]
        n = sum(
            1
            for (_p, _s, grade, month), v in months.items()
            if in_grade(grade, g)
            and (m == str(SCHOOL_YEAR) or month == m)
            and (c == TOTAL or (v["ill"] + v["acc"] + v["oth"] >= 10) == (c == "ge10"))
        )
        assert near(cell.pupils, n, parts=12 if m == str(SCHOOL_YEAR) else 1), cell.key


def test_counselling_visits_are_in_no_figure(muni):
    """心の相談 is sensitive (DESIGN rules 6, 7): not a category, not in a total, not in a rollup
    — though the synthetic data has such visits."""
    with in_tenant(muni):
        assert _sql("SELECT count(*) FROM edudata_nursevisit WHERE reason_category = 'mental'")[0][
            0
        ]
        assert not _sql(
            "SELECT count(*) FROM edudata_nursevisitmonth WHERE reason_category = 'mental'"
        )[0][0]
        for name, spec in metrics.METRICS.items():
            if metrics.NURSE_REASON not in spec.all_dimensions:
                continue
            table = compute(name, muni, school_year=SCHOOL_YEAR)
            assert {c.key[metrics.NURSE_REASON] for c in table.cells} == {
                *metrics.NURSE_REASONS,
                TOTAL,
            }
            assert "mental" not in metrics.NURSE_REASONS


def test_nurse_visits_equal_the_raw_rows(muni):
    with in_tenant(muni):
        visits = _sql("""
            SELECT extract(month FROM v.visited_at AT TIME ZONE 'Asia/Tokyo')::int,
                   sc.school_type || '-' || st.grade, v.reason_category, count(*),
                   count(DISTINCT v.student_id)
            FROM edudata_nursevisit v JOIN edudata_student st ON st.id = v.student_id
            JOIN edudata_school sc ON sc.id = st.school_id
            WHERE st.opted_out_at IS NULL AND v.reason_category <> 'mental'
            GROUP BY 1, 2, 3""")
        months = raw_pupil_months()
        table = compute(
            "nurse_visits_per_100", muni, school_year=SCHOOL_YEAR, breakdown=["month", "grade"]
        )
    released = [c for c in table.cells if not c.suppressed]
    assert released
    for cell in released:
        m, g, r = cell.key["month"], cell.key["grade"], cell.key["nurse_reason"]
        rows = [
            row
            for row in visits
            if (m == str(SCHOOL_YEAR) or metrics.month_code(SCHOOL_YEAR, row[0]) == m)
            and in_grade(row[1], g)
            and (r == TOTAL or row[2] == r)
        ]
        parts = (12 if m == str(SCHOOL_YEAR) else 1) * (
            len(metrics.NURSE_REASONS) if r == TOTAL else 1
        )
        assert near(
            cell.numerator,
            sum(row[3] for row in rows),
            parts=parts,
            bound=NOISE * metrics.release.MEASURE_STEP["visits"],
        )
        if m != str(SCHOOL_YEAR):
            enrolled = {p for (p, _s, grade, month) in months if month == m and in_grade(grade, g)}
            assert near(cell.denominator, len(enrolled))
        assert cell.value == pytest.approx(100.0 * cell.numerator / cell.denominator)


def test_m365_active_rate_equals_the_raw_rows(muni):
    with in_tenant(muni):
        usage = _sql("""
            SELECT extract(month FROM u.date)::int, sc.school_type || '-' || st.grade, u.app,
                   count(DISTINCT u.student_id)
            FROM edudata_m365dailyusage u JOIN edudata_student st ON st.id = u.student_id
            JOIN edudata_school sc ON sc.id = st.school_id
            WHERE st.opted_out_at IS NULL AND u.active GROUP BY 1, 2, 3""")
        table = compute(
            "m365_active_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month", "grade"]
        )
    released = [c for c in table.cells if not c.suppressed and c.key["month"] != str(SCHOOL_YEAR)]
    assert released
    for cell in released:
        m, g, app = cell.key["month"], cell.key["grade"], cell.key["app"]
        assert near(
            cell.pupils,
            sum(
                row[3]
                for row in usage
                if metrics.month_code(SCHOOL_YEAR, row[0]) == m
                and in_grade(row[1], g)
                and row[2] == app
            ),
        )
        assert_rate(cell)


RAW_LEARNING = """
    SELECT l.student_id, extract(month FROM l.occurred_at AT TIME ZONE 'Asia/Tokyo')::int,
           sum(coalesce(l.duration_seconds, 0))
    FROM edudata_learningactivity l JOIN edudata_student st ON st.id = l.student_id
    WHERE st.opted_out_at IS NULL GROUP BY 1, 2"""


def raw_learning_bins():
    """(pupil, school, grade code, month code) -> learning bin, for every pupil-month of the
    attendance data (analyzable pupils), from the raw activity rows."""
    weekly = {}
    for pid, month, seconds in _sql(RAW_LEARNING):
        year = SCHOOL_YEAR if month >= 4 else SCHOOL_YEAR + 1
        days = calendar.monthrange(year, month)[1]
        # minutes / days of the month x 7, to the nearest minute (halves up, as PostgreSQL)
        weekly[pid, metrics.month_code(SCHOOL_YEAR, month)] = math.floor(
            Fraction(int(seconds) * 7, 60 * days) + Fraction(1, 2)
        )
    out = {}
    for pid, school, grade, month in raw_pupil_months():
        w = weekly.get((pid, month))
        out[pid, school, grade, month] = (
            "0"
            if w is None
            else "1-29"
            if w < 30
            else "30-59"
            if w < 60
            else "60-119"
            if w < 120
            else "120+"
        )
    return out


def test_learning_metrics_equal_the_raw_rows(muni):
    with in_tenant(muni):
        bins = raw_learning_bins()
        distribution = compute(
            "learning_minutes_distribution",
            muni,
            school_year=SCHOOL_YEAR,
            breakdown=["month", "grade"],
        )
        active = compute(
            "learning_active_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month", "grade"]
        )
    months = sorted({k[3] for k, b in bins.items() if b != "0"})
    # the world's pupils spread over every bin, and the year is the months with learning
    assert len(set(bins.values())) == len(metrics.LEARNING_BINS) and months
    year = str(SCHOOL_YEAR)
    assert {c.key["month"] for c in active.cells} == {*months, year}

    def pupil_months(m, g, wanted):
        return sum(
            1
            for (_p, _s, grade, month), b in bins.items()
            if in_grade(grade, g) and month in (months if m == year else [m]) and b in wanted
        )

    checked = 0
    for cell in distribution.cells:
        m, g, b = cell.key["month"], cell.key["grade"], cell.key["learning_minutes"]
        if cell.pupils is None:
            continue
        wanted = set(metrics.LEARNING_BINS) if b == TOTAL else {b}
        parts = len(months) if m == year else 1
        assert near(cell.pupils, pupil_months(m, g, wanted), parts=parts), cell.key
        if not cell.suppressed:
            assert near(cell.denominator, pupil_months(m, g, metrics.LEARNING_BINS), parts=parts)
            assert_rate(cell)
        checked += 1
    released = [c for c in active.cells if not c.suppressed]
    for cell in released:
        m, g = cell.key["month"], cell.key["grade"]
        parts = len(months) if m == year else 1
        assert near(cell.pupils, pupil_months(m, g, metrics.LEARNING_BINS[1:]), parts=parts)
        assert near(cell.denominator, pupil_months(m, g, metrics.LEARNING_BINS), parts=parts)
        assert_rate(cell)
    assert checked > 20 and len(released) > 5


def test_learning_cells_under_k_are_suppressed(muni):
    with in_tenant(muni):
        bins = raw_learning_bins()
        table = compute(
            "learning_minutes_distribution",
            muni,
            school_year=SCHOOL_YEAR,
            breakdown=["month", "grade"],
        )
    small = 0
    for cell in table.cells:
        m, g, b = cell.key["month"], cell.key["grade"], cell.key["learning_minutes"]
        if m == str(SCHOOL_YEAR) or b == TOTAL:
            continue
        true = sum(
            1
            for (_p, _s, grade, month), bin_code in bins.items()
            if month == m and in_grade(grade, g) and bin_code == b
        )
        if true < 10:
            small += 1
            assert cell.suppressed and cell.pupils is None and cell.value is None, cell.key
            assert cell.reason_code == metrics.SUPPRESSED
    assert small > 5


def test_learning_rollup_holds_no_opted_out_pupil(world, muni):
    opted_out = world.opted_out[CODE]
    with in_tenant(muni):
        learned = {
            row[0]
            for row in _sql(
                "SELECT DISTINCT student_id FROM edudata_learningactivity"
                " WHERE student_id = ANY(%s)",
                [opted_out],
            )
        }
        rolled = _sql(
            "SELECT count(*) FROM edudata_learningpupilmonth WHERE student_id = ANY(%s)",
            [opted_out],
        )[0][0]
    assert learned  # they did learn: their rows are left out, not missing
    assert rolled == 0


def test_a_data_change_remakes_the_learning_tables_asked_for_before(muni):
    from renkei.edudata import rollups
    from renkei.edudata.metrics import release
    from renkei.tenants.models import Release

    # given the learning tables were asked for (and stored: earlier tests' rolled back)
    metrics.clear_cache()
    compute("learning_active_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month"])
    learning = [
        name
        for name in release.stored_tables(muni.prefecture_id)[SCHOOL_YEAR]
        if name.startswith("learning:")
    ]
    assert learning
    # when the data changes and the releases are warmed up
    with in_tenant(muni):
        rollups.bump_data_version()
    metrics.clear_cache()
    metrics.warm(muni.prefecture_id)
    # then each is stored at the new version
    version = release.scope_for(muni.prefecture_id).version_for(SCHOOL_YEAR)
    assert sorted(
        Release.objects.filter(table__in=learning, version=version).values_list("table", flat=True)
    ) == sorted(learning)


def test_a_new_version_keeps_each_release_whose_inputs_did_not_change(muni, monkeypatch):
    """After a push every table of the prefecture gets a new version; only those whose
    figures' inputs changed are protected again, the others are the previous release, its
    row moved to the new version (its cells not written again)."""
    from renkei.edudata import rollups
    from renkei.edudata.metrics import release
    from renkei.tenants.models import Release

    def stored():
        return {
            table: (version, inputs, cells, pk)
            for table, version, inputs, cells, pk in Release.objects.filter(
                prefecture_id=muni.prefecture_id, school_year=SCHOOL_YEAR
            ).values_list("table", "version", "inputs", "cells", "pk")
        }

    protected = []
    original = release.disclosure.protect_table
    monkeypatch.setattr(
        release.disclosure,
        "protect_table",
        lambda *a, **kw: protected.append(1) or original(*a, **kw),
    )
    # given the month tables and the absence days were asked for
    metrics.clear_cache()
    compute("monthly_absence_10_days", muni, school_year=SCHOOL_YEAR, breakdown=["month"])
    compute("attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month"])
    before = stored()
    assert "attendance_days" in before
    months = sorted(t for t in before if t.startswith("month:"))
    assert len(months) >= 2 and all(before[t][1] for t in months)
    assert protected
    # when the version changes but no figure does (as for another municipality's push)
    with in_tenant(muni):
        rollups.bump_data_version()
    metrics.clear_cache()
    protected.clear()
    metrics.warm(muni.prefecture_id)
    # then every table is stored at the new version, as it was, in the same row, and none
    # protected again
    kept = stored()
    assert set(kept) == set(before)
    for table in before:
        assert kept[table][0] != before[table][0], table
        assert kept[table][1:] == before[table][1:], table  # inputs, cells and row
    assert protected == []
    rows = Release.objects.filter(prefecture_id=muni.prefecture_id, school_year=SCHOOL_YEAR)
    assert rows.count() == len(kept)  # no older version left behind
    # when one pupil's mark of the first month changes
    year, month = map(int, months[0].split(":")[1].split("-"))
    with in_tenant(muni):
        changed = _sql(
            "UPDATE edudata_attendanceday SET status = 'absent_illness' WHERE id = ("
            " SELECT a.id FROM edudata_attendanceday a"
            " JOIN edudata_student st ON st.id = a.student_id AND st.opted_out_at IS NULL"
            " WHERE a.status = 'present' AND extract(year FROM a.date) = %s"
            " AND extract(month FROM a.date) = %s ORDER BY a.id LIMIT 1) RETURNING id",
            [year, month],
        )
        assert changed
        rollups.refresh([SCHOOL_YEAR])
    metrics.clear_cache()
    metrics.warm(muni.prefecture_id)
    after = stored()
    # then the absence days (which hold that day) are protected again, and the tables of
    # the other months are kept as they were
    assert after["attendance_days"][1] != kept["attendance_days"][1]
    assert after["attendance_days"][3] != kept["attendance_days"][3]  # a new row
    assert protected
    for table in months[1:]:
        assert after[table][0] != kept[table][0], table
        assert after[table][1:] == kept[table][1:], table


def test_a_release_moved_on_by_another_process_is_not_moved_back(muni):
    """Two processes making different versions after two pushes may both find the same
    previous release: the first moves it on, the second must not move it again."""
    from renkei.edudata.metrics import release

    metrics.clear_cache()
    compute("attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month"])
    scope = release.scope_for(muni.prefecture_id)
    table = "attendance_days"
    found = release._stored(muni.prefecture_id, table, SCHOOL_YEAR)
    assert found is not None and not found.closed
    # the first process keeps it for its version
    assert release._keep(scope, table, SCHOOL_YEAR, "v-first", found)
    # the second, holding the same previous release, is told it was stored first elsewhere
    assert not release._keep(scope, table, SCHOOL_YEAR, "v-second", found)
    moved = release._stored(muni.prefecture_id, table, SCHOOL_YEAR)
    assert (moved.pk, moved.version) == (found.pk, "v-first")
    assert release._stored(muni.prefecture_id, table, SCHOOL_YEAR, "v-second") is None


def test_a_closed_years_release_stays_as_it_is_when_a_new_version_keeps_it(muni):
    from renkei.edudata.metrics import release
    from renkei.tenants.models import Release

    metrics.clear_cache()
    compute("attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month"])
    scope = release.scope_for(muni.prefecture_id)
    table = "attendance_days"
    found = release._stored(muni.prefecture_id, table, SCHOOL_YEAR)
    Release.objects.filter(pk=found.pk).update(closed=True)  # the year's evidence
    closed = release._stored(muni.prefecture_id, table, SCHOOL_YEAR)
    assert release._keep(scope, table, SCHOOL_YEAR, "v-after-closing", closed)
    kept = Release.objects.get(pk=found.pk)
    assert (kept.version, kept.closed) == (found.version, True)
    beside = release._stored(muni.prefecture_id, table, SCHOOL_YEAR, "v-after-closing")
    assert beside.pk != found.pk and beside.protected.to_json() == found.protected.to_json()


def test_assessment_distribution_equals_the_raw_rows(muni):
    with in_tenant(muni):
        results = _sql(
            """
            SELECT r.subject, sc.school_type || '-' || st.grade,
                   least(floor(r.score / r.max_score * 10), 9)::int, count(DISTINCT r.student_id)
            FROM edudata_assessmentresult r JOIN edudata_student st ON st.id = r.student_id
            JOIN edudata_school sc ON sc.id = st.school_id
            WHERE st.opted_out_at IS NULL AND r.kind = 'survey' AND r.school_year = %s
            GROUP BY 1, 2, 3""",
            [SCHOOL_YEAR],
        )
        table = compute(
            "assessment_score_distribution", muni, school_year=SCHOOL_YEAR, breakdown=["grade"]
        )
    leaves = metrics._SCORE_LEAVES
    groups = {"0-39": leaves[:4], "40-69": leaves[4:7], "70-100": leaves[7:]}
    checked = 0
    for cell in table.cells:
        if cell.pupils is None:
            continue
        subject, g, b = cell.key["subject"], cell.key["grade"], cell.key["score_bin"]
        wanted = set(leaves) if b == TOTAL else set(groups.get(b, (b,)))
        assert near(
            cell.pupils,
            sum(
                row[3]
                for row in results
                if row[0] == subject and in_grade(row[1], g) and leaves[row[2]] in wanted
            ),
        )
        checked += 1
    assert checked


# -- opt-out, k, suppression ------------------------------------------------------------------


def test_opted_out_pupils_are_in_no_figure(world, muni):
    opted_out = world.opted_out[CODE]
    assert len(opted_out) == 8
    with in_tenant(muni):
        everyone = _sql("SELECT count(DISTINCT student_id) FROM edudata_attendanceday")[0][0]
        analyzable = _sql("""SELECT count(DISTINCT a.student_id) FROM edudata_attendanceday a
                             JOIN edudata_student st ON st.id = a.student_id
                             WHERE st.opted_out_at IS NULL""")[0][0]
        total = compute("long_term_absence", muni, school_year=SCHOOL_YEAR).cell(
            absence_category=TOTAL
        )
        by_month = compute(
            "attendance_rate", muni, school_year=SCHOOL_YEAR, breakdown=["month"]
        ).cells
        # A month whose days are released (a group's days are withheld where they would
        # bound a withheld count: see the cross-metric tests).
        attendance = next(c for c in by_month if c.denominator is not None)
        month = int(attendance.key["month"].split("-")[1])
        days_all = _sql(
            """SELECT count(*) FILTER (WHERE status NOT IN ('suspension', 'mourning'))
                           FROM edudata_attendanceday
                           WHERE date_part('month', date) = %s""",
            [month],
        )[0][0]
    assert analyzable == everyone - len(opted_out)
    assert len(opted_out) > 2 * NOISE  # the noise cannot hide whether they are counted
    assert near(total.pupils, analyzable)
    assert near(attendance.pupils, analyzable)
    assert attendance.denominator < days_all  # their school days are not counted either


def test_suppressed_cells_are_null_with_a_reason_never_zero(muni):
    seen_suppressed = 0
    with in_tenant(muni):
        for spec in METRICS.values():
            for breakdown in _subsets(spec.dimensions):
                table = compute(spec.name, muni, school_year=SCHOOL_YEAR, breakdown=breakdown)
                assert table.k == 10
                for cell in table.cells:
                    if cell.suppressed:
                        seen_suppressed += 1
                        assert cell.value is None
                        # A count's numerator is the count; days are a table of their own.
                        # A released count may stand beside a withheld rate (its
                        # denominator withheld); days are a table of their own.
                        assert (
                            cell.numerator is None
                            or spec.name == "attendance_rate"
                            or cell.numerator >= table.k
                        )
                        assert (
                            cell.reason and cell.reason == metrics.REASON_LABELS[cell.reason_code]
                        )
                        # Small and complementary cells look alike outside (no LP bounds).
                        assert cell.reason_code not in ("primary", "complementary")
                    else:
                        assert cell.value is not None and cell.reason is None
                        assert cell.pupils is not None
                    if cell.pupils is not None and not _calendar_zero(spec, cell):
                        assert cell.pupils >= table.k  # a released count is never under k
    assert seen_suppressed > 50


def _calendar_zero(spec, cell):
    """A month of fewer than 10 school days: nobody can be absent 10 days, a released 0."""
    return (
        spec.name == "monthly_absence_10_days"
        and cell.pupils == 0
        and cell.key["monthly_absence"] == "ge10"
        and cell.key.get("month") != "2025"
    )


def test_cells_under_k_are_suppressed_and_labelled(muni):
    with in_tenant(muni):
        years = raw_pupil_years()
        table = compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["grade"])
    small = 0
    for cell in table.cells:
        g, c = cell.key["grade"], cell.key["absence_category"]
        wanted = ALL_BINS if c == TOTAL else LONG_TERM_BINS[c]
        true = sum(
            1
            for (_p, _s, grade), y in years.items()
            if in_grade(grade, g) and absence_bin(y) in wanted
        )
        if true < 10:
            small += 1
            assert cell.suppressed and cell.pupils is None and cell.value is None
            assert cell.reason_code == metrics.SUPPRESSED
    assert small > 5


def test_the_tenant_k_applies_when_larger(muni):
    muni.min_cell_size = 40
    muni.save(update_fields=["min_cell_size"])  # rolled back after the test
    with in_tenant(muni):
        table = compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["grade"])
    assert table.k == 40
    assert all(c.pupils is None or c.pupils >= 40 for c in table.cells)


def test_a_metric_with_a_higher_floor_is_released_from_tables_of_its_own(muni, monkeypatch):
    # given one metric asks for k = 40 while its population table also serves another
    import dataclasses

    raised = dataclasses.replace(METRICS["long_term_absence"], min_cell_size=40)
    monkeypatch.setitem(METRICS, "long_term_absence", raised)
    strict = compute("long_term_absence", muni, school_year=SCHOOL_YEAR, breakdown=["grade"])
    shared = compute(
        "absence_days_distribution", muni, school_year=SCHOOL_YEAR, breakdown=["grade"]
    )
    # then it gets its k, and the other metric's cells stay at the prefecture's k
    assert strict.k == 40 and all(c.pupils is None or c.pupils >= 40 for c in strict.cells)
    assert shared.k == 10 and any(c.pupils is not None and c.pupils < 40 for c in shared.cells)


def test_school_answers_come_from_the_same_protected_table(muni):
    with in_tenant(muni):
        schools = [
            row[0]
            for row in _sql("""
            SELECT DISTINCT sc.code FROM edudata_attendancepupilyear y
            JOIN edudata_school sc ON sc.id = y.school_id ORDER BY 1""")
        ]
        whole = compute("attendance_rate", muni, school_year=SCHOOL_YEAR)
        parts = [
            compute("attendance_rate", muni, school_year=SCHOOL_YEAR, school_code=s)
            for s in schools
        ]
        with pytest.raises(ValueError, match="学校コード"):
            compute("attendance_rate", muni, school_year=SCHOOL_YEAR, school_code="B113999999999")
    assert len(schools) >= 2
    if all(not p.cells[0].suppressed for p in parts):
        # Each released figure has its own noise: the parts add up to the whole within the
        # published tolerance (docs/disclosure.md), not exactly.
        assert near(
            sum(p.cells[0].numerator for p in parts),
            whole.cells[0].numerator,
            parts=len(parts) + 1,
            bound=DAYS_NOISE,
        )


# -- the differencing battery -----------------------------------------------------------------


def _subsets(dims):
    return [list(c) for n in range(len(dims) + 1) for c in itertools.combinations(dims, n)]


class Universe:
    """The finest cells of each quantity, from the raw data of one municipality."""

    def __init__(self, prefix=()):
        self.prefix = tuple(prefix)
        rows = _sql("""SELECT DISTINCT sc.code, sc.school_type FROM edudata_attendancepupilyear y
                       JOIN edudata_school sc ON sc.id = y.school_id""")
        self.schools = dict(rows)
        self.grades: set[str] = set()
        self.months: set[str] = set()
        self.nurse_months: set[str] = set()
        self.m365_months: set[str] = set()
        self.learning_months: set[str] = set()

    def school_grades(self, school, g):
        schools = self.schools if school == TOTAL else {school: self.schools[school]}
        return [
            (s, leaf)
            for s, kind in schools.items()
            for leaf in self.grades
            if leaf.startswith(kind + "-") and in_grade(leaf, g)
        ]

    def months_of(self, m, months):
        return sorted(months) if m == str(SCHOOL_YEAR) else [m]

    def atoms(self, school, g, *rest):
        return [
            self.prefix + sg + tuple(r)
            for sg in self.school_grades(school, g)
            for r in itertools.product(*rest)
        ]


def collect(battery: Battery, universe: Universe, muni, schools) -> None:
    """Ask every metric at every breakdown, for the municipality and each school."""
    U = universe
    tables = []
    for spec in METRICS.values():
        for breakdown in _subsets(spec.dimensions):
            for school in (TOTAL, *schools):
                table = compute(
                    spec.name,
                    muni,
                    school_year=SCHOOL_YEAR,
                    breakdown=breakdown,
                    school_code=None if school == TOTAL else school,
                )
                tables.append((spec.name, school, table))
                for cell in table.cells:
                    g = cell.key.get("grade", TOTAL)
                    if "-" in g:
                        U.grades.add(g)
                    m = cell.key.get("month", str(SCHOOL_YEAR))
                    if m != str(SCHOOL_YEAR):
                        {
                            "nurse_visits_per_100": U.nurse_months,
                            "m365_active_rate": U.m365_months,
                            "learning_minutes_distribution": U.learning_months,
                            "learning_active_rate": U.learning_months,
                        }.get(spec.name, U.months).add(m)
    months_all = U.months | U.nurse_months
    for name, school, table in tables:
        for cell in table.cells:
            if cell.reason_code == metrics.NO_DATA:
                continue
            key = cell.key
            g = key.get("grade", TOTAL)
            m = key.get("month", str(SCHOOL_YEAR))
            what = (name, school, tuple(sorted(key.items())))
            if name in ("long_term_absence", "absence_days_distribution"):
                dim = "absence_category" if name == "long_term_absence" else "absence_days"
                bins = LONG_TERM_BINS if name == "long_term_absence" else DISTRIBUTION_BINS
                c = key[dim]
                battery.figure(
                    "pop",
                    U.atoms(school, g, ALL_BINS if c == TOTAL else bins[c]),
                    cell.pupils,
                    what,
                )
                battery.figure("pop", U.atoms(school, g, ALL_BINS), cell.denominator, what)
            elif name == "futoko":  # its count: tests/edudata/test_release_attack.py
                battery.figure("pop", U.atoms(school, g, ALL_BINS), cell.denominator, what)
            elif name == "attendance_rate":
                if m == str(SCHOOL_YEAR):
                    battery.figure("pop", U.atoms(school, g, ALL_BINS), cell.pupils, what)
                else:
                    battery.figure(
                        "month", U.atoms(school, g, ("lt10", "ge10"), [m]), cell.pupils, what
                    )
                days = U.atoms(school, g, ("lt10", "ge10"), U.months_of(m, U.months))
                battery.figure("attended", days, cell.numerator, what)
                battery.figure("required", days, cell.denominator, what)
            elif name == "monthly_absence_10_days":
                c = key["monthly_absence"]
                cats = ("lt10", "ge10") if c == TOTAL else (c,)
                battery.figure(
                    "month", U.atoms(school, g, cats, U.months_of(m, U.months)), cell.pupils, what
                )
                battery.figure(
                    "month",
                    U.atoms(school, g, ("lt10", "ge10"), U.months_of(m, U.months)),
                    cell.denominator,
                    what,
                )
            elif name == "nurse_visits_per_100":
                r = key["nurse_reason"]
                reasons = metrics.NURSE_REASONS if r == TOTAL else (r,)
                atoms = U.atoms(school, g, reasons, U.months_of(m, months_all))
                battery.figure("nurse_pupils", atoms, cell.pupils, what)
                battery.figure("nurse_visits", atoms, cell.numerator, what)
                if m == str(SCHOOL_YEAR):
                    battery.figure("pop", U.atoms(school, g, ALL_BINS), cell.denominator, what)
                else:
                    battery.figure(
                        "month", U.atoms(school, g, ("lt10", "ge10"), [m]), cell.denominator, what
                    )
            elif name == "m365_active_rate":
                battery.figure(
                    "m365",
                    U.atoms(school, g, (key["app"],), U.months_of(m, U.m365_months)),
                    cell.pupils,
                    what,
                )
                battery.figure(
                    "month",
                    U.atoms(school, g, ("lt10", "ge10"), U.months_of(m, U.m365_months)),
                    cell.denominator,
                    what,
                )
            elif name in ("learning_minutes_distribution", "learning_active_rate"):
                b = key.get("learning_minutes", metrics.LEARNING_ACTIVE)
                months = U.months_of(m, U.learning_months)
                population = U.atoms(school, g, ("lt10", "ge10"), months)
                if b == TOTAL:
                    battery.figure("month", population, cell.pupils, what)
                else:
                    bins = metrics.LEARNING_BINS[1:] if b == metrics.LEARNING_ACTIVE else (b,)
                    battery.figure("learning", U.atoms(school, g, bins, months), cell.pupils, what)
                battery.figure("month", population, cell.denominator, what)
            elif name == "assessment_score_distribution":
                leaves = metrics._SCORE_LEAVES
                groups = {"0-39": leaves[:4], "40-69": leaves[4:7], "70-100": leaves[7:]}
                b = key["score_bin"]
                bins = leaves if b == TOTAL else groups.get(b, (b,))
                battery.figure(
                    "assessment", U.atoms(school, g, (key["subject"],), bins), cell.pupils, what
                )
                battery.figure(
                    "assessment",
                    U.atoms(school, g, (key["subject"],), leaves),
                    cell.denominator,
                    what,
                )


def test_no_withheld_figure_can_be_derived_from_released_ones(muni):
    # given every answer the municipality gives, for itself and for each of its schools
    battery = Battery()
    with in_tenant(muni):
        universe = Universe()
        collect(battery, universe, muni, sorted(universe.schools))
    # then
    assert sum(len(v) for v in battery.withheld.values()) > 500
    assert sum(len(v) for v in battery.released.values()) > 500
    assert battery.leaks() == []


def test_the_battery_finds_a_leak_when_there_is_one():
    # given a table whose only suppressed cell is recoverable as total minus the rest
    battery = Battery()
    battery.figure("pop", [1, 2, 3], 30, "total")
    battery.figure("pop", [1, 2], 25, "released part")
    battery.figure("pop", [3], None, "hidden part")
    battery.figure("pop", [4, 5], None, "hidden pair")
    # then the first is found, the unrelated pair is not
    assert battery.leaks() == [("pop", "hidden part")]
