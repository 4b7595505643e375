"""Rollups refreshed for some pupils only (an opt-out, its withdrawal), or by two changes at
once, end exactly as a full refresh of every school year would."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from concurrency_support import holding, in_own_connection, in_thread, someone_waits_on_a_lock
from django.db import connection, transaction
from django.utils import timezone

from renkei.accounts import policy
from renkei.connectors.pipeline import do_import
from renkei.edudata import absence, rollups
from renkei.edudata.codes import LongAbsenceReason
from renkei.edudata.models import (
    AbsenceClassification,
    AssessmentBin,
    AssessmentResult,
    AttendanceDay,
    AttendancePupilMonth,
    LearningActivity,
    M365AppMonth,
    M365DailyUsage,
    NurseVisit,
    NurseVisitMonth,
    OptOut,
    RightsRequest,
    School,
    Student,
    school_year_of,
)
from renkei.edudata.privacy import OptOutError, do_record_opt_out, do_withdraw_opt_out
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


def test_the_years_with_data_are_those_of_any_rollup_row_gaps_left_out(school_world, shibuya):
    school = school_world["A"]
    cell = {"school": school, "school_type": "B1", "grade": 3}
    with in_tenant(shibuya):
        assert rollups.years_with_data() == []
        NurseVisitMonth.objects.create(
            **cell, school_year=2021, month=5, reason_category="injury", visits=1, pupils=1
        )
        AssessmentBin.objects.create(
            **cell, school_year=2024, kind="national", subject="国語", score_bin=5, pupils=1
        )
        M365AppMonth.objects.create(**cell, school_year=2024, month=5, app="teams", active_pupils=1)
        assert rollups.years_with_data() == [2021, 2024]  # not 2022 nor 2023
        NurseVisitMonth.objects.create(
            **cell, school_year=2023, month=6, reason_category="illness", visits=2, pupils=1
        )
        assert rollups.years_with_data() == [2021, 2023, 2024]


YEAR = 2025


@pytest.fixture
def race_pupils(osaka):
    """Two pupils of 大阪市 with attendance and nurse visits, their rollups refreshed, all
    committed (the test's transaction would hide them from the threads' connections), and
    removed again afterwards. Yields their ids."""

    def seed() -> list[int]:
        with in_tenant(osaka), transaction.atomic():
            school = School.objects.create(
                code="B127210000018", name="大阪市立試験小学校", school_type="B1"
            )
            pupils = []
            for n in (1, 2):
                pupil = Student.objects.create(
                    pseudonym=f"race-{n}", school=school, grade=4, birth_year_month="2016-05"
                )
                for day in (dt.date(2025, 5, 7), dt.date(2025, 5, 8), dt.date(2025, 6, 2)):
                    AttendanceDay.objects.create(student=pupil, date=day, status="present")
                NurseVisit.objects.create(
                    student=pupil,
                    visited_at=dt.datetime(2025, 5, 7, 10, 0, tzinfo=dt.UTC),
                    reason_category="injury",
                )
                pupils.append(pupil.pk)
            rollups.refresh([YEAR], kind=None)
            return pupils

    def clean() -> None:
        with in_tenant(osaka), transaction.atomic(), connection.cursor() as cursor:
            for rollup in rollups._REFRESH:
                cursor.execute(f"DELETE FROM {rollup.table}")
            RightsRequest.objects.filter(student_pseudonym__startswith="race-").delete()
            Student.objects.filter(pseudonym__startswith="race-").delete()  # rows with them
            School.objects.filter(code="B127210000018").delete()

    yield in_own_connection(seed)
    in_own_connection(clean)


def stored_and_recomputed(osaka) -> tuple[dict, dict]:
    """The committed rollup rows, and what a full refresh makes of them (rolled back)."""

    def read():
        with in_tenant(osaka):
            stored = rollup_rows()
            with transaction.atomic():
                rollups.refresh([YEAR], kind=None)
                recomputed = rollup_rows()
                transaction.set_rollback(True)
        return stored, recomputed

    return in_own_connection(read)


def test_two_refreshes_at_once_count_every_row_once(osaka, race_pupils):
    """Two changes refresh the same rollups at once (an opt-out during an import's final
    refresh, two opt-outs of one class): the second waits for the first to commit, then
    recomputes from its rows. Without the rollup lock, the second's DELETE cannot see the
    first's new rows: a nurse-visit cell is counted twice, a pupil's month is refused as a
    duplicate."""
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def first() -> None:
        with in_tenant(osaka), transaction.atomic():
            rollups.refresh([YEAR], kind=None)
            holding.set()
            release.wait(60)  # commits only once the second is under way

    def second() -> None:
        with in_tenant(osaka), transaction.atomic():
            rollups.refresh([YEAR], kind=None)

    threads = [in_thread(first, failures)]
    try:
        assert holding.wait(30)
        threads.append(in_thread(second, failures))
        assert someone_waits_on_a_lock(), "the second refresh did not wait for the first"
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    stored, recomputed = stored_and_recomputed(osaka)
    # One cell: the two pupils' visits, counted once each.
    nurse = [row[1:] for row in stored["edudata_nursevisitmonth"]]
    assert nurse == [("B1", 4, 2025, 5, "injury", 2, 2)]
    assert len(stored["edudata_attendancepupilmonth"]) == 4  # two pupils, two months
    assert stored == recomputed


def test_an_opt_out_of_a_pupil_an_import_is_changing_says_so_instead_of_waiting(
    osaka, race_pupils, settings
):
    """An import whose roster changes a pupil (a new grade in April) holds the pupil's row
    to its COMMIT, minutes for a city. An opt-out of that pupil from a page then says that
    an import is running, within RENKEI_LOCK_WAIT_SECONDS, and records nothing; once the
    import has ended, the same opt-out is recorded."""
    settings.RENKEI_LOCK_WAIT_SECONDS = 0.2
    pupil = race_pupils[0]
    admin = policy.Principal(
        user_id=None,
        username="race-admin",
        grants=(policy.Grant("tenant_admin", osaka.code, None, frozenset()),),
    )
    with in_tenant(osaka):
        with connection.cursor() as cursor:  # waiting to the end fails the test, not hangs it
            cursor.execute("SET LOCAL statement_timeout = '30s'")
        student = Student.objects.get(pk=pupil)
        roster_update = (
            f"SELECT 1 FROM {osaka.schema_name}.edudata_student WHERE id = %s FOR UPDATE"
        )
        with holding(roster_update, [pupil]), pytest.raises(OptOutError, match="取り込み中"):
            do_record_opt_out(admin, osaka, student)
        assert not OptOut.objects.filter(student_id=pupil).exists()
        assert Student.objects.get(pk=pupil).opted_out_at is None

        # The import has ended. (Undone after: race_pupils removes its rows from another
        # connection, which would wait for this transaction's locks.)
        with transaction.atomic():
            do_record_opt_out(admin, osaka, student)
            assert Student.objects.get(pk=pupil).opted_out_at is not None
            assert not AttendancePupilMonth.objects.filter(student_id=pupil).exists()
            transaction.set_rollback(True)


def test_a_classification_of_a_pupil_an_import_is_changing_says_so_instead_of_waiting(
    osaka, race_pupils, settings
):
    """The same for the school's 不登校 classification: it says that an import is running,
    records nothing, and is recorded once the import has ended."""
    settings.RENKEI_LOCK_WAIT_SECONDS = 0.2
    pupil = race_pupils[0]

    def absent_30_days() -> None:  # committed: the holder below must see the pupil's row
        with in_tenant(osaka):
            first = dt.date(2025, 9, 1)
            AttendanceDay.objects.bulk_create(
                AttendanceDay(student_id=pupil, date=first + dt.timedelta(days=n),
                              status="absent_other")
                for n in range(30)
            )  # fmt: skip

    in_own_connection(absent_30_days)  # (race_pupils removes them with the pupil)
    teacher = policy.Principal(
        user_id=None,
        username="race-teacher",
        grants=(policy.Grant("teacher", osaka.code, None, frozenset({"B127210000018"})),),
        step_up=True,
    )
    with in_tenant(osaka):
        with connection.cursor() as cursor:  # waiting to the end fails the test, not hangs it
            cursor.execute("SET LOCAL statement_timeout = '30s'")
        roster_update = (
            f"SELECT 1 FROM {osaka.schema_name}.edudata_student WHERE id = %s FOR UPDATE"
        )
        with (
            holding(roster_update, [pupil]),
            pytest.raises(absence.ClassificationError, match="取り込み中"),
        ):
            absence.do_classify_long_absence(teacher, osaka, pupil, YEAR, "futoko")
        assert not AbsenceClassification.objects.filter(student_id=pupil).exists()

        with transaction.atomic():  # undone after, as above
            absence.do_classify_long_absence(teacher, osaka, pupil, YEAR, "futoko")
            assert AbsenceClassification.objects.filter(student_id=pupil).count() == 1
            transaction.set_rollback(True)


def test_an_opt_out_during_an_import_of_its_pupils_marks_neither_waits_nor_deadlocks(
    osaka, race_pupils
):
    """An import has written a pupil's marks (its checks of their pupil hold that pupil's
    row FOR KEY SHARE to its COMMIT) and has yet to refresh; the pupil opts out meanwhile.
    The opt-out locks its pupil FOR NO KEY UPDATE, which those checks pass, and takes the
    rollup lock last: it ends at once, and the import's refresh, waiting for it, ends after.
    Locked FOR UPDATE, the opt-out would wait for the import; taking the rollup lock first
    as well, it would then hold what the import's refresh waits for: a deadlock."""
    pupil = race_pupils[0]
    admin = policy.Principal(
        user_id=None,
        username="race-admin",
        grants=(policy.Grant("tenant_admin", osaka.code, None, frozenset()),),
    )
    loaded, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    new_day = dt.date(2025, 6, 3)

    def import_run() -> None:
        with in_tenant(osaka), transaction.atomic():
            AttendanceDay.objects.create(student_id=pupil, date=new_day, status="late")
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as an import checks pupils
            loaded.set()
            go.wait(60)
            rollups.refresh(
                [YEAR], sources=["edudata_attendanceday"], days=(new_day, new_day), kind=None
            )

    def opt_out() -> None:
        with in_tenant(osaka):
            do_record_opt_out(admin, osaka, Student.objects.get(pk=pupil))

    threads = [in_thread(import_run, failures)]
    try:
        assert loaded.wait(30)
        threads.append(in_thread(opt_out, failures))
        threads[1].join(15)
        assert not threads[1].is_alive(), "the opt-out waited for the import"
    finally:
        go.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    stored, recomputed = stored_and_recomputed(osaka)
    assert stored == recomputed
    # The import's refresh, after the opt-out's, left the pupil out too.
    assert [r for r in stored["edudata_attendancepupilmonth"] if r[0] == pupil] == []
    assert len(stored["edudata_attendancepupilmonth"]) == 2  # the classmate's two months
