"""Pages of the roles beside the school's teachers (the rule table, ``policy.READS``): the
養護教諭's 保健 (homerooms, then a pupil's 健康観察 and 保健室利用), the SC's and SSW's 担当
(the pupils assigned to them, then a pupil's care records), and the manager's form on the
pupil board that assigns pupils to them (renkei/edudata/assignments.py, audited)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from renkei.accounts import policy
from renkei.accounts.policy import Records
from renkei.dashboards.access import tenant_principal
from renkei.edudata import access, assignments, care
from renkei.edudata.models import Homeroom, school_year_of

FORBIDDEN_HEALTH = gettext_lazy("保健の記録は、所属校の養護教諭・教員・管理職だけが見られます。")
FORBIDDEN_ASSIGNED = gettext_lazy(
    "担当児童生徒の一覧は、スクールカウンセラー・スクールソーシャルワーカーだけが見られます。"
)


def _verify_href(request) -> str:
    return f"{reverse('verify')}?next={request.path}"


@login_required
def health(request):
    principal = tenant_principal(request)
    schools, _assigned = principal.reading_schools(request.tenant, Records.HEALTH)
    policy.require(bool(schools), FORBIDDEN_HEALTH)
    year = school_year_of(timezone.localdate())
    homerooms = list(care.health_homerooms(principal, request.tenant, year))
    if not homerooms:  # the data may stop before today (the demo): its latest year
        latest = Homeroom.objects.order_by("-school_year").first()
        if latest is not None:
            year = latest.school_year
            homerooms = list(care.health_homerooms(principal, request.tenant, year))
    chosen = next((h for h in homerooms if str(h.pk) == request.GET.get("homeroom")), None)
    pupils = care.homeroom_pupils(principal, request.tenant, chosen.pk) if chosen else []
    return render(
        request,
        "dashboards/health.html",
        {"homerooms": homerooms, "chosen": chosen, "pupils": pupils, "school_year": year},
    )


@login_required
def health_pupil(request, student_id: int):
    principal = tenant_principal(request)
    records = care.health_records(principal, request.tenant, student_id)
    return render(
        request,
        "dashboards/health_pupil.html",
        {"health": records, "verify_href": _verify_href(request)},
    )


@login_required
def assigned(request):
    principal = tenant_principal(request)
    _schools, assigned_schools = principal.reading_schools(request.tenant, Records.CARE)
    policy.require(bool(assigned_schools), FORBIDDEN_ASSIGNED)
    return render(
        request,
        "dashboards/assigned.html",
        {"pupils": care.assigned_pupils(principal, request.tenant)},
    )


@login_required
def care_pupil(request, student_id: int):
    principal = tenant_principal(request)
    context = {"verify_href": _verify_href(request), "care": None}
    if principal.step_up:
        context["care"] = care.care_records(principal, request.tenant, student_id)
    else:  # a pupil out of reach is refused before the step-up is offered
        reachable = access.pupils_for(principal, request.tenant, Records.CARE)
        policy.require(reachable.filter(pk=student_id).exists(), policy.FORBIDDEN_PUPIL)
    return render(request, "dashboards/care_pupil.html", context)


# -- the manager's assignments, on the pupil board ------------------------------------------------


def assignments_context(principal, municipality, student) -> dict:
    """For the managers of the pupil's school: who is assigned, and the form to change it."""
    if not policy.may_assign_pupils(principal, municipality, student.school.code):
        return {"assignments": None}
    current = assignments.assignments_of(principal, municipality, student.pk)
    taken = {a.user_id for a in current}
    staff = assignments.assignable_staff(municipality, student.school.code)
    return {
        "assignments": current,
        "assignable": [entry for entry in staff if entry[0] not in taken],
    }


def _back(student_id: int):
    return redirect(reverse("dashboards:student_board", args=[student_id]) + "#assignments")


@login_required
@require_POST
def assign(request, student_id: int):
    principal = tenant_principal(request)
    try:
        assignments.do_assign_pupil(
            principal, request.tenant, student_id, request.POST.get("username", "")
        )
    except assignments.AssignmentError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("担当にしました。"))
    return _back(student_id)


@login_required
@require_POST
def unassign(request, student_id: int, assignment_id: int):
    principal = tenant_principal(request)
    try:
        assignments.do_unassign_pupil(principal, request.tenant, student_id, assignment_id)
    except assignments.AssignmentError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("担当から外しました。"))
    return _back(student_id)
