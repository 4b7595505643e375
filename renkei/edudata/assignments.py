"""SC・SSW の担当: which pupils a スクールカウンセラー or スクールソーシャルワーカー works with. It
decides whose sensitive records they read (the rule table, ``policy.READS``: they reach only
assigned pupils), so only a manager (管理職) of the pupil's school assigns and un-assigns,
on the pupil board, through these actions (audited). The assignee must hold one of those
roles in the municipality with the pupil's school named in their membership.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.accounts import policy
from renkei.accounts.models import Membership, Role
from renkei.edudata import access
from renkei.edudata.models import PupilAssignment, Student
from renkei.platform import audit


class AssignmentError(ValueError):
    """An assignment that cannot be made; the message says why (Japanese)."""


def _pupil_of_own_school(principal: policy.Principal, municipality, student_pk: int) -> Student:
    """The pupil, if the principal manages their school; a missing pupil and another school's
    get the same refusal."""
    student = (
        access.visible_students(principal, municipality)
        .select_related("school")
        .filter(pk=student_pk)
        .first()
    )
    policy.require(
        student is not None
        and policy.may_assign_pupils(principal, municipality, student.school.code),
        policy.FORBIDDEN_ASSIGNMENTS,
    )
    return student


def assignable_staff(municipality, school_code: str) -> list[tuple[int, str, str]]:
    """(user id, user name, role label) of the active SC and SSW whose membership names the
    school, by user name."""
    rows = (
        Membership.objects.filter(
            municipality__code=municipality.code,
            role__in=policy.ASSIGNED_ROLES,
            school_codes__contains=[school_code],
            user__is_active=True,
        )
        .order_by("user__username", "role")
        .values_list("user_id", "user__username", "role")
    )
    return [(user_id, username, str(Role(role).label)) for user_id, username, role in rows]


def _record(principal, municipality, action: str, student: Student, username: str) -> None:
    # The pupil by pseudonym (the trail is read by tenant admins, who are not the school).
    audit.record(
        principal.actor(municipality),
        action,
        municipality_code=municipality.code,
        target=f"pupil {student.pseudonym}",
        changes={"staff": username},
    )


@transaction.atomic
def do_assign_pupil(
    principal: policy.Principal, municipality, student_pk: int, username: str
) -> PupilAssignment:
    """Assign the pupil to the SC or SSW ``username`` (of the pupil's school)."""
    student = _pupil_of_own_school(principal, municipality, student_pk)
    username = (username or "").strip()
    staff = {
        name: user_id
        for user_id, name, _label in assignable_staff(municipality, student.school.code)
    }
    if username not in staff:
        raise AssignmentError(
            _(
                "「%(who)s」は %(school)s のスクールカウンセラー・スクールソーシャルワーカーとして"
                "登録されていません（利用者名と、管理 › 利用者と役割の学校を確かめてください）。"
            )
            % {"who": username[:150], "school": student.school.name}
        )
    if PupilAssignment.objects.filter(student=student, user_id=staff[username]).exists():
        raise AssignmentError(_("「%(who)s」は既にこの児童生徒の担当です。") % {"who": username})
    assignment = PupilAssignment.objects.create(
        student=student,
        user_id=staff[username],
        username=username,
        assigned_at=timezone.now(),
        assigned_by=principal.username[:150],
    )
    _record(principal, municipality, "assignment.add", student, username)
    return assignment


@transaction.atomic
def do_unassign_pupil(
    principal: policy.Principal, municipality, student_pk: int, assignment_pk: int
) -> None:
    """End an assignment: from now on the SC or SSW reads nothing more of the pupil."""
    student = _pupil_of_own_school(principal, municipality, student_pk)
    assignment = PupilAssignment.objects.filter(pk=assignment_pk, student=student).first()
    if assignment is None:
        raise AssignmentError(_("この担当は既に外されています。"))
    username = assignment.username
    assignment.delete()
    _record(principal, municipality, "assignment.remove", student, username)


def assignments_of(principal: policy.Principal, municipality, student_pk: int) -> list:
    """The pupil's assignments, for the managers of their school (the pupil board)."""
    student = _pupil_of_own_school(principal, municipality, student_pk)
    return list(PupilAssignment.objects.filter(student=student).order_by("username"))
