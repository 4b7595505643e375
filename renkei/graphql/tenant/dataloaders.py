"""DataLoaders of the tenant API. One set per request, on the context (never module level: a
module-level cache would serve one user's or one tenant's rows to another).

graphene-django executes synchronously, so these are synchronous batch loaders: a parent
resolver announces the keys its children will ask for (``expect``), and the first ``load``
fetches every announced key in one query; the other children hit the cache. The class board
announces all its pupils, so its query count does not depend on the class size.

Every loader that reads pupil rows takes its pupils from ``access.visible_students`` or from
ids the board already obtained through it, so a loader cannot widen what a principal sees.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Hashable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from renkei.edudata import access, alerts
from renkei.edudata.models import AttendanceDay, Homeroom, School

if TYPE_CHECKING:
    from renkei.graphql.tenant.context import RequestContext

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchLoader(Generic[K, V]):
    """Loads values by key, batching every announced key into one ``batch_load`` call."""

    def __init__(self, context: RequestContext):
        self.context = context
        self._cache: dict[K, V] = {}
        self._pending: set[K] = set()
        self.batches = 0  # how many times batch_load ran (tests look at it)

    def batch_load(self, keys: list[K]) -> dict[K, V]:
        raise NotImplementedError

    def missing(self, key: K) -> Any:
        return None

    def expect(self, keys: Iterable[K]) -> None:
        self._pending.update(k for k in keys if k not in self._cache)

    def prime(self, key: K, value: V) -> None:
        self._cache.setdefault(key, value)
        self._pending.discard(key)

    def load(self, key: K) -> V:
        if key not in self._cache:
            keys = list(self._pending | {key})
            self._pending.clear()
            self.batches += 1
            found = self.batch_load(keys)
            for k in keys:
                self._cache[k] = found[k] if k in found else self.missing(k)
            for k, value in found.items():  # a batch may answer more than it was asked
                self._cache.setdefault(k, value)
        return self._cache[key]


class StudentById(BatchLoader[int, Any]):
    """Pupils this principal may see (policy-scoped: an id outside it loads as None)."""

    def batch_load(self, keys):
        ctx = self.context
        students = access.visible_students(ctx.principal, ctx.municipality).filter(pk__in=keys)
        return {s.pk: s for s in students}


class NameByStudent(BatchLoader[int, tuple[str, str]]):
    """(name, kana) from the identity table, which only school-scoped views read."""

    def batch_load(self, keys):
        return access.pupil_names(keys)

    def missing(self, key):
        return ("", "")


class AbsenceSummaryByStudent(BatchLoader[tuple[int, dt.date], alerts.AbsenceSummary]):
    """Key: (student id, reference day). One query per reference day."""

    def batch_load(self, keys):
        by_day: dict[dt.date, list[int]] = defaultdict(list)
        for student_id, day in keys:
            by_day[day].append(student_id)
        found = {}
        for day, ids in by_day.items():
            for student_id, summary in alerts.summarize_absences(ids, day).items():
                found[(student_id, day)] = summary
        return found

    def missing(self, key):
        return alerts.AbsenceSummary(key[0], key[1])


class AlertsByStudent(BatchLoader[tuple[int, dt.date], list[alerts.Alert]]):
    """Alerts by the municipality's rules; none for opted-out pupils (alerts.alerts_for)."""

    def batch_load(self, keys):
        loaders = self.context.loaders
        loaders.absence_summary.expect(keys)
        loaders.student.expect(k[0] for k in keys)
        thresholds = alerts.Thresholds.of(self.context.municipality)
        found = {}
        for key in keys:
            student = loaders.student.load(key[0])
            if student is not None:
                found[key] = alerts.alerts_for(
                    student, loaders.absence_summary.load(key), thresholds
                )
        return found

    def missing(self, key):
        return []


class RecentAttendanceByStudent(BatchLoader[tuple[int, dt.date, dt.date], list[dict]]):
    """Key: (student id, first day, last day): status marks only (no reason: it is sensitive)."""

    def batch_load(self, keys):
        by_range: dict[tuple[dt.date, dt.date], list[int]] = defaultdict(list)
        for student_id, start, end in keys:
            by_range[(start, end)].append(student_id)
        found: dict[tuple[int, dt.date, dt.date], list[dict]] = {k: [] for k in keys}
        for (start, end), ids in by_range.items():
            rows = (
                AttendanceDay.objects.filter(student_id__in=ids, date__range=(start, end))
                .order_by("student_id", "date")
                .values("student_id", "date", "status")
            )
            for row in rows:
                found[(row["student_id"], start, end)].append(row)
        return found

    def missing(self, key):
        return []


class SchoolById(BatchLoader[int, School]):
    def batch_load(self, keys):
        return {s.pk: s for s in School.objects.filter(pk__in=keys)}


class HomeroomsBySchool(BatchLoader[tuple[int, int | None], list[Homeroom]]):
    """Key: (school id, school year or None for every year). A school list announces its
    schools as ``siblings``: the year argument is only known to the child field, so the batch
    answers every sibling for each year asked."""

    def __init__(self, context: RequestContext):
        super().__init__(context)
        self.siblings: set[int] = set()

    def batch_load(self, keys):
        years = {k[1] for k in keys}
        schools = {k[0] for k in keys} | self.siblings
        found: dict[tuple[int, int | None], list[Homeroom]] = {
            (school, year): [] for school in schools for year in years
        }
        rows = Homeroom.objects.filter(school_id__in=schools).order_by(
            "school_id", "-school_year", "grade", "name"
        )
        for homeroom in rows:
            for key in ((homeroom.school_id, None), (homeroom.school_id, homeroom.school_year)):
                if key in found:
                    found[key].append(homeroom)
        return found

    def missing(self, key):
        return []


class Loaders:
    """The request's loaders, created on first use."""

    def __init__(self, context: RequestContext):
        self._context = context

    @cached_property
    def student(self) -> StudentById:
        return StudentById(self._context)

    @cached_property
    def name(self) -> NameByStudent:
        return NameByStudent(self._context)

    @cached_property
    def absence_summary(self) -> AbsenceSummaryByStudent:
        return AbsenceSummaryByStudent(self._context)

    @cached_property
    def alerts(self) -> AlertsByStudent:
        return AlertsByStudent(self._context)

    @cached_property
    def recent_attendance(self) -> RecentAttendanceByStudent:
        return RecentAttendanceByStudent(self._context)

    @cached_property
    def school(self) -> SchoolById:
        return SchoolById(self._context)

    @cached_property
    def homerooms(self) -> HomeroomsBySchool:
        return HomeroomsBySchool(self._context)
