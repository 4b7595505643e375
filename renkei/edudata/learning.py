"""Learning-tool time by ISO week (Monday to Sunday, in the school's time zone), for the
boards: one pupil's minutes per week and subject, and a class's weeks.

Learning activity (xAPI statements, drill rows) is not a sensitive class (DESIGN rule 6):
the boards show it to the pupil's school like attendance. Who may read it is decided by the
caller (the boards go through the policy and the access log); these functions only count.
A pupil's own board shows their minutes whether or not they opted out of analysis (the
school's records stay); a class's figures are an aggregate, so opted-out pupils are left
out of them (DESIGN rule 3) - the caller passes analyzable pupils only.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from renkei.edudata.models import LearningActivity

DEFAULT_WEEKS = 8
MAX_WEEKS = 26


@dataclass(frozen=True)
class SubjectMinutes:
    subject: str  # as the tool names it; "" when it does not say
    minutes: int
    activities: int


@dataclass(frozen=True)
class PupilWeek:
    week_start: dt.date  # a Monday
    minutes: int
    activities: int
    subjects: tuple[SubjectMinutes, ...]  # most minutes first


@dataclass(frozen=True)
class ClassWeek:
    week_start: dt.date
    pupils: int  # analyzable pupils of the class
    active_pupils: int  # with any learning activity in the week
    total_minutes: int
    median_minutes: float  # over every pupil of the class, those without activity at 0


def week_starts(as_of: dt.date, weeks: int) -> list[dt.date]:
    """The Mondays of the ``weeks`` ISO weeks up to the one of ``as_of``, oldest first.
    ValueError (Japanese) outside 1..MAX_WEEKS."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"週の数は 1〜{MAX_WEEKS} で指定してください（指定: {weeks}）。")
    last = as_of - dt.timedelta(days=as_of.weekday())
    return [last - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def _minutes(seconds: int) -> int:
    return (seconds + 30) // 60  # to the nearest minute, as the rollup rounds


def _seconds_by_week(student_ids: Iterable[int], starts: list[dt.date], as_of: dt.date, *by: str):
    """Rows of (week, *by, seconds, activities) from the first Monday to the end of as_of."""
    zone = timezone.get_current_timezone()
    since = dt.datetime.combine(starts[0], dt.time.min, tzinfo=zone)
    until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return (
        LearningActivity.objects.filter(
            student_id__in=list(student_ids), occurred_at__gte=since, occurred_at__lt=until
        )
        .annotate(week=TruncWeek("occurred_at", tzinfo=zone))
        .values("week", *by)
        .annotate(seconds=Coalesce(Sum("duration_seconds"), 0), activities=Count("id"))
        .order_by()
    )


def pupil_weeks(student_id: int, as_of: dt.date, weeks: int = DEFAULT_WEEKS) -> list[PupilWeek]:
    """One pupil's learning minutes in each of the recent ISO weeks, with their subjects
    (weeks without activity included, at 0)."""
    starts = week_starts(as_of, weeks)
    per_week: dict[dt.date, list[tuple[str, int, int]]] = {start: [] for start in starts}
    for row in _seconds_by_week([student_id], starts, as_of, "subject"):
        per_week[row["week"].date()].append((row["subject"], row["seconds"], row["activities"]))
    out = []
    for start, parts in per_week.items():
        parts.sort(key=lambda p: (-p[1], p[0]))
        out.append(
            PupilWeek(
                week_start=start,
                minutes=_minutes(sum(p[1] for p in parts)),
                activities=sum(p[2] for p in parts),
                subjects=tuple(SubjectMinutes(s, _minutes(sec), n) for s, sec, n in parts),
            )
        )
    return out


def class_weeks(
    student_ids: Iterable[int], as_of: dt.date, weeks: int = DEFAULT_WEEKS
) -> list[ClassWeek]:
    """A class's learning time per ISO week: pupils, how many used a learning tool, total
    and median minutes per pupil. ``student_ids``: the class's analyzable pupils."""
    ids = list(student_ids)
    starts = week_starts(as_of, weeks)
    minutes: dict[dt.date, dict[int, int]] = {start: {} for start in starts}
    for row in _seconds_by_week(ids, starts, as_of, "student_id"):
        minutes[row["week"].date()][row["student_id"]] = _minutes(row["seconds"])
    return [
        ClassWeek(
            week_start=start,
            pupils=len(ids),
            active_pupils=len(used),
            total_minutes=sum(used.values()),
            median_minutes=float(statistics.median([used.get(i, 0) for i in ids])) if ids else 0.0,
        )
        for start, used in minutes.items()
    ]
