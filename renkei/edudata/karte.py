"""個人カルテ: one pupil's school years side by side, for the pupil board.

For each year: the homeroom the pupil was in (a junior high pupil's primary school years
included: the records follow the child, as 指導要録 does from school to school) and the
year's 出欠の記録 in 指導要録's columns, counted from the register (``AttendanceDay``).
Opted-out pupils included: the register is the school's record, not an analysis. The caller
has checked the reader and logged the read (``access.read_pupil``); tests and evaluations
of a year are the board's own fields with a school year.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Q, Value, When

from renkei.edudata.codes import ABSENCE_STATUSES, NOT_COUNTED_STATUSES
from renkei.edudata.models import AttendanceDay, Enrollment, Homeroom, school_year_bounds

MAX_YEARS = 12  # 小学校 to 高校: more is a mistake in the request


@dataclass(frozen=True)
class AttendanceRecord:
    """指導要録 様式2 の出欠の記録 of one school year."""

    school_days: int  # 授業日数: days the register has for the pupil
    excused_days: int  # 出席停止・忌引等の日数
    absence_days: int  # 欠席日数

    @property
    def required_days(self) -> int:
        """出席しなければならない日数."""
        return self.school_days - self.excused_days

    @property
    def attended_days(self) -> int:
        """出席日数."""
        return self.required_days - self.absence_days


@dataclass(frozen=True)
class PupilYear:
    school_year: int
    homeroom: Homeroom | None
    attendance_number: int | None
    attendance: AttendanceRecord | None  # None: the register has no day of that year


def pupil_years(student, latest: int, count: int) -> list[PupilYear]:
    """The pupil's school years from ``latest`` back over ``count`` years, newest first; only
    the years with an enrollment or register days (a 1年生 has one). Two queries."""
    if not 1 <= count <= MAX_YEARS:
        raise ValueError(f"年数は 1〜{MAX_YEARS} で指定してください（指定: {count}）。")
    years = list(range(latest, latest - count, -1))
    first, _ = school_year_bounds(years[-1])
    _, last = school_year_bounds(latest)
    year_of_day = Case(
        *(When(date__range=school_year_bounds(y), then=Value(y)) for y in years),
        output_field=IntegerField(),
    )
    counts = (
        AttendanceDay.objects.filter(student=student, date__range=(first, last))
        .annotate(school_year=year_of_day)
        .values("school_year")
        .annotate(
            days=Count("id"),
            excused=Count("id", filter=Q(status__in=NOT_COUNTED_STATUSES)),
            absent=Count("id", filter=Q(status__in=ABSENCE_STATUSES)),
        )
    )
    records = {
        row["school_year"]: AttendanceRecord(row["days"], row["excused"], row["absent"])
        for row in counts
    }
    enrollments: dict[int, Enrollment] = {}
    for enrollment in (
        Enrollment.objects.filter(student=student, homeroom__school_year__in=years)
        .select_related("homeroom__school")
        .order_by("id")  # the latest of a year wins (a move within the year)
    ):
        enrollments[enrollment.homeroom.school_year] = enrollment
    return [
        PupilYear(
            school_year=year,
            homeroom=enrollments[year].homeroom if year in enrollments else None,
            attendance_number=enrollments[year].attendance_number if year in enrollments else None,
            attendance=records.get(year),
        )
        for year in years
        if year in enrollments or year in records
    ]
