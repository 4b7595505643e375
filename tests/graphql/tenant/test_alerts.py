"""The alert rules (renkei.edudata.alerts) on hand-made registers. (Here rather than in
tests/edudata because the class board is their only consumer so far.)"""

import datetime as dt

import pytest

from renkei.edudata import alerts
from renkei.edudata.models import AttendanceDay, Student
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

D = dt.date


def register(student, marks: dict[dt.date, str]) -> None:
    AttendanceDay.objects.bulk_create(
        AttendanceDay(student=student, date=d, status=s) for d, s in marks.items()
    )


@pytest.fixture
def pupil(school_world, shibuya):
    with in_tenant(shibuya):
        yield school_world["a1"]


def summary(student, as_of):
    return alerts.summarize_absences([student.pk], as_of)[student.pk]


def test_a_weekend_does_not_break_a_run_of_school_days(pupil):
    # Thu, Fri absent; Sat/Sun no records; Mon absent → 3 school days in a row.
    register(
        pupil,
        {
            D(2025, 6, 4): "present",
            D(2025, 6, 5): "absent_illness",
            D(2025, 6, 6): "absent_illness",
            D(2025, 6, 9): "absent_other",
        },
    )
    s = summary(pupil, D(2025, 6, 9))
    assert (s.run_days, s.run_first, s.run_last) == (3, D(2025, 6, 5), D(2025, 6, 9))
    [alert] = alerts.evaluate(s, alerts.Thresholds())
    assert alert.message == "3 日連続で欠席しています（6/5〜6/9）"


@pytest.mark.parametrize("breaker", ["present", "late", "early_leave", "suspension", "mourning"])
def test_anything_but_an_absence_ends_a_run(pupil, breaker):
    register(
        pupil,
        {
            D(2025, 6, 2): "absent_illness",
            D(2025, 6, 3): "absent_illness",
            D(2025, 6, 4): breaker,
            D(2025, 6, 5): "absent_accident",
        },
    )
    s = summary(pupil, D(2025, 6, 5))
    assert s.run_days == 1
    assert s.month_days == 3  # 出席停止・忌引 and late/early leave are not absences
    assert alerts.evaluate(s, alerts.Thresholds()) == []


def test_records_after_the_reference_day_are_ignored(pupil):
    register(
        pupil,
        {
            D(2025, 6, 2): "absent_illness",
            D(2025, 6, 3): "absent_illness",
            D(2025, 6, 4): "absent_illness",
            D(2025, 6, 5): "present",
        },
    )
    assert summary(pupil, D(2025, 6, 4)).run_days == 3
    assert summary(pupil, D(2025, 6, 5)).run_days == 0


def test_month_and_school_year_boundaries(pupil):
    register(
        pupil,
        {
            D(2025, 3, 31): "absent_illness",  # 2024年度
            D(2025, 4, 30): "absent_illness",
            D(2025, 5, 1): "present",
            D(2025, 5, 2): "absent_other",
        },
    )
    s = summary(pupil, D(2025, 5, 2))
    assert (s.month_days, s.year_days, s.run_days) == (1, 2, 1)
    march = summary(pupil, D(2025, 3, 31))
    assert (march.month_days, march.year_days) == (1, 1)


def test_a_run_may_cross_the_school_year(pupil):
    register(
        pupil,
        {
            D(2025, 3, 20): "present",
            D(2025, 3, 21): "absent_illness",
            D(2025, 3, 24): "absent_illness",
            D(2025, 4, 7): "absent_illness",
        },
    )
    s = summary(pupil, D(2025, 4, 7))
    assert (s.run_days, s.run_first, s.year_days) == (3, D(2025, 3, 21), 1)


def test_no_records_no_alert(pupil):
    s = summary(pupil, D(2025, 6, 5))
    assert (s.month_days, s.year_days, s.run_days) == (0, 0, 0)
    assert alerts.summarize_absences([], D(2025, 6, 5)) == {}


def test_thresholds_and_messages():
    s = alerts.AbsenceSummary(
        1,
        D(2025, 6, 20),
        month_days=10,
        year_days=30,
        run_days=2,
        run_first=D(2025, 6, 19),
        run_last=D(2025, 6, 20),
    )
    messages = [a.message for a in alerts.evaluate(s, alerts.Thresholds(3, 10, 30))]
    assert messages == [
        "今月（6 月）の欠席が 10 日になりました（6/1〜6/20）",
        "今年度（2025 年度）の欠席が 30 日になりました（4/1〜6/20）",
    ]
    assert alerts.evaluate(s, alerts.Thresholds(3, 11, 31)) == []
    assert [a.rule for a in alerts.evaluate(s, alerts.Thresholds(2, 11, 31))] == [
        alerts.Rule.CONSECUTIVE_ABSENCE
    ]


def test_opted_out_pupils_get_no_alerts_and_are_not_even_counted(
    pupil, shibuya, django_assert_num_queries
):
    register(pupil, {D(2025, 6, d): "absent_illness" for d in (2, 3, 4, 5)})
    thresholds = alerts.Thresholds.of(shibuya)
    assert [
        a.rule for a in alerts.alerts_for_students([pupil], thresholds, D(2025, 6, 5))[pupil.pk]
    ] == [alerts.Rule.CONSECUTIVE_ABSENCE]
    Student.objects.filter(pk=pupil.pk).update(opted_out_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    pupil.refresh_from_db()
    with django_assert_num_queries(0):
        assert alerts.alerts_for_students([pupil], thresholds, D(2025, 6, 5)) == {pupil.pk: []}
    assert alerts.alerts_for(pupil, summary(pupil, D(2025, 6, 5)), thresholds) == []


def test_rules_are_described_in_plain_japanese():
    described = alerts.describe_rules(alerts.Thresholds(3, 10, 30))
    assert [d.threshold for d in described] == [3, 10, 30]
    assert all("欠席" in d.description for d in described)
