"""What the roles beside the school's teachers read of a pupil, by the rule table
(``policy.READS``): the 養護教諭 the health records (健康観察, 保健室利用) of their schools'
pupils, the スクールカウンセラー and スクールソーシャルワーカー the care records (共有配慮事項・
日常所見, 支援記録, 心の天気 with its comment, 長期欠席の理由) of the pupils assigned to them.
Every read goes through ``access`` (the same refusal for a pupil that does not exist and one
out of reach) and writes the access log.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from renkei.accounts import policy
from renkei.accounts.policy import Records
from renkei.edudata import access, notes
from renkei.edudata.codes import SENSITIVE_NURSE_REASONS
from renkei.edudata.models import (
    AbsenceClassification,
    Enrollment,
    HealthObservation,
    Homeroom,
    NurseVisit,
    Student,
    SurveyResponse,
)

SHOWN = 60  # latest rows of each kind on a pupil's page


def health_homerooms(principal: policy.Principal, municipality, school_year: int) -> QuerySet:
    """The homerooms of the year in the schools where the principal reads every pupil's health
    records: how a 養護教諭 finds a pupil."""
    schools, _assigned = principal.reading_schools(municipality, Records.HEALTH)
    return (
        Homeroom.objects.filter(school__code__in=schools, school_year=school_year)
        .select_related("school")
        .order_by("school__code", "grade", "name")
    )


@dataclass(frozen=True)
class PupilLine:
    """A pupil as a list shows them: what it takes to find them."""

    pk: int
    name: str
    kana: str
    school: str
    grade: int
    attendance_number: int | None = None


def _lines(principal, students, *, what: str, numbers: dict[int, int | None]) -> list[PupilLine]:
    students = list(students.select_related("school"))
    access.log_pupil_read(principal, students, what=what, via="web")
    names = access.pupil_names([s.pk for s in students])
    lines = [
        PupilLine(
            s.pk,
            names.get(s.pk, ("", ""))[0] or str(s),
            names.get(s.pk, ("", ""))[1],
            s.school.name,
            s.grade,
            numbers.get(s.pk),
        )
        for s in students
    ]
    return sorted(lines, key=lambda p: (p.school, p.grade, p.attendance_number or 0, p.kana))


def homeroom_pupils(principal: policy.Principal, municipality, homeroom_pk: int) -> list:
    """The pupils of a homeroom whose health records the principal reads (logged)."""
    numbers = dict(
        Enrollment.objects.filter(homeroom_id=homeroom_pk).values_list(
            "student_id", "attendance_number"
        )
    )
    students = access.pupils_for(principal, municipality, Records.HEALTH).filter(pk__in=numbers)
    return _lines(principal, students, what="health_class", numbers=numbers)


def assigned_pupils(principal: policy.Principal, municipality) -> list[PupilLine]:
    """The pupils assigned to the principal (an SC or SSW) that they read now (logged)."""
    students = access.pupils_for(principal, municipality, Records.CARE).filter(
        assignments__user_id=principal.user_id or 0
    )
    return _lines(principal, students, what="assigned_list", numbers={})


def _shown(principal, rows, model) -> list[dict]:
    """Rows as dicts of the fields the principal may read now (sensitive ones after step-up)."""
    fields = policy.readable_fields(principal, model)
    labelled = [f for f in fields if model._meta.get_field(f).choices]
    return [
        {name: getattr(row, name) for name in fields}
        | {f"{name}_label": getattr(row, f"get_{name}_display")() for name in labelled}
        for row in rows
    ]


@dataclass(frozen=True)
class HealthRecords:
    student: Student
    name: str
    observations: list[dict]
    visits: list[dict]
    sensitive_shown: bool


def health_records(principal: policy.Principal, municipality, student_pk: int) -> HealthRecords:
    """A pupil's latest 健康観察 and 保健室利用 (logged). Before step-up without the symptoms
    and the notes, and without 心の相談 visits (not even that they happened)."""
    student = access.read_pupil(
        principal,
        municipality,
        student_pk,
        what="health_records",
        via="web",
        sensitive=principal.step_up,
        records=Records.HEALTH,
    )
    observations = HealthObservation.objects.filter(student=student).order_by("-date")
    visits = NurseVisit.objects.filter(student=student).order_by("-visited_at")
    if not principal.step_up:
        visits = visits.exclude(reason_category__in=SENSITIVE_NURSE_REASONS)
    name = access.pupil_names([student.pk]).get(student.pk, ("", ""))[0]
    return HealthRecords(
        student,
        name or str(student),
        _shown(principal, observations[:SHOWN], HealthObservation),
        _shown(principal, visits[:SHOWN], NurseVisit),
        principal.step_up,
    )


@dataclass(frozen=True)
class CareRecords:
    student: Student
    name: str
    records: notes.PupilRecords
    checkins: list[SurveyResponse]  # answers as the reader may see them
    absences: list[AbsenceClassification]


def care_records(principal: policy.Principal, municipality, student_pk: int) -> CareRecords:
    """A pupil's care records, after step-up (logged, sensitive): for an SC or SSW, a pupil
    assigned to them."""
    student = access.read_pupil(
        principal,
        municipality,
        student_pk,
        what="care_records",
        via="web",
        sensitive=True,
        records=Records.CARE,
    )
    records = notes.pupil_records(principal, municipality, student.pk)
    checkins = list(SurveyResponse.objects.filter(student=student).order_by("-answered_on")[:SHOWN])
    readable = access.free_comment_readers(principal, municipality, [student])
    for checkin in checkins:  # not saved: stripping the comment here is safe
        checkin.answers = access.shown_answers(checkin.answers, free_comment=student.pk in readable)
    absences = list(AbsenceClassification.objects.filter(student=student))
    name = access.pupil_names([student.pk]).get(student.pk, ("", ""))[0]
    return CareRecords(student, name or str(student), records, checkins, absences)
