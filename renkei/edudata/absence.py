"""長期欠席 and 不登校: the school classifies each long-term absence (30 days or more in a
school year) by its main reason, as MEXT's annual survey (児童生徒の問題行動・不登校等生徒指導上
の諸課題に関する調査) asks, and the board of education gets the survey's table of its own
municipality.

* Who classifies: staff of the pupil's school, after step-up (absence reasons are sensitive,
  DESIGN rule 6), with :func:`do_classify_long_absence`. Each decision is a new row
  (``AbsenceClassification``), so the history stays; the latest is the current one. The
  audit event names the pupil by pseudonym and the year, never the reason: 管理 shows the
  trail to tenant admins, who are not the pupil's school.
* Which pupils: absence days are counted from the attendance register itself
  (``AttendanceDay``, a legal record), opted-out pupils included: the survey is the
  school's statutory report, not an analysis.
* The board's table (:func:`survey_table`): counts of its own municipality, by school type
  and grade and reason, as the survey's form has them. They are the municipality's own exact
  figures for its report to MEXT; nothing here leaves the tenant except as that download.
* The 不登校 metric (``futoko`` in :mod:`renkei.edudata.metrics`) counts analyzable pupils by
  their latest classification (the ``LongAbsenceReasonYear`` rollup, refreshed here), released
  with disclosure control to the municipality's own board and schools only: no prefecture
  table, federation field or widget token carries it (docs/disclosure.md).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.edudata import access, rollups
from renkei.edudata.codes import ABSENCE_STATUSES, LONG_TERM_DAYS, AttendanceStatus
from renkei.edudata.models import (
    AbsenceClassification,
    AttendanceDay,
    Enrollment,
    OutOfCalendar,
    Student,
    check_school_year,
    school_year_bounds,
    school_year_of,
)
from renkei.platform import audit
from renkei.tenants.context import waiting_briefly

log = logging.getLogger(__name__)

LongAbsenceReason = AbsenceClassification.Reason
UNCLASSIFIED = "unclassified"


class ClassificationError(ValueError):
    """A classification that cannot be recorded; the message says why (Japanese)."""


@dataclass
class LongAbsence:
    """One pupil absent LONG_TERM_DAYS or more in a school year, for the school's page."""

    student: Student
    days: int
    by_status: dict[str, int]
    current: AbsenceClassification | None = None
    history: list[AbsenceClassification] = field(default_factory=list)

    @property
    def suggested(self) -> str:
        """What the register suggests when nobody has decided yet: illness days mostly →
        病気; otherwise the school must say (不登校 or その他), so nothing is suggested."""
        if self.by_status.get(AttendanceStatus.ABSENT_ILLNESS, 0) * 2 > self.days:
            return LongAbsenceReason.ILLNESS
        return ""


def register_years() -> list[int]:
    """The school years the attendance register covers (the current one when empty)."""
    span = AttendanceDay.objects.aggregate(first=Min("date"), last=Max("date"))
    if span["first"] is None:
        return [school_year_of(timezone.localdate())]
    return list(range(school_year_of(span["first"]), school_year_of(span["last"]) + 1))


def absence_days(students, school_year: int) -> dict[int, dict[str, int]]:
    """Days absent per pupil in the year, by attendance status (absences only)."""
    first, last = school_year_bounds(school_year)
    rows = (
        AttendanceDay.objects.filter(
            student__in=students, date__range=(first, last), status__in=ABSENCE_STATUSES
        )
        .values("student_id", "status")
        .annotate(days=Count("id"))
    )
    found: dict[int, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["student_id"], {})[row["status"]] = row["days"]
    return found


def long_absences(students, school_year: int) -> list[LongAbsence]:
    """The pupils among ``students`` absent LONG_TERM_DAYS or more in the year, each with the
    school's current classification and its history (newest first)."""
    days = absence_days(students, school_year)
    absent = {pk: by for pk, by in days.items() if sum(by.values()) >= LONG_TERM_DAYS}
    decided: dict[int, list[AbsenceClassification]] = {}
    for row in AbsenceClassification.objects.filter(
        student_id__in=absent, school_year=school_year
    ).order_by("-decided_at", "-pk"):
        decided.setdefault(row.student_id, []).append(row)
    pupils = Student.objects.filter(pk__in=absent).select_related("school")
    found = [
        LongAbsence(
            student=s,
            days=sum(absent[s.pk].values()),
            by_status=absent[s.pk],
            current=(decided.get(s.pk) or [None])[0],
            history=decided.get(s.pk, []),
        )
        for s in pupils
    ]
    return sorted(found, key=lambda a: (a.student.school.code, a.student.grade, -a.days))


@transaction.atomic
def do_classify_long_absence(
    principal: policy.Principal,
    municipality,
    student_pk: int,
    school_year: int,
    reason: str,
    note: str = "",
) -> AbsenceClassification:
    """Record the school's classification of a pupil's long-term absence in ``school_year``.
    Only staff of the pupil's school, after step-up; only for a pupil absent 30 days or
    more that year (counted from the register now)."""
    student = access.read_pupil(
        principal,
        municipality,
        student_pk,
        what="absence_classification",
        via="web",
        sensitive=True,
    )
    try:
        check_school_year(school_year)
    except OutOfCalendar as e:
        raise ClassificationError(str(e)) from None
    if reason not in LongAbsenceReason.values:
        raise ClassificationError(
            _("長期欠席の理由「%(reason)s」はありません（%(choices)s）。")
            % {"reason": reason[:40], "choices": "、".join(LongAbsenceReason.labels)}
        )
    days = sum(absence_days([student], school_year).get(student.pk, {}).values())
    if days < LONG_TERM_DAYS:
        raise ClassificationError(
            _(
                "%(year)s 年度の欠席は %(days)s 日で、%(limit)s 日未満のため長期欠席として"
                "分類できません。"
            )
            % {"year": school_year, "days": days, "limit": LONG_TERM_DAYS}
        )
    # One decision at a time per pupil: two staff saving at once both land, in order. FOR NO
    # KEY UPDATE, which an import's checks of its rows' pupils pass (tenant_rollup_lock).
    # An import changing the pupil holds the row to its end: wait briefly.
    with waiting_briefly(ClassificationError):
        Student.objects.select_for_update(no_key=True).filter(pk=student.pk).first()
    row = AbsenceClassification.objects.create(
        student=student,
        school_year=school_year,
        reason=reason,
        note=note.strip()[:2000],
        absence_days=days,
        decided_at=timezone.now(),
        decided_by=principal.username[:150],
    )
    # The 不登校 metric counts the latest decision: its rollup and the data version follow.
    # 不登校 only: no figure a prefecture sees changes (kind=None, no revision).
    rollups.refresh(
        [school_year],
        sources=[AbsenceClassification._meta.db_table],
        kind=None,
        pupils=[student.pk],  # the 不登校 rollup is kept per pupil: this pupil's row only
    )
    audit.record(
        principal.actor(municipality),
        "absence.classify",
        municipality_code=municipality.code,
        # The pupil by pseudonym and the year only: the reason is sensitive, and 管理's trail
        # is read by tenant admins who are not the pupil's school.
        target=f"pupil {student.pseudonym} {school_year}",
        changes={"school_year": school_year},
    )
    log.info("long-term absence classified in %s", municipality.code)
    return row


# -- the board's table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyRow:
    school_type: str
    grade: int
    counts: dict[str, int]  # reason (or UNCLASSIFIED) -> pupils

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def survey_table(school_year: int) -> list[SurveyRow]:
    """The municipality's long-term absentees of ``school_year`` by school type, grade and
    the school's current classification (UNCLASSIFIED where none yet), every pupil counted
    once. Run inside the tenant; callers check that the reader is the board."""
    absences = long_absences(Student.objects.all(), school_year)
    grades = _grades_in(school_year, [a.student.pk for a in absences])
    counts: dict[tuple[str, int], Counter] = {}
    for a in absences:
        key = (a.student.school.school_type, grades.get(a.student.pk, a.student.grade))
        counts.setdefault(key, Counter())[a.current.reason if a.current else UNCLASSIFIED] += 1
    return [
        SurveyRow(school_type, grade, dict(counter))
        for (school_type, grade), counter in sorted(counts.items())
    ]


def _grades_in(school_year: int, student_pks: list[int]) -> dict[int, int]:
    """Each pupil's grade in that year (their homeroom then), where the roster has it."""
    return dict(
        Enrollment.objects.filter(
            Q(homeroom__school_year=school_year), student_id__in=student_pks
        ).values_list("student_id", "homeroom__grade")
    )
