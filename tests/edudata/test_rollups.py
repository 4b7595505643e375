"""Rollups refreshed for some pupils only (an opt-out, its withdrawal) end exactly as a full
refresh of every school year would."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from renkei.accounts import policy
from renkei.connectors.pipeline import do_import
from renkei.edudata import rollups
from renkei.edudata.codes import LongAbsenceReason
from renkei.edudata.models import (
    AbsenceClassification,
    AssessmentResult,
    AttendanceDay,
    LearningActivity,
    M365DailyUsage,
    NurseVisit,
    Student,
    school_year_of,
)
from renkei.edudata.privacy import do_record_opt_out, do_withdraw_opt_out
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

TEST_ACTOR = Actor.system("test")


def rollup_rows() -> dict[str, list[tuple]]:
    """Every rollup table's rows, without their ids, in one order."""
    tables = {}
    with connection.cursor() as cursor:
        for rollup in rollups._REFRESH:
            cursor.execute(f"SELECT {rollup.columns} FROM {rollup.table} ORDER BY {rollup.columns}")
            tables[rollup.table] = cursor.fetchall()
    return tables


def after_a_full_refresh() -> dict[str, list[tuple]]:
    rollups.refresh(rollups.years_with_data(), kind=None)
    return rollup_rows()


def test_an_opt_out_and_its_withdrawal_refresh_what_a_full_refresh_would(
    make_user, shibuya, synth_data
):
    for connector, paths in (
        ("oneroster", [synth_data / "oneroster"]),  # the pupils' Microsoft 365 accounts
        ("c4th", sorted((synth_data / "c4th").glob("*.csv"))),
        ("msgraph", [synth_data / "msgraph"]),
        ("drill", sorted((synth_data / "drill").glob("*.csv"))),
    ):
        run = do_import(connector, shibuya, actor=TEST_ACTOR, paths=paths)
        assert run.status == "succeeded", run.message
    admin = policy.principal_for(make_user("admin-s", "tenant_admin", municipality=shibuya))
    with in_tenant(shibuya):
        # A pupil with rows in every source of a rollup, and a classmate beside them.
        having = set(Student.objects.values_list("pk", flat=True))
        for model in (
            AttendanceDay,
            NurseVisit,
            M365DailyUsage,
            LearningActivity,
            AssessmentResult,
        ):
            having &= set(model.objects.values_list("student_id", flat=True))
        assert having, "the synthetic data gives some pupil rows of every kind"
        pupil = Student.objects.get(pk=min(having))
        classmate = (
            Student.objects.filter(school=pupil.school, grade=pupil.grade)
            .exclude(pk=pupil.pk)
            .first()
        )
        year = school_year_of(AttendanceDay.objects.values_list("date", flat=True).first())
        for who in (pupil, classmate):
            AbsenceClassification.objects.create(
                student=who,
                school_year=year,
                reason=LongAbsenceReason.FUTOKO,
                absence_days=30,
                decided_at=timezone.now(),
                decided_by="test",
            )
        before = after_a_full_refresh()
        assert all(before.values()), [t for t, rows in before.items() if not rows]

        do_record_opt_out(admin, shibuya, pupil)
        opted_out = rollup_rows()
        # The pupil's rows went, and every cell that counted them changed ...
        for rollup in rollups._REFRESH:
            if rollup.by_pupil:
                assert [r for r in opted_out[rollup.table] if r[0] == pupil.pk] == []
                assert [r for r in before[rollup.table] if r[0] == pupil.pk] != []
        assert [t for t in before if opted_out[t] == before[t]] == []
        # ... exactly as recomputing everything makes them.
        assert after_a_full_refresh() == opted_out

        do_withdraw_opt_out(admin, shibuya, pupil)
        assert rollup_rows() == before
        assert after_a_full_refresh() == before
