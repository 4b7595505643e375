"""Alerts on the class and student boards: transparent rules a teacher can read, nothing else.

Privacy rule 7 (no sorting of children): an alert is a fact about the attendance register that
crossed a threshold the municipality chose, stated in plain Japanese with the days it counts
("3 日連続で欠席しています（6/3〜6/5）"). No score, no ranking, no prediction.

The rules, with the tenant's thresholds (``Municipality.alert_*``):

* consecutive absence: the pupil's most recent attendance records up to the reference day are
  absences, at least ``alert_consecutive_absence_days`` of them in a row. Days are counted in
  attendance records (school days), not calendar days, so a weekend or a holiday does not break
  a run. Any record that is not an absence (present, late, early leave, 出席停止, 忌引) ends it.
* absence this month: absence records in the calendar month of the reference day, up to it,
  at least ``alert_monthly_absence_days``.
* absence this school year: absence records since April 1 of the school year (年度) of the
  reference day, up to it, at least ``alert_yearly_absence_days``.

An absence is 欠席（病気・事故・その他）. 出席停止 and 忌引 are not absences, and late arrival or
early leave is attendance (``ABSENCE_STATUSES``).

Privacy rule 3: a pupil who opted out of analysis gets no alert at all. Their attendance
register stays visible to their school's staff (it is a legal record); only the alerts stop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.db import connection

from renkei.edudata.codes import ABSENCE_STATUSES
from renkei.edudata.models import school_year_bounds, school_year_of

OPTED_OUT_NO_ALERTS = (
    "分析除外の申出があるため、アラートの対象外です（出欠の記録はそのまま残ります）。"
)


class Rule(StrEnum):
    CONSECUTIVE_ABSENCE = "consecutive_absence"
    MONTHLY_ABSENCE = "monthly_absence"
    YEARLY_ABSENCE = "yearly_absence"


@dataclass(frozen=True)
class Thresholds:
    """The municipality's alert thresholds, in absence days."""

    consecutive: int = 3
    monthly: int = 10
    yearly: int = 30

    @classmethod
    def of(cls, municipality) -> Thresholds:
        return cls(
            consecutive=municipality.alert_consecutive_absence_days,
            monthly=municipality.alert_monthly_absence_days,
            yearly=municipality.alert_yearly_absence_days,
        )


@dataclass(frozen=True)
class RuleDescription:
    rule: Rule
    threshold: int
    description: str


@dataclass(frozen=True)
class AbsenceSummary:
    """What the rules read for one pupil on one reference day."""

    student_id: int
    as_of: dt.date
    month_days: int = 0
    year_days: int = 0
    run_days: int = 0
    run_first: dt.date | None = None
    run_last: dt.date | None = None


@dataclass(frozen=True)
class Alert:
    rule: Rule
    days: int
    threshold: int
    first_date: dt.date | None
    last_date: dt.date | None
    message: str


def describe_rules(thresholds: Thresholds) -> list[RuleDescription]:
    """The rules in plain Japanese, so a teacher can see exactly why an alert appears."""
    return [
        RuleDescription(
            Rule.CONSECUTIVE_ABSENCE,
            thresholds.consecutive,
            f"直近の出欠記録で {thresholds.consecutive} 日以上連続して欠席しているとき"
            "（出欠記録のある授業日で数えます。出席停止・忌引は欠席に数えず、"
            "連続もそこで途切れます）",
        ),
        RuleDescription(
            Rule.MONTHLY_ABSENCE,
            thresholds.monthly,
            f"今月の欠席が {thresholds.monthly} 日以上のとき",
        ),
        RuleDescription(
            Rule.YEARLY_ABSENCE,
            thresholds.yearly,
            f"今年度（4 月 1 日から）の欠席が {thresholds.yearly} 日以上のとき",
        ),
    ]


# One statement for any number of pupils: the class board's query count must not grow with the
# class size. "run" = absences after the pupil's last record that is not an absence.
_SUMMARY_SQL = """
    WITH last_not_absent AS (
        SELECT student_id, max(date) AS day
        FROM edudata_attendanceday
        WHERE student_id = ANY(%(ids)s) AND date <= %(as_of)s AND status <> ALL(%(absences)s)
        GROUP BY student_id
    )
    SELECT a.student_id,
           count(*) FILTER (WHERE a.date >= %(month_start)s),
           count(*) FILTER (WHERE a.date >= %(year_start)s),
           count(*) FILTER (WHERE a.date > COALESCE(l.day, '-infinity'::date)),
           min(a.date) FILTER (WHERE a.date > COALESCE(l.day, '-infinity'::date)),
           max(a.date) FILTER (WHERE a.date > COALESCE(l.day, '-infinity'::date))
    FROM edudata_attendanceday a
    LEFT JOIN last_not_absent l ON l.student_id = a.student_id
    WHERE a.student_id = ANY(%(ids)s) AND a.date <= %(as_of)s AND a.status = ANY(%(absences)s)
      AND (a.date >= %(year_start)s OR a.date > COALESCE(l.day, '-infinity'::date))
    GROUP BY a.student_id
"""


def summarize_absences(student_ids: Iterable[int], as_of: dt.date) -> dict[int, AbsenceSummary]:
    """Absence counts of these pupils on ``as_of``, in one query (inside the tenant schema).
    Every pupil asked for is in the result, with zeros when they have no absence."""
    ids = sorted(set(student_ids))
    if not ids:
        return {}
    year_start, _ = school_year_bounds(school_year_of(as_of))
    params = {
        "ids": ids,
        "as_of": as_of,
        "absences": sorted(ABSENCE_STATUSES),
        "month_start": as_of.replace(day=1),
        "year_start": year_start,
    }
    found: dict[int, AbsenceSummary] = {}
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL, params)
        for student_id, month, year, run, first, last in cursor.fetchall():
            found[student_id] = AbsenceSummary(student_id, as_of, month, year, run, first, last)
    return {i: found.get(i) or AbsenceSummary(i, as_of) for i in ids}


def _md(day: dt.date | None) -> str:
    return f"{day.month}/{day.day}" if day else ""


def evaluate(summary: AbsenceSummary, thresholds: Thresholds) -> list[Alert]:
    """The alerts one summary raises under the thresholds (pure; no opt-out check here, use
    ``alerts_for``)."""
    alerts = []
    if thresholds.consecutive and summary.run_days >= thresholds.consecutive:
        alerts.append(
            Alert(
                Rule.CONSECUTIVE_ABSENCE,
                summary.run_days,
                thresholds.consecutive,
                summary.run_first,
                summary.run_last,
                f"{summary.run_days} 日連続で欠席しています（{_md(summary.run_first)}〜"
                f"{_md(summary.run_last)}）",
            )
        )
    month_start = summary.as_of.replace(day=1)
    if thresholds.monthly and summary.month_days >= thresholds.monthly:
        alerts.append(
            Alert(
                Rule.MONTHLY_ABSENCE,
                summary.month_days,
                thresholds.monthly,
                month_start,
                summary.as_of,
                f"今月（{summary.as_of.month} 月）の欠席が {summary.month_days} 日になりました"
                f"（{_md(month_start)}〜{_md(summary.as_of)}）",
            )
        )
    year = school_year_of(summary.as_of)
    if thresholds.yearly and summary.year_days >= thresholds.yearly:
        year_start, _ = school_year_bounds(year)
        alerts.append(
            Alert(
                Rule.YEARLY_ABSENCE,
                summary.year_days,
                thresholds.yearly,
                year_start,
                summary.as_of,
                f"今年度（{year} 年度）の欠席が {summary.year_days} 日になりました"
                f"（{_md(year_start)}〜{_md(summary.as_of)}）",
            )
        )
    return alerts


def alerts_for(student, summary: AbsenceSummary, thresholds: Thresholds) -> list[Alert]:
    """The alerts of one pupil: none at all for a pupil who opted out of analysis."""
    if student.opted_out_at is not None:
        return []
    return evaluate(summary, thresholds)


def alerts_for_students(
    students: Sequence, thresholds: Thresholds, as_of: dt.date
) -> dict[int, list[Alert]]:
    """Alerts of several pupils on ``as_of`` (one query). Opted-out pupils are not even
    counted."""
    analyzable = [s for s in students if s.opted_out_at is None]
    summaries = summarize_absences([s.pk for s in analyzable], as_of)
    return {
        s.pk: alerts_for(s, summaries[s.pk], thresholds) if s.pk in summaries else []
        for s in students
    }
