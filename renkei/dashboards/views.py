"""Pages inside one municipality: the teacher's boards and the board of education's analysis.

Each view decides here, through ``renkei.accounts.policy``, whether the page may be shown at
all (403 with the policy's message otherwise); the widgets on the page then read the tenant
GraphQL API with the same session, which asks the policy again for every field.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from renkei.accounts import policy
from renkei.dashboards import care as care_pages
from renkei.dashboards import notes as note_pages
from renkei.dashboards.access import tenant_principal
from renkei.edudata import access, metrics
from renkei.edudata.models import AttendanceDay, Homeroom, School, Student, school_year_of
from renkei.edudata.rollups import years_with_data

FORBIDDEN_BOARDS = gettext_lazy(
    "児童生徒ボード・学級ボードは、所属校の教員・管理職だけが見られます。"
)


def default_as_of() -> dt.date:
    """Today, or the last day with attendance records when the data stops earlier (a
    municipality whose last import is behind, or the demo): a board of an empty day helps no
    one. The page says which day it shows."""
    today = timezone.localdate()
    latest = AttendanceDay.objects.aggregate(latest=Max("date"))["latest"]
    return min(today, latest) if latest else today


def _as_of(request) -> tuple[dt.date, str | None]:
    """The 基準日 asked for in ``?as_of=``, or the default; with a message when the input could
    not be read or when the default is not today."""
    text = request.GET.get("as_of", "").strip()
    if text:
        try:
            return dt.date.fromisoformat(text), None
        except ValueError:
            return default_as_of(), _(
                "基準日「%(text)s」は日付として読めません（例: 2026-04-01）。"
                "最新の日付で表示しています。"
            ) % {"text": text[:20]}
    as_of = default_as_of()
    if as_of != timezone.localdate():
        return as_of, _(
            "今日の出欠記録はまだ取り込まれていません。記録のある最新の日"
            "（%(date)s）で表示しています。"
        ) % {"date": as_of.isoformat()}
    return as_of, None


def school_years() -> list[int]:
    """School years with aggregates here, or the current one when there are none yet."""
    return years_with_data() or [school_year_of(timezone.localdate())]


def _years(request) -> tuple[list[int], int, str | None]:
    """The school years with aggregates, the one shown, and a message (see chosen_year)."""
    years = school_years()
    return years, *chosen_year(request, years, years[-1])


def chosen_year(request, years, default: int) -> tuple[int, str | None]:
    """The school year asked for in ``?year=`` when it is one of ``years``; otherwise
    ``default`` and, when something else was asked for, a message that says so."""
    text = request.GET.get("year", "").strip()
    year = int(text) if text.isascii() and text.isdigit() else None
    if year in years:
        return year, None
    if not text:
        return default, None
    return default, _("「%(asked)s」年度の集計はありません。%(shown)s年度で表示しています。") % {
        "asked": text[:20],
        "shown": default,
    }


def _require_school_staff(principal, tenant) -> frozenset[str]:
    codes = principal.school_codes_in(tenant)
    policy.require(bool(codes), FORBIDDEN_BOARDS)
    return codes


def _require_aggregates(principal, tenant) -> None:
    policy.require(
        policy.may_see_tenant_aggregates(principal, tenant),
        _("この集計は自治体管理者・教育委員会だけが見られます。"),
    )


def _graphql_url() -> str:
    return reverse("tenant-graphql")


@login_required
def tenant_home(request):
    """The municipality's start page: what this user's roles can open."""
    principal = tenant_principal(request)
    sees_aggregates = policy.may_see_tenant_aggregates(principal, request.tenant)
    own_schools = principal.school_codes_in(request.tenant)
    if sees_aggregates:
        schools = School.objects.all()
    else:
        schools = School.objects.filter(code__in=own_schools)
    return render(
        request,
        "dashboards/home.html",
        {
            "municipality": request.tenant,
            "roles": principal.role_labels_in(request.tenant),
            "schools": schools.order_by("code"),
            "own_schools": own_schools,
            "is_school_staff": bool(own_schools),
            "reads_health": bool(
                principal.reading_schools(request.tenant, policy.Records.HEALTH)[0]
            ),
            "reads_assigned": bool(
                principal.reading_schools(request.tenant, policy.Records.CARE)[1]
            ),
            "sees_aggregates": sees_aggregates,
            "administers": policy.may_administer_tenant(principal, request.tenant),
            "step_up": principal.step_up,
        },
    )


# -- teachers -------------------------------------------------------------------------------


@login_required
def class_list(request):
    principal = tenant_principal(request)
    codes = _require_school_staff(principal, request.tenant)
    as_of, as_of_note = _as_of(request)
    year = school_year_of(as_of)
    schools = []
    for school in School.objects.filter(code__in=codes).order_by("code"):
        homerooms = (
            Homeroom.objects.filter(school=school, school_year=year)
            .annotate(pupils=Count("enrollments"))
            .order_by("grade", "name")
        )
        schools.append({"school": school, "homerooms": homerooms})
    return render(
        request,
        "dashboards/class_list.html",
        {"schools": schools, "as_of": as_of, "as_of_note": as_of_note, "school_year": year},
    )


@login_required
def class_board(request, homeroom_id: int):
    principal = tenant_principal(request)
    codes = _require_school_staff(principal, request.tenant)
    homeroom = Homeroom.objects.select_related("school").filter(pk=homeroom_id).first()
    # A missing homeroom and another school's get the same answer (as the API gives): the
    # URL must not tell whether a homeroom exists.
    policy.require(homeroom is not None and homeroom.school.code in codes, policy.FORBIDDEN_PUPIL)
    as_of, as_of_note = _as_of(request)
    pupils = Student.objects.filter(enrollments__homeroom=homeroom)
    return render(
        request,
        "dashboards/class_board.html",
        {
            "homeroom": homeroom,
            "as_of": as_of,
            "as_of_note": as_of_note,
            "endpoint": _graphql_url(),
            "student_href": reverse("dashboards:student_board", args=[0]).replace("/0/", "/{id}/"),
            "verify_href": f"{reverse('verify')}?next={request.path}",
            **note_pages.news_context(principal, request.tenant, pupils, as_of),
            **note_pages.teachers_context(principal, request.tenant, homeroom),
        },
    )


@login_required
def student_board(request, student_id: int):
    principal = tenant_principal(request)
    _require_school_staff(principal, request.tenant)
    # The page itself shows no record (the widget reads them, logged, through the API), but a
    # pupil of another school must not even get a page: the same check as the API's.
    student = (
        access.visible_students(principal, request.tenant)
        .select_related("school")
        .filter(pk=student_id)
        .first()
    )
    if student is None:
        raise policy.AccessDenied(policy.FORBIDDEN_PUPIL)
    as_of, as_of_note = _as_of(request)
    return render(
        request,
        "dashboards/student_board.html",
        {
            "student_id": student_id,
            "as_of": as_of,
            "as_of_note": as_of_note,
            "endpoint": _graphql_url(),
            "verify_href": f"{reverse('verify')}?next={request.path}",
            "step_up": principal.step_up,
            "opted_out": student.opted_out_at is not None,
            **note_pages.records_context(principal, request.tenant, student_id),
            **care_pages.assignments_context(principal, request.tenant, student),
        },
    )


# -- board of education ---------------------------------------------------------------------


@login_required
def long_term_absence(request):
    principal = tenant_principal(request)
    _require_aggregates(principal, request.tenant)
    years, year, year_note = _years(request)
    # 不登校 and the exact survey table are the municipality's own board's only (not the
    # prefecture's analysts, whom _require_aggregates admits).
    own_board = policy.is_own_board(principal, request.tenant)
    return render(
        request,
        "dashboards/long_term_absence.html",
        {
            "years": years,
            "year": year,
            "year_note": year_note,
            "futoko": own_board,
            "year_over_year": year_over_year(request.tenant, year, with_futoko=own_board),
            "endpoint": _graphql_url(),
            "schools": School.objects.order_by("code"),
            "k": request.tenant.min_cell_size,
            "own_figures": own_board,
        },
    )


#: The figures of 長期欠席's year-over-year table: (label, metric, the cell's codes).
YEAR_OVER_YEAR = (
    (
        gettext_lazy("長期欠席（年間30日以上）"),
        "long_term_absence",
        {"absence_category": "long_term"},
    ),
    (gettext_lazy("うち不登校"), "futoko", {}),
)


def year_over_year(municipality, year: int, *, with_futoko: bool) -> dict:
    """長期欠席 (and 不登校) of the municipality in the three school years up to ``year``, side
    by side: each the released cell (metrics.compute, the same the API serves), None for a
    year without data."""
    years = [year - 2, year - 1, year]
    rows = []
    for label, metric, codes in YEAR_OVER_YEAR:
        if metric == "futoko" and not with_futoko:
            continue
        cells = []
        for y in years:
            table = metrics.compute(metric, municipality, school_year=y)
            try:
                cells.append(table.cell(**codes))
            except KeyError:  # no pupils that year
                cells.append(None)
        rows.append({"label": label, "metric": metric, "cells": cells})
    return {"years": years, "rows": rows}


@login_required
def school_list(request):
    principal = tenant_principal(request)
    _require_aggregates(principal, request.tenant)
    return render(
        request, "dashboards/school_list.html", {"schools": School.objects.order_by("code")}
    )


@login_required
def school_karte(request, school_code: str):
    principal = tenant_principal(request)
    # Refused before looking: a missing school and another school's get the same answer.
    policy.require(
        policy.may_see_school_aggregates(principal, request.tenant, school_code),
        _("この学校の集計を見る権限がありません。"),
    )
    school = School.objects.filter(code=school_code).first()
    if school is None:  # only those who may see every school's aggregates get here
        raise Http404(_("学校が見つかりません。"))
    years, year, year_note = _years(request)
    return render(
        request,
        "dashboards/school_karte.html",
        {
            "school": school,
            "years": years,
            "year": year,
            "year_note": year_note,
            "endpoint": _graphql_url(),
            "k": request.tenant.min_cell_size,
        },
    )
