"""The pupil board's staff records (共有配慮事項, 日常所見, 支援記録), the class board's 新着
and its 担任: the forms post here, each through its action (renkei/edudata/notes.py,
renkei/edudata/homerooms.py), then back to the board with a message."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_POST

from renkei.accounts import policy
from renkei.dashboards.access import tenant_principal
from renkei.edudata import homerooms, notes
from renkei.edudata.models import StaffNote

TEXT = forms.Textarea(attrs={"rows": 3})


class NoteForm(forms.Form):
    kind = forms.ChoiceField(label=_l("種類"), choices=StaffNote.Kind.choices)
    text = forms.CharField(label=_l("内容"), widget=TEXT, max_length=notes.MAX_TEXT)


class CaseForm(forms.Form):
    concern = forms.CharField(label=_l("気になること"), widget=TEXT, max_length=notes.MAX_TEXT)
    follow_up_on = forms.DateField(
        label=_l("次に確認する日（任意）"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )


class StepForm(forms.Form):
    done_on = forms.DateField(
        label=_l("実施日"),
        widget=forms.DateInput(attrs={"type": "date"}),
        initial=timezone.localdate,
    )
    done_by = forms.CharField(label=_l("実施者"), max_length=100)
    text = forms.CharField(label=_l("対応の内容"), widget=TEXT, max_length=notes.MAX_TEXT)
    follow_up_on = forms.DateField(
        label=_l("次に確認する日（任意）"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    close = forms.BooleanField(label=_l("この記録を終結する"), required=False)


def records_context(principal, municipality, student_pk: int) -> dict:
    """The pupil board's records section: after step-up, the records (a logged read) and
    the forms; before, nothing but the way to step up."""
    if not principal.step_up:
        return {"records": None}
    records = notes.pupil_records(principal, municipality, student_pk)
    return {
        "records": records,
        "note_form": NoteForm(),
        "case_form": CaseForm(),
        "cases": [
            {
                "case": case,
                "form": StepForm(prefix=f"case{case.pk}")
                if case.status == case.Status.OPEN
                else None,
            }
            for case in records.cases
        ],
    }


def news_context(principal, municipality, students, today) -> dict:
    if not principal.step_up:
        return {"news": None}
    return {"news": notes.news(principal, municipality, students, today)}


class TeachersForm(forms.Form):
    teachers = forms.CharField(
        label=_l("担任の利用者名（複数はカンマ区切り）"), required=False, max_length=800
    )


def teachers_context(principal, municipality, homeroom) -> dict:
    """The class board's 担任 (who reads check-ins' free comments); a form for managers."""
    may_set = policy.may_set_homeroom_teachers(principal, municipality, homeroom.school.code)
    form = TeachersForm(initial={"teachers": ", ".join(homeroom.teachers)}) if may_set else None
    return {"teachers_form": form}


@login_required
@require_POST
def set_teachers(request, homeroom_id: int):
    principal = tenant_principal(request)
    form = TeachersForm(request.POST)
    back = redirect(reverse("dashboards:class_board", args=[homeroom_id]) + "#teachers")
    if not form.is_valid():
        messages.error(request, _("入力を確かめてください: %(e)s") % {"e": form.errors.as_text()})
        return back
    names = form.cleaned_data["teachers"].replace("、", ",").split(",")
    try:
        homerooms.do_set_homeroom_teachers(principal, request.tenant, homeroom_id, names)
    except homerooms.HomeroomError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("担任を設定しました。"))
    return back


def _back(student_pk: int):
    return redirect(reverse("dashboards:student_board", args=[student_pk]) + "#records")


def _save(request, student_pk: int, form: forms.Form, save) -> object:
    if not form.is_valid():
        messages.error(request, _("入力を確かめてください: %(e)s") % {"e": form.errors.as_text()})
        return _back(student_pk)
    try:
        save(form.cleaned_data)
    except notes.NoteError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("記録しました。"))
    return _back(student_pk)


@login_required
@require_POST
def add_note(request, student_id: int):
    principal = tenant_principal(request)
    return _save(
        request,
        student_id,
        NoteForm(request.POST),
        lambda data: notes.do_add_staff_note(
            principal, request.tenant, student_id, data["kind"], data["text"]
        ),
    )


@login_required
@require_POST
def open_case(request, student_id: int):
    principal = tenant_principal(request)
    return _save(
        request,
        student_id,
        CaseForm(request.POST),
        lambda data: notes.do_open_support_case(
            principal, request.tenant, student_id, data["concern"], data["follow_up_on"]
        ),
    )


@login_required
@require_POST
def add_step(request, student_id: int, case_id: int):
    principal = tenant_principal(request)
    return _save(
        request,
        student_id,
        StepForm(request.POST, prefix=f"case{case_id}"),
        lambda data: notes.do_add_support_action(
            principal,
            request.tenant,
            case_id,
            done_on=data["done_on"],
            done_by=data["done_by"],
            text=data["text"],
            follow_up_on=data["follow_up_on"],
            close=data["close"],
        ),
    )
