"""The class board on realistic data loaded through the real connectors (synthetic OneRoster +
C4th exports), checked against a plain-Python reading of the attendance register."""

import datetime as dt

import pytest

from renkei.connectors.pipeline import do_import
from renkei.demo import synth
from renkei.edudata.codes import ABSENCE_STATUSES
from renkei.edudata.models import AttendanceDay, Enrollment, Homeroom, ImportRun, Student
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

QUERY = """query($id: ID!, $asOf: Date!) { classBoard(homeroomId: $id, asOf: $asOf) {
  pupils { pupil { id optedOut } absenceSummary { thisMonth thisSchoolYear consecutive }
           alerts { rule days message } } } }"""


def reference(records: list[tuple[dt.date, str]], as_of: dt.date, thresholds=(3, 10, 30)):
    """The rules read literally: the trailing run of absences, this month, this school year."""
    records = sorted(r for r in records if r[0] <= as_of)
    run = 0
    for _, status in reversed(records):
        if status not in ABSENCE_STATUSES:
            break
        run += 1
    year_start = dt.date(as_of.year if as_of.month >= 4 else as_of.year - 1, 4, 1)
    month = sum(1 for d, s in records if s in ABSENCE_STATUSES and d >= as_of.replace(day=1))
    year = sum(1 for d, s in records if s in ABSENCE_STATUSES and d >= year_start)
    rules = [
        rule
        for rule, days, limit in (
            ("CONSECUTIVE_ABSENCE", run, thresholds[0]),
            ("MONTHLY_ABSENCE", month, thresholds[1]),
            ("YEARLY_ABSENCE", year, thresholds[2]),
        )
        if days >= limit
    ]
    return {"thisMonth": month, "thisSchoolYear": year, "consecutive": run}, rules


def test_class_board_on_imported_synthetic_data(client, gql, make_user, osaka, tmp_path):
    # given: 200 pupils, 80 school days, imported through the OneRoster and C4th connectors,
    # and low thresholds so that a class of a dozen pupils crosses them
    osaka.alert_consecutive_absence_days, osaka.alert_monthly_absence_days = 2, 3
    osaka.alert_yearly_absence_days = 5
    osaka.save()
    out = tmp_path / "synth"
    synth.generate(osaka.code, out, students=200, days=80, seed=7)
    for connector, paths in (
        ("oneroster", [out / "oneroster"]),
        ("c4th", sorted((out / "c4th").glob("*.csv"))),
    ):
        run = do_import(connector, osaka, actor=Actor.system("test"), paths=paths)
        assert run.status == ImportRun.Status.SUCCEEDED, run.message
    with in_tenant(osaka):
        homeroom = (
            Homeroom.objects.select_related("school")
            .filter(school__code=synth.school_codes(osaka.code, 3)[0])
            .order_by("grade", "name")
            .first()
        )
        students = list(Student.objects.filter(enrollments__homeroom=homeroom))
        # One pupil opts out: same records, no alerts.
        opted = students[0]
        Student.objects.filter(pk=opted.pk).update(
            opted_out_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
        )
        records: dict[int, list] = {}
        for student_id, day, status in AttendanceDay.objects.filter(
            student__in=students
        ).values_list("student_id", "date", "status"):
            records.setdefault(student_id, []).append((day, status))
        last_day = max(d for rows in records.values() for d, _ in rows)
        enrolled = Enrollment.objects.filter(homeroom=homeroom).count()
    client.force_login(
        make_user("teacher-osaka", "teacher", municipality=osaka, schools=[homeroom.school.code])
    )
    alerts_seen = 0
    for as_of in (dt.date(2025, 5, 30), dt.date(2025, 6, 20), last_day):
        # when
        r = gql(client, QUERY, {"id": homeroom.pk, "asOf": str(as_of)}, code=osaka.code)
        # then
        assert not r.errors, r.text
        pupils = r.data["classBoard"]["pupils"]
        assert len(pupils) == enrolled
        for row in pupils:
            pk = int(row["pupil"]["id"])
            summary, rules = reference(records.get(pk, []), as_of, thresholds=(2, 3, 5))
            assert row["absenceSummary"] == summary, (pk, as_of)
            if pk == opted.pk:
                assert row["pupil"]["optedOut"] and row["alerts"] == []
            else:
                assert [a["rule"] for a in row["alerts"]] == rules, (pk, as_of)
                alerts_seen += len(rules)
    assert alerts_seen > 0  # the synthetic absences do trigger the rules somewhere
