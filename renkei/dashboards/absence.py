"""長期欠席の理由: the school's page where staff classify each long-term absence (不登校 and
the survey's other reasons), and the board of education's download of the survey's table
(the rules: renkei/edudata/absence.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_http_methods

from renkei.accounts import policy
from renkei.dashboards.access import tenant_principal
from renkei.dashboards.views import _require_school_staff, chosen_year
from renkei.edudata import absence, access
from renkei.platform.csv_download import BOM, csv_download, line_writer
from renkei.tenants.codes import SCHOOL_TYPES


class ClassifyForm(forms.Form):
    student = forms.IntegerField(widget=forms.HiddenInput)
    school_year = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.ChoiceField(
        label=_l("長期欠席の理由"), choices=absence.LongAbsenceReason.choices
    )
    note = forms.CharField(
        label=_l("補足（任意）"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


@login_required
@require_http_methods(["GET", "POST"])
def classification(request):
    """The school's long-term absentees of a year (from the register), each with the current
    classification, its history and a form. Sensitive: after step-up only, and every pupil
    shown is a logged read."""
    principal = tenant_principal(request)
    _require_school_staff(principal, request.tenant)
    years = absence.register_years()
    year, year_note = chosen_year(request, years, years[-1])
    page = reverse("dashboards:absence_classification")
    if not principal.step_up:
        return render(
            request,
            "dashboards/absence_classification.html",
            {"needs_step_up": True, "verify_href": f"{reverse('verify')}?next={page}"},
        )
    if request.method == "POST":
        return _classify(request, principal, page)
    pupils = absence.long_absences(access.visible_students(principal, request.tenant), year)
    access.log_pupil_read(
        principal,
        [a.student for a in pupils],
        what="absence_classification",
        via="web",
        sensitive=True,
    )
    names = access.pupil_names(a.student.pk for a in pupils)
    rows = [
        {
            "absence": a,
            "name": names.get(a.student.pk, ("", ""))[0],
            "form": ClassifyForm(
                initial={
                    "student": a.student.pk,
                    "school_year": year,
                    "reason": a.current.reason if a.current else a.suggested,
                    "note": a.current.note if a.current else "",
                },
                prefix=f"p{a.student.pk}",
            ),
        }
        for a in pupils
    ]
    return render(
        request,
        "dashboards/absence_classification.html",
        {
            "rows": rows,
            "years": years,
            "year": year,
            "year_note": year_note,
            "limit": absence.LONG_TERM_DAYS,
        },
    )


def _classify(request, principal, page: str):
    prefix = request.POST.get("prefix", "")
    form = ClassifyForm(request.POST, prefix=prefix if prefix.startswith("p") else None)
    year = request.POST.get(f"{prefix}-school_year", "")
    back = f"{page}?year={year}" if year.isdigit() else page
    if not form.is_valid():
        messages.error(request, _("入力を確かめてください: %(e)s") % {"e": form.errors.as_text()})
        return redirect(back)
    try:
        absence.do_classify_long_absence(
            principal,
            request.tenant,
            form.cleaned_data["student"],
            form.cleaned_data["school_year"],
            form.cleaned_data["reason"],
            form.cleaned_data["note"],
        )
    except absence.ClassificationError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("長期欠席の理由を記録しました。"))
    return redirect(back)


@login_required
def survey_csv(request):
    """The survey's table for the board: long-term absentees of one school year by school
    type, grade and reason, the municipality's own exact figures (see edudata/absence.py)."""
    principal = tenant_principal(request)
    policy.require(
        policy.is_own_board(principal, request.tenant),
        _("この表は、この自治体の自治体管理者・教育委員会だけがダウンロードできます。"),
    )
    years = absence.register_years()
    year, _note = chosen_year(request, years, years[-1])
    reasons = absence.LongAbsenceReason
    header = [
        _("年度"),
        _("学校種"),
        _("学年"),
        *[str(label) for label in reasons.labels],
        _("理由の分類待ち"),
        _("長期欠席者数（計）"),
    ]
    rows = [
        [
            year,
            SCHOOL_TYPES.get(r.school_type, r.school_type),
            r.grade,
            *[r.counts.get(value, 0) for value in reasons.values],
            r.counts.get(absence.UNCLASSIFIED, 0),
            r.total,
        ]
        for r in absence.survey_table(year)
    ]
    writer = line_writer()
    lines = [BOM + writer.writerow(header), *(writer.writerow(row) for row in rows)]
    return csv_download(lines, f"long-term-absence-{request.tenant.code}-{year}.csv")
