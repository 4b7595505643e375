"""An import recomputes only the rollups its rows can change: those of the tables it wrote,
for the months of its rows. What it leaves alone must be what a full refresh would give."""

import datetime as dt

import pytest
from django.db import transaction

from renkei.connectors import reading
from renkei.edudata import rollups
from renkei.edudata.models import (
    AttendancePupilMonth,
    AttendancePupilYear,
    NurseVisit,
    NurseVisitMonth,
    Student,
)
from renkei.tenants.context import in_tenant
from tests.connectors.test_pipeline import attendance, import_c4th, roster

pytestmark = pytest.mark.django_db

YEAR = 2025


def figures() -> dict:
    """Every rollup row an attendance or nurse import can touch, with its labels."""
    return {
        "months": sorted(
            AttendancePupilMonth.objects.values_list(
                "student__pseudonym",
                "school_year",
                "month",
                "grade",
                "school_days",
                "present",
                "late",
                "absent_illness",
            )
        ),
        "years": sorted(
            AttendancePupilYear.objects.values_list(
                "student__pseudonym", "grade", "school_days", "absence_days"
            )
        ),
        "nurse": sorted(
            NurseVisitMonth.objects.values_list("grade", "month", "reason_category", "visits")
        ),
    }


def written_by(model, **filters) -> set[str]:
    """The transaction ids that wrote these rows (a row recomputed gets a new one)."""
    return set(
        model.objects.filter(**filters)
        .extra(select={"x": "xmin::text"})
        .values_list("x", flat=True)
    )


def as_a_full_refresh_gives(years=(YEAR,)) -> dict:
    """The figures after recomputing every rollup of the year from all rows, in a transaction
    rolled back: what the import's narrower refresh must have left."""
    with transaction.atomic():
        rollups.refresh(years, kind=None)
        full = figures()
        transaction.set_rollback(True)
    return full


@pytest.fixture
def year_of_marks(tmp_path, shibuya):
    """Shibuya with marks of April, June and February (three months of one school year) and
    nurse visits in June, their rollups computed."""
    marks = [
        ["", pupil, day, mark, ""]
        for day in ("R7.4.7", "R7.4.8", "R7.6.2", "R7.6.3", "R8.2.2")
        for pupil, mark in (("C001", ""), ("C002", "病"), ("C003", "遅"))
    ]
    first = import_c4th(shibuya, roster(tmp_path), attendance(tmp_path, marks))
    assert first.status == "succeeded", first.message
    with in_tenant(shibuya):
        NurseVisit.objects.bulk_create(
            NurseVisit(
                student=student,
                visited_at=dt.datetime(2025, 6, 3, 10, tzinfo=dt.UTC),
                reason_category="injury",
            )
            for student in Student.objects.all()
        )
        rollups.refresh([YEAR], kind=None)
    return shibuya


def test_a_days_import_recomputes_its_month_only_and_leaves_what_a_full_refresh_would(
    tmp_path, year_of_marks
):
    with in_tenant(year_of_marks):
        april = written_by(AttendancePupilMonth, month=4)
        february = written_by(AttendancePupilMonth, month=2)
        nurse = written_by(NurseVisitMonth)
    # The next day in June: one mark changed, one new day.
    day = attendance(
        tmp_path,
        [["", "C001", "R7.6.3", "病", ""], ["", "C002", "R7.6.4", "", ""]],
        name="june.csv",
    )
    run = import_c4th(year_of_marks, day)
    assert run.status == "succeeded", run.message
    with in_tenant(year_of_marks):
        after = figures()
        assert after == as_a_full_refresh_gives()
        june = {
            (row[0], row[4], row[7]) for row in after["months"] if row[2] == 6
        }  # (pupil, days, 病欠)
        c001 = Student.objects.get(identities__source_id="C001").pseudonym
        assert (c001, 2, 1) in june  # the changed mark is counted
        # April, February and the nurse visits were not recomputed: their rows are as written.
        assert written_by(AttendancePupilMonth, month=4) == april
        assert written_by(AttendancePupilMonth, month=2) == february
        assert written_by(NurseVisitMonth) == nurse
        assert written_by(AttendancePupilMonth, month=6) != april  # (June's were)


def test_a_roster_that_moves_a_pupil_up_relabels_every_month(tmp_path, year_of_marks):
    """A stored pupil's grade changed in the run: every rollup row of the year carries the
    new grade, as a full refresh gives, not only the months of the run's marks."""
    moved = roster(tmp_path)
    rows = moved.read_text(encoding="cp932").replace(",3,1,1,C001,", ",4,1,1,C001,")
    moved.write_text(rows, encoding="cp932")
    day = attendance(tmp_path, [["", "C001", "R7.6.4", "", ""]], name="june.csv")
    run = import_c4th(year_of_marks, moved, day)
    assert run.status == "succeeded", run.message
    with in_tenant(year_of_marks):
        after = figures()
        c001 = Student.objects.get(identities__source_id="C001").pseudonym
        assert {row[3] for row in after["months"] if row[0] == c001} == {4}
        assert after == as_a_full_refresh_gives()


def test_days_across_two_school_years_recompute_one_month_of_each(tmp_path, year_of_marks):
    """March 31 is school year 2024, April 8 is 2025: each year gets its own month only."""
    with in_tenant(year_of_marks):
        june, february = (written_by(AttendancePupilMonth, month=m) for m in (6, 2))
    marks = [["", "C001", "R7.3.31", "", ""], ["", "C001", "R7.4.8", "病", ""]]
    run = import_c4th(year_of_marks, attendance(tmp_path, marks, name="turn.csv"))
    assert run.status == "succeeded", run.message
    with in_tenant(year_of_marks):
        assert figures() == as_a_full_refresh_gives([YEAR - 1, YEAR])
        assert AttendancePupilMonth.objects.filter(school_year=YEAR - 1, month=3).count() == 1
        assert written_by(AttendancePupilMonth, month=6) == june
        assert written_by(AttendancePupilMonth, month=2) == february


def test_an_opted_out_pupil_stays_out_of_every_month_after_a_days_import(
    tmp_path, year_of_marks, make_user
):
    """The opt-out took the pupil out of every month; a day's import, which recomputes its
    own month only, must not bring them back anywhere."""
    from renkei.accounts import policy
    from renkei.edudata.privacy import do_record_opt_out

    admin = policy.principal_for(make_user("adm", "tenant_admin", municipality=year_of_marks))
    with in_tenant(year_of_marks):
        pupil = Student.objects.get(identities__source_id="C001")
        do_record_opt_out(admin, year_of_marks, pupil)
    day = [["", "C001", "R7.6.4", "病", ""], ["", "C002", "R7.6.4", "", ""]]
    run = import_c4th(year_of_marks, attendance(tmp_path, day, name="june.csv"))
    assert run.status == "succeeded", run.message
    with in_tenant(year_of_marks):
        assert not AttendancePupilMonth.objects.filter(student=pupil).exists()
        assert not AttendancePupilYear.objects.filter(student=pupil).exists()
        assert figures() == as_a_full_refresh_gives()


def test_marks_over_several_chunks_recompute_the_months_of_every_chunk(
    tmp_path, year_of_marks, monkeypatch
):
    """Each chunk's INSERT tells the first and last day it wrote: the months to recompute
    span them all, not those of the first or last chunk."""
    monkeypatch.setattr(reading, "FIRST_CHUNK_ROWS", 1)
    monkeypatch.setattr(reading, "CHUNK_ROWS", 1)
    days = attendance(
        tmp_path,
        [
            ["", "C001", "R7.6.4", "病", ""],
            ["", "C002", "R7.4.9", "病", ""],
            ["", "C003", "R7.5.1", "病", ""],
        ],
        name="days.csv",
    )
    run = import_c4th(year_of_marks, days)
    assert run.status == "succeeded", run.message
    with in_tenant(year_of_marks):
        after = figures()
        assert after == as_a_full_refresh_gives()
        assert {row[2] for row in after["months"]} == {4, 5, 6, 2}
