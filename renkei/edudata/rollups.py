"""Rollups: precomputed tables that dashboards and cross-tenant aggregates read instead of raw
rows. Only analyzable pupils (no opt-out) are in them. Refreshed per school year by imports and
by opt-out changes; each refresh replaces the year's rows in the caller's transaction (an
import, only those of the rollups and months its rows can change)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from renkei.edudata.codes import SENSITIVE_NURSE_REASONS
from renkei.edudata.models import Student, school_year_bounds
from renkei.tenants.context import tenant_rollup_lock

log = logging.getLogger(__name__)

_ANALYZABLE = "st.opted_out_at IS NULL"
# 心の相談 and any other sensitive reason: in no rollup, so in no figure anywhere.
_SENSITIVE_NURSE = ", ".join(f"'{r}'" for r in sorted(SENSITIVE_NURSE_REASONS))

LONG_ABSENCE_REASONS = "edudata_longabsencereasonyear"


def insert_select(table: str, columns: str, select: str) -> str:
    """``INSERT INTO table (columns) SELECT * FROM (select) q``: the joins stay inside the
    subquery. On a Citus coordinator an INSERT…SELECT into a table with an identity column
    whose own SELECT joins tables is pulled to the coordinator and refused ("requires
    repartitioning"); in this shape it runs on the worker that holds the tenant's schema.
    The same statement on plain PostgreSQL."""
    return f"INSERT INTO {table} ({columns}) SELECT * FROM ({select}) q"


@dataclass(frozen=True)
class Rollup:
    table: str
    columns: str  # the columns the SELECT fills
    select: str  # its rows of school year %(year)s whose day is in %(start)s..%(end)s
    source: str  # the table it is computed from: a change there changes it
    monthly: bool = False  # keyed by month: one month's rows come from that month's rows alone
    # A row per pupil (student_id): a pupil's rows come from their own rows alone. The others
    # hold cells of a school and grade, counting the pupils labelled with them.
    by_pupil: bool = False


_REFRESH = [
    # Days are counted per pupil and month first (a city-year is millions of rows), then the
    # few pupil-month rows get their school and grade.
    Rollup(
        "edudata_attendancepupilmonth",
        (
            "student_id, school_id, school_type, grade, school_year, month, school_days, present, "
            "late, early_leave, absent_illness, absent_accident, absent_other, suspension, "
            "mourning"
        ),
        f"""
        SELECT a.student_id, st.school_id, sc.school_type, st.grade, %(year)s, a.month,
               a.school_days, a.present, a.late, a.early_leave, a.absent_illness,
               a.absent_accident, a.absent_other, a.suspension, a.mourning
        FROM (SELECT student_id, date_part('month', date)::int AS month, count(*) AS school_days,
                     count(*) FILTER (WHERE status = 'present') AS present,
                     count(*) FILTER (WHERE status = 'late') AS late,
                     count(*) FILTER (WHERE status = 'early_leave') AS early_leave,
                     count(*) FILTER (WHERE status = 'absent_illness') AS absent_illness,
                     count(*) FILTER (WHERE status = 'absent_accident') AS absent_accident,
                     count(*) FILTER (WHERE status = 'absent_other') AS absent_other,
                     count(*) FILTER (WHERE status = 'suspension') AS suspension,
                     count(*) FILTER (WHERE status = 'mourning') AS mourning
              FROM edudata_attendanceday WHERE date BETWEEN %(start)s AND %(end)s
              GROUP BY student_id, date_part('month', date)::int) a
        JOIN edudata_student st ON st.id = a.student_id AND {_ANALYZABLE}
        JOIN edudata_school sc ON sc.id = st.school_id""",
        "edudata_attendanceday",
        monthly=True,
        by_pupil=True,
    ),
    # Built from the monthly rollup (already analyzable only): cheap.
    Rollup(
        "edudata_attendancepupilyear",
        (
            "student_id, school_id, school_type, grade, school_year, school_days, absence_days, "
            "absent_illness, absent_accident, absent_other"
        ),
        """
        SELECT student_id, school_id, school_type, grade, school_year, sum(school_days),
               sum(absent_illness + absent_accident + absent_other), sum(absent_illness),
               sum(absent_accident), sum(absent_other)
        FROM edudata_attendancepupilmonth WHERE school_year = %(year)s
        GROUP BY student_id, school_id, school_type, grade, school_year""",
        "edudata_attendanceday",
        by_pupil=True,
    ),
    Rollup(
        "edudata_nursevisitmonth",
        "school_id, school_type, grade, school_year, month, reason_category, visits, pupils",
        f"""
        SELECT st.school_id, sc.school_type, st.grade, %(year)s,
               extract(month FROM v.visited_at AT TIME ZONE 'Asia/Tokyo')::int,
               v.reason_category, count(*), count(DISTINCT v.student_id)
        FROM edudata_nursevisit v
        JOIN edudata_student st ON st.id = v.student_id AND {_ANALYZABLE}
        JOIN edudata_school sc ON sc.id = st.school_id
        WHERE (v.visited_at AT TIME ZONE 'Asia/Tokyo')::date BETWEEN %(start)s AND %(end)s
          AND v.reason_category NOT IN ({_SENSITIVE_NURSE})
        GROUP BY 1, 2, 3, 5, 6""",
        "edudata_nursevisit",
        monthly=True,
    ),
    Rollup(
        "edudata_m365appmonth",
        "school_id, school_type, grade, school_year, month, app, active_pupils",
        f"""
        SELECT st.school_id, sc.school_type, st.grade, %(year)s,
               extract(month FROM u.date)::int, u.app, count(DISTINCT u.student_id)
        FROM edudata_m365dailyusage u
        JOIN edudata_student st ON st.id = u.student_id AND {_ANALYZABLE}
        JOIN edudata_school sc ON sc.id = st.school_id
        WHERE u.active AND u.date BETWEEN %(start)s AND %(end)s
        GROUP BY 1, 2, 3, 5, 6""",
        "edudata_m365dailyusage",
        monthly=True,
    ),
    # Learning tools (xAPI statements, drills): a pupil-month per pupil with any activity, its
    # minutes (an activity without a duration is 0 minutes but still use) and their average
    # per week of the month (minutes / days of the month x 7), in the school's time zone.
    Rollup(
        "edudata_learningpupilmonth",
        (
            "student_id, school_id, school_type, grade, school_year, month, activities, minutes, "
            "weekly_minutes"
        ),
        f"""
        SELECT l.student_id, st.school_id, sc.school_type, st.grade, %(year)s,
               extract(month FROM l.month_start)::int, l.activities, round(l.seconds / 60.0),
               round(l.seconds * 7 / (60.0 * extract(
                   day FROM l.month_start + interval '1 month' - interval '1 day')))
        FROM (SELECT student_id, date_trunc('month', occurred_at AT TIME ZONE 'Asia/Tokyo')
                     AS month_start,
                     count(*) AS activities, sum(coalesce(duration_seconds, 0)) AS seconds
              FROM edudata_learningactivity
              WHERE (occurred_at AT TIME ZONE 'Asia/Tokyo')::date BETWEEN %(start)s AND %(end)s
              GROUP BY 1, 2) l
        JOIN edudata_student st ON st.id = l.student_id AND {_ANALYZABLE}
        JOIN edudata_school sc ON sc.id = st.school_id""",
        "edudata_learningactivity",
        monthly=True,
        by_pupil=True,
    ),
    Rollup(
        "edudata_assessmentbin",
        "school_id, school_type, grade, school_year, kind, subject, score_bin, pupils",
        f"""
        SELECT st.school_id, sc.school_type, st.grade, r.school_year, r.kind, r.subject,
               least(floor(r.score / r.max_score * 10), 9)::int, count(DISTINCT r.student_id)
        FROM edudata_assessmentresult r
        JOIN edudata_student st ON st.id = r.student_id AND {_ANALYZABLE}
        JOIN edudata_school sc ON sc.id = st.school_id
        WHERE r.school_year = %(year)s
        GROUP BY 1, 2, 3, 4, 5, 6, 7""",
        "edudata_assessmentresult",
    ),
    # The school's latest decision per pupil and year (the table is append-only).
    Rollup(
        LONG_ABSENCE_REASONS,
        "student_id, school_year, reason",
        f"""
        SELECT DISTINCT ON (c.student_id) c.student_id, c.school_year, c.reason
        FROM edudata_absenceclassification c
        JOIN edudata_student st ON st.id = c.student_id AND {_ANALYZABLE}
        WHERE c.school_year = %(year)s
        ORDER BY c.student_id, c.decided_at DESC, c.id DESC""",
        "edudata_absenceclassification",
        by_pupil=True,
    ),
]


@transaction.atomic  # its deletes and inserts land together, in the caller's transaction if any
def refresh(
    school_years: Iterable[int],
    *,
    sources: Collection[str] | None = None,
    days: tuple[dt.date, dt.date] | None = None,
    kind: str | None = "correction",
    pupils: Collection[int] | None = None,
) -> None:
    """Recompute the rollups of the given school years in the current tenant: all of them, or
    those computed from the tables in ``sources``. With ``days`` (the first and last day whose
    rows changed), a monthly rollup is recomputed for those days' months only: a daily import
    then reads one month of rows, not the whole year's. With ``pupils`` (ids of pupils who
    opted out or withdrew, their labels unchanged), only what they can change: their own rows
    of the rollups by pupil, and the cells of their schools and grades in the others (an
    opt-out then reads one pupil's rows and one school's grade, not a city's years). ``kind``
    is what changed the data, for the prefecture's revision history
    (``tenants.Revision.Kind``: import, opt_out, ...; None when no figure a prefecture sees
    can change)."""
    tenant_rollup_lock()  # one refresh of a tenant at a time, to the end of the transaction
    school_years = sorted(set(school_years))
    only = {"pupils": [], "schools": [], "grades": []}
    if pupils is not None:
        labels = list(Student.objects.filter(pk__in=pupils).values_list("school_id", "grade"))
        only = {
            "pupils": list(pupils),
            "schools": sorted({school for school, _ in labels}),
            "grades": sorted({grade for _, grade in labels}),
        }
    with connection.cursor() as cursor:
        for year in school_years:
            for rollup in _REFRESH:
                if sources is not None and rollup.source not in sources:
                    continue
                start, end = school_year_bounds(year)
                rows = "school_year = %(year)s"
                if rollup.monthly and days is not None:
                    start = max(start, days[0].replace(day=1))
                    end = min(end, _month_end(days[1]))
                    if start > end:
                        continue  # no changed day in this school year
                    rows += " AND month = ANY(%(months)s)"
                select = rollup.select
                if pupils is not None:
                    # The same condition on what is deleted and on what is computed again; on
                    # columns the SELECT groups by, so PostgreSQL applies it before grouping.
                    mine = (
                        "student_id = ANY(%(pupils)s)"
                        if rollup.by_pupil
                        else "school_id = ANY(%(schools)s) AND grade = ANY(%(grades)s)"
                    )
                    rows += f" AND {mine}"
                    select = f"SELECT * FROM ({select}) affected WHERE {mine}"
                params = {
                    "year": year,
                    "start": start,
                    "end": end,
                    "months": _months(start, end),
                    **only,
                }
                cursor.execute(f"DELETE FROM {rollup.table} WHERE {rows}", params)
                cursor.execute(insert_select(rollup.table, rollup.columns, select), params)
    bump_data_version(kind, school_years)
    log.info("rollups refreshed for school years %s", school_years)


def _month_end(day: dt.date) -> dt.date:
    following = day.replace(day=28) + dt.timedelta(days=4)
    return following - dt.timedelta(days=following.day)


def _months(start: dt.date, end: dt.date) -> list[int]:
    """The calendar months from ``start``'s to ``end``'s (at most a school year's twelve)."""
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month.month)
        month = _month_end(month) + dt.timedelta(days=1)
    return months


def bump_data_version(kind: str | None = None, school_years: Iterable[int] | None = None) -> None:
    """Mark the current tenant's aggregates as changed, in the caller's transaction: the
    released tables of its prefecture are keyed by these versions (renkei.edudata.metrics),
    so the next question gets a table computed from the new data, and a rolled-back change
    leaves the old version, and the old release, in place.

    With a ``kind`` (``tenants.Revision.Kind``), each of ``school_years`` (all, when None)
    whose tables were already released and that the municipality has not closed gets a
    revision: the prefecture sees that, and when, its figures were revised. A closed year
    gets none: its figures are kept as released (renkei.edudata.history)."""
    from renkei.edudata.metrics import release
    from renkei.tenants.models import ClosedSchoolYear, Municipality, Release, Revision

    tenant = connection.tenant
    # A fresh random version, not a counter: a rolled-back change would give the next one
    # the same number, and a process that read the uncommitted rows would serve them.
    Municipality.objects.filter(pk=tenant.pk).update(data_version=secrets.randbits(62))
    if kind is not None:
        released = Release.objects.filter(prefecture_id=tenant.prefecture_id)
        if school_years is not None:
            released = released.filter(school_year__in=list(school_years))
        closed = ClosedSchoolYear.objects.filter(municipality_id=tenant.pk)
        years = set(released.values_list("school_year", flat=True)) - set(
            closed.values_list("school_year", flat=True)
        )
        today = timezone.localdate()
        for year in sorted(years):
            Revision.objects.get_or_create(
                municipality_id=tenant.pk, school_year=year, kind=kind, revised_on=today
            )
    release.warm_after_commit(tenant.prefecture_id)


def years_of(students) -> list[int]:
    """School years the pupil-keyed rollups hold rows of these pupils in: the years deleting
    them changes (the yearly and 不登校 rollups follow the monthly one)."""
    from renkei.edudata.models import AttendancePupilMonth, LearningPupilMonth

    years: set[int] = set()
    for model in (AttendancePupilMonth, LearningPupilMonth):
        rows = model.objects.filter(student__in=students).values_list("school_year", flat=True)
        years.update(rows.distinct())
    return sorted(years)


def years_with_data() -> list[int]:
    """School years that have rollups in this tenant (the years an opt-out change touches).
    From the index every rollup table has on its school year: the first and the last year,
    then whether each year between has a row. A few index probes however many rows the
    tenant holds, where a DISTINCT read them all (docs/scaling.md); not a recursive CTE,
    which Citus refuses."""
    tables = [rollup.table for rollup in _REFRESH]
    ends = " UNION ALL ".join(
        f"(SELECT min(school_year) AS y FROM {t}) UNION ALL (SELECT max(school_year) FROM {t})"
        for t in tables
    )
    has_rows = " OR ".join(f"EXISTS (SELECT 1 FROM {t} WHERE school_year = y)" for t in tables)
    bounds = f"SELECT min(y)::int AS first, max(y)::int AS last FROM ({ends}) ends"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT y FROM ({bounds}) bounds, generate_series(bounds.first, bounds.last) y"
            f" WHERE {has_rows} ORDER BY y"
        )
        return [row[0] for row in cursor.fetchall()]
