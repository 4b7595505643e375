"""Which records of one municipality a principal may read, built from the policy's answers
(:mod:`renkei.accounts.policy`): the schools they may list, the pupils whose individual
records they may see, reading one pupil, and the access log every such read writes.

The API's resolvers and loaders and the pages take their querysets from here, so each
refusal is the same everywhere: a record that does not exist and one of another school get
the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Q, QuerySet

from renkei.accounts import policy
from renkei.accounts.policy import Records
from renkei.edudata.models import (
    AccessLog,
    Enrollment,
    PupilAssignment,
    School,
    Student,
    StudentIdentity,
)

# The key of a free comment in a survey's answers (the checkin mappings' ``comment``).
FREE_COMMENT = "comment"


def visible_schools(principal: policy.Principal, municipality) -> QuerySet:
    """Schools a principal may list (:func:`policy.may_list_school`, as a queryset)."""
    if not policy.may_enter_tenant(principal, municipality):
        return School.objects.none()
    if policy.may_see_tenant_aggregates(principal, municipality):
        return School.objects.all()
    return School.objects.filter(code__in=principal.school_codes_in(municipality))


def _current_tenant_or_refuse(municipality):
    tenant = getattr(connection, "tenant", None)
    if tenant is None or getattr(tenant, "code", None) != municipality.code:
        raise policy.AccessDenied("自治体のスキーマに入っていないため、個人の記録は読めません。")


def pupils_for(principal: policy.Principal, municipality, records: Records) -> QuerySet:
    """Pupils whose ``records`` this principal may read, by the rule table (``policy.READS``):
    every pupil of the schools where their role reads them, and the pupils assigned to them
    (PupilAssignment) in the schools where their role reads only those. Must be called
    inside the municipality's schema."""
    _current_tenant_or_refuse(municipality)
    schools, assigned_schools = principal.reading_schools(municipality, records)
    condition = Q(school__code__in=schools)
    if assigned_schools and principal.user_id is not None:
        mine = PupilAssignment.objects.filter(user_id=principal.user_id).values("student_id")
        condition |= Q(school__code__in=assigned_schools, pk__in=mine)
    elif not schools:
        return Student.objects.none()
    return Student.objects.filter(condition)


def visible_students(principal: policy.Principal, municipality) -> QuerySet:
    """Pupils whose school records (the boards) this principal may see: those of the schools
    where they are staff. Must be called inside the municipality's schema."""
    return pupils_for(principal, municipality, Records.SCHOOL)


def may_see_pupil(principal: policy.Principal, municipality, student) -> bool:
    return student.school.code in principal.school_codes_in(municipality)


def read_pupil(
    principal: policy.Principal,
    municipality,
    student_pk: int,
    *,
    what: str,
    via: str,
    sensitive: bool = False,
    records: Records = Records.SCHOOL,
):
    """Fetch one pupil for reading their ``records``, after checking, and log the read.

    ``what`` names the records read (e.g. "student_board"); ``sensitive`` says whether
    sensitive items are part of it, which needs step-up.
    """
    student = (
        pupils_for(principal, municipality, records)
        .select_related("school")
        .filter(pk=student_pk)
        .first()
    )
    if student is None:
        raise policy.AccessDenied(policy.FORBIDDEN_PUPIL)
    if sensitive and not principal.step_up:
        raise policy.StepUpRequired(policy.STEP_UP_NEEDED)
    log_pupil_read(principal, [student], what=what, via=via, sensitive=sensitive)
    return student


def current_homeroom_teachers(student_pks: Iterable[int]) -> dict[int, list[str]]:
    """The 担任 (user names) of each pupil's current homeroom: that of their latest school
    year. A pupil without an enrollment has none."""
    found: dict[int, list[str]] = {}
    rows = (
        Enrollment.objects.filter(student_id__in=list(student_pks))
        .order_by("student_id", "-homeroom__school_year", "-id")
        .values_list("student_id", "homeroom__teachers")
    )
    for student_id, teachers in rows:
        found.setdefault(student_id, teachers)
    return found


def free_comment_readers(
    principal: policy.Principal, municipality, students: Iterable[Student]
) -> set[int]:
    """The pupils (pks) among ``students`` whose free comments the principal may read
    (:func:`policy.may_read_free_comments`); the caller checked that it may see the pupils."""
    if not principal.step_up:
        return set()
    pks = [s.pk for s in students]
    schools = dict(Student.objects.filter(pk__in=pks).values_list("pk", "school__code"))
    teachers = current_homeroom_teachers(pks)
    assigned: set[int] = set()
    if principal.reading_schools(municipality, Records.CARE)[1]:  # an SC or SSW
        assigned = set(
            PupilAssignment.objects.filter(
                student_id__in=pks, user_id=principal.user_id or 0
            ).values_list("student_id", flat=True)
        )
    return {
        pk
        for pk, school_code in schools.items()
        if policy.may_read_free_comments(
            principal, municipality, school_code, teachers.get(pk, []), assigned=pk in assigned
        )
    }


def shown_answers(answers, *, free_comment: bool):
    """A survey's answers as a reader sees them: without the free comment unless they may
    read it (:func:`free_comment_readers`)."""
    if free_comment or not isinstance(answers, dict):
        return answers
    return {k: v for k, v in answers.items() if k != FREE_COMMENT}


def pupil_names(student_pks) -> dict[int, tuple[str, str]]:
    """(name, kana) per pupil from the identity table: the first named identity, by source
    system. The caller checked the reader and logs the read; pupils without a name are left
    out."""
    found: dict[int, tuple[str, str]] = {}
    rows = (
        StudentIdentity.objects.filter(student_id__in=list(student_pks))
        .exclude(family_name="")
        .order_by("student_id", "source_system", "id")
        .values_list(
            "student_id", "family_name", "given_name", "family_name_kana", "given_name_kana"
        )
    )
    for student_id, family, given, family_kana, given_kana in rows:
        found.setdefault(
            student_id, (f"{family} {given}".strip(), f"{family_kana} {given_kana}".strip())
        )
    return found


def log_pupil_read(
    principal: policy.Principal, students: Iterable, *, what: str, via: str, sensitive: bool = False
) -> None:
    """Append one access-log row per pupil read (one INSERT for the whole batch)."""
    AccessLog.objects.bulk_create(
        [
            AccessLog(
                user_id=principal.user_id or 0,
                username=principal.username,
                student_pseudonym=s.pseudonym,
                what=what,
                via=via,
                sensitive=sensitive,
            )
            for s in students
        ]
    )


def pupil_for_rights_request(principal: policy.Principal, municipality, student_pk: int):
    """The pupil a guardian's 開示・訂正・削除請求 is about, for those who answer it
    (:func:`policy.may_answer_rights_requests`), after step-up (the answer shows everything,
    sensitive items included). A pupil that does not exist and one the principal may not
    answer for get the same refusal. The caller logs what it reads."""
    _current_tenant_or_refuse(municipality)
    student = Student.objects.select_related("school").filter(pk=student_pk).first()
    allowed = student is not None and policy.may_answer_rights_requests(
        principal, municipality, student.school.code
    )
    policy.require(allowed, policy.FORBIDDEN_RIGHTS)
    if not principal.step_up:
        raise policy.StepUpRequired(policy.STEP_UP_NEEDED)
    return student
