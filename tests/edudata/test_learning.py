"""The learning rollup: a pupil-month of learning-tool use per pupil who used one, in the
school's time zone; refreshed by opt-outs like every rollup."""

import datetime as dt

import pytest
from django.db import transaction

from renkei.accounts import policy
from renkei.edudata import learning, rollups
from renkei.edudata.models import LearningActivity, LearningPupilMonth
from renkei.edudata.privacy import do_record_opt_out, do_withdraw_opt_out
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

JST = dt.timezone(dt.timedelta(hours=9))


def _activity(student, when, minutes, n):
    return LearningActivity(
        student=student,
        verb="http://adlnet.gov/expapi/verbs/completed",
        object_id=f"https://drill.example.jp/units/{n}",
        occurred_at=when,
        duration_seconds=None if minutes is None else 60 * minutes,
        source_system="xapi",
    )


@pytest.fixture
def used(school_world, shibuya):
    """a1: 300 minutes in June (one of them at 01:00 on 6/1 in Japan, still May in UTC), one
    activity without a duration on 7/1; b1: one activity without a duration in June."""
    a1, b1 = school_world["a1"], school_world["b1"]
    with in_tenant(shibuya), transaction.atomic():
        LearningActivity.objects.bulk_create(
            [
                _activity(a1, dt.datetime(2025, 6, 1, 1, tzinfo=JST), 100, 1),
                _activity(a1, dt.datetime(2025, 6, 30, 23, 30, tzinfo=JST), 200, 2),
                _activity(a1, dt.datetime(2025, 7, 1, 9, tzinfo=JST), None, 3),
                _activity(b1, dt.datetime(2025, 6, 10, 9, tzinfo=JST), None, 4),
            ]
        )
        rollups.refresh([2025])
    return school_world


def _rows(shibuya):
    with in_tenant(shibuya):
        return {
            (r.student_id, r.month): (r.activities, r.minutes, r.weekly_minutes)
            for r in LearningPupilMonth.objects.all()
        }


def test_a_pupil_month_has_minutes_and_their_weekly_average(used, shibuya):
    a1, b1 = used["a1"].pk, used["b1"].pk
    # June: 300 minutes over 30 days is 70 a week; activity without a duration is use at 0
    assert _rows(shibuya) == {
        (a1, 6): (2, 300, 70),
        (a1, 7): (1, 0, 0),
        (b1, 6): (1, 0, 0),
    }


def test_opting_out_removes_the_pupil_from_the_rollup_and_withdrawing_brings_them_back(
    make_user, used, shibuya
):
    admin = policy.principal_for(make_user("admin-s", "tenant_admin", municipality=shibuya))
    a1 = used["a1"]
    with in_tenant(shibuya):
        do_record_opt_out(admin, shibuya, a1)
    assert {student for student, _month in _rows(shibuya)} == {used["b1"].pk}
    with in_tenant(shibuya):
        do_withdraw_opt_out(admin, shibuya, a1)
    assert (a1.pk, 6) in _rows(shibuya)


def test_week_starts_are_the_mondays_up_to_the_reference_day():
    sunday = dt.date(2025, 6, 8)
    assert learning.week_starts(sunday, 2) == [dt.date(2025, 5, 26), dt.date(2025, 6, 2)]
    assert learning.week_starts(dt.date(2025, 6, 9), 1) == [dt.date(2025, 6, 9)]
    with pytest.raises(ValueError, match="週の数は 1〜26"):
        learning.week_starts(sunday, 0)
