"""管理 › 請求受付簿: guardians' requests about one pupil (開示, 訂正, 削除, 分析除外 and its
withdrawal), answered here (docs/rights.md). Every page is behind step-up. Who may do what
is the policy's (``policy.may_answer_rights_requests``; opt-outs: staff of the pupil's
school too); each change is an action of renkei.edudata.rights or renkei.edudata.privacy.

Tenant admins reach these pages from 管理; school managers and teachers from the pupil
board (児童生徒ボード › 請求・分析除外), so the pages carry 管理's menu only for admins.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_POST

from renkei.accounts import policy
from renkei.dashboards.access import tenant_principal
from renkei.dashboards.manage.forms import OptOutForm
from renkei.edudata import access, rights
from renkei.edudata.models import RightsRequest, Student
from renkei.edudata.privacy import OptOutError, do_record_opt_out, do_withdraw_opt_out

PAGE_SIZE = 50
DATE = forms.DateInput(attrs={"type": "date"})
TEXT = forms.Textarea(attrs={"rows": 3})
ADMIN_BASE = "dashboards/manage/_base.html"
STAFF_BASE = "dashboards/manage/rights/_staff_base.html"


def rights_view(view):
    """Signed in with a role here, and past the second factor (the pages show a pupil's
    identity, and 開示 everything): otherwise to the step-up page and back."""

    @login_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        principal = tenant_principal(request)
        if not principal.step_up:
            return redirect(f"{reverse('verify')}?next={request.path}")
        request.principal = principal
        return view(request, *args, **kwargs)

    return wrapped


def _base(request) -> str:
    admin = policy.may_administer_tenant(request.principal, request.tenant)
    return ADMIN_BASE if admin else STAFF_BASE


def _staff_pupil(request, student_id: int) -> Student:
    """The pupil, for the municipality's admins and the staff of the pupil's school (who
    record opt-outs); the same refusal for a pupil that does not exist."""
    principal, tenant = request.principal, request.tenant
    student = Student.objects.select_related("school").filter(pk=student_id).first()
    allowed = student is not None and (
        policy.may_administer_tenant(principal, tenant)
        or access.may_see_pupil(principal, tenant, student)
    )
    policy.require(allowed, policy.FORBIDDEN_PUPIL)
    return student


def _answered_pupil(request, student_id: int) -> Student:
    return access.pupil_for_rights_request(request.principal, request.tenant, student_id)


# -- forms ----------------------------------------------------------------------------------------


class ReceivedOn(forms.DateField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", _l("請求日（保護者・本人が請求した日。空欄なら今日）"))
        super().__init__(required=False, widget=DATE, **kwargs)


class ReceiveForm(forms.Form):
    kind = forms.ChoiceField(
        label=_l("請求の種類"),
        choices=[
            (k, label)
            for k, label in RightsRequest.Kind.choices
            if k
            in (
                RightsRequest.Kind.DISCLOSURE,
                RightsRequest.Kind.CORRECTION,
                RightsRequest.Kind.DELETION,
            )
        ],
    )
    received_on = ReceivedOn()


class OptOutDateForm(forms.Form):
    requested_on = ReceivedOn(label=_l("申出日（保護者・本人が申し出た日。空欄なら今日）"))


class CorrectForm(forms.Form):
    target = forms.ChoiceField(label=_l("訂正する項目"))
    record_id = forms.IntegerField(
        label=_l("記録の番号"),
        min_value=1,
        help_text=_l("下の「保有している記録」の各表の「ID」列の番号です。"),
    )
    value = forms.CharField(
        label=_l("正しい値"), required=False, max_length=4000, strip=True, widget=TEXT
    )
    reason = forms.CharField(label=_l("理由（必須）"), max_length=rights.MAX_REASON, widget=TEXT)
    received_on = ReceivedOn()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [
            (f"{h.label}:{f.name}", f"{h.title} › {f.verbose_name}")
            for h, f in rights.correctable_fields()
        ]


class DeleteForm(forms.Form):
    scope = forms.ChoiceField(
        label=_l("削除の範囲"),
        choices=[
            (rights.SCOPE_RECORD, _l("1 件の記録")),
            (rights.SCOPE_KIND, _l("1 種類の記録すべて")),
            (rights.SCOPE_PUPIL, _l("この児童生徒のすべての記録（児童生徒ごと）")),
        ],
        widget=forms.RadioSelect,
    )
    kind = forms.ChoiceField(label=_l("記録の種類（1 件・1 種類のとき）"), required=False)
    record_id = forms.IntegerField(
        label=_l("記録の番号（1 件のとき）"), min_value=1, required=False
    )
    reason = forms.CharField(label=_l("理由（必須）"), max_length=rights.MAX_REASON, widget=TEXT)
    received_on = ReceivedOn()
    confirm = forms.BooleanField(
        label=_l("削除すると元に戻せないことを確認しました"),
        error_messages={"required": _l("削除の確認にチェックを入れてください。")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "—")] + [
            (h.label, h.title) for h in rights.deletable_holdings()
        ]

    def clean(self):
        cleaned = super().clean()
        scope = cleaned.get("scope")
        if scope in (rights.SCOPE_RECORD, rights.SCOPE_KIND) and not cleaned.get("kind"):
            self.add_error("kind", _("削除する記録の種類を選んでください。"))
        if scope == rights.SCOPE_RECORD and not cleaned.get("record_id"):
            self.add_error("record_id", _("削除する記録の番号を入れてください。"))
        return cleaned


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label=_l("対応しない理由（必須）"), max_length=rights.MAX_REASON, widget=TEXT
    )


# -- the register ---------------------------------------------------------------------------------


@rights_view
def register(request):
    """請求受付簿: every request (admins) or those of the principal's schools (staff), and,
    for admins, finding a pupil by school and the school system's id."""
    principal, tenant = request.principal, request.tenant
    admin = policy.may_administer_tenant(principal, tenant)
    codes = principal.school_codes_in(tenant)
    policy.require(admin or bool(codes), policy.FORBIDDEN_RIGHTS)
    rows = RightsRequest.objects.order_by("-received_on", "-pk")
    if not admin:
        rows = rows.filter(school_code__in=codes)
    status = request.GET.get("status", "")
    if status in RightsRequest.Status.values:
        rows = rows.filter(status=status)
    find = OptOutForm(request.GET or None) if admin and "source_id" in request.GET else None
    if find is not None and find.is_valid():
        student = Student.objects.filter(
            school=find.cleaned_data["school"],
            identities__source_id=find.cleaned_data["source_id"].strip(),
        ).first()
        return redirect("manage:rights_pupil", student_id=student.pk)
    if admin and find is None:
        find = OptOutForm()
    if find is not None:
        del find.fields["requested_on"]
    return render(
        request,
        "dashboards/manage/rights/register.html",
        {
            "base_template": _base(request),
            "page": Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")),
            "statuses": RightsRequest.Status.choices,
            "status": status,
            "find": find,
            "open": RightsRequest.objects.filter(status=RightsRequest.Status.RECEIVED).count()
            if admin
            else None,
        },
    )


@rights_view
def pupil(request, student_id: int):
    """One pupil: their identity, their requests, and the forms that answer them. Those who
    answer 開示・訂正・削除 also see every record held (a logged read of everything)."""
    principal, tenant = request.principal, request.tenant
    student = _staff_pupil(request, student_id)
    answers = policy.may_answer_rights_requests(principal, tenant, student.school.code)
    records = None
    if answers:
        records = rights.disclosure_of(tenant, student, request_pk=0).sections
    access.log_pupil_read(principal, [student], what="rights_page", via="web", sensitive=answers)
    return render(
        request,
        "dashboards/manage/rights/pupil.html",
        {
            "base_template": _base(request),
            "student": student,
            "identities": rights.identity_summary(student),
            "requests": RightsRequest.objects.filter(student_pseudonym=student.pseudonym),
            "answers": answers,
            "records": records,
            "receive_form": ReceiveForm(prefix="receive"),
            "opt_out_form": OptOutDateForm(prefix="optout"),
            "correct_form": CorrectForm(prefix="correct") if answers else None,
            "delete_form": DeleteForm(prefix="delete") if answers else None,
        },
    )


def _back(student_id: int, anchor: str = ""):
    return redirect(reverse("manage:rights_pupil", args=[student_id]) + anchor)


def _form_error(request, form) -> None:
    problems = "; ".join(
        f"{form.fields[name].label if name in form.fields else ''}: {' '.join(errors)}".lstrip(": ")
        for name, errors in form.errors.items()
    )
    messages.error(
        request, _("入力を確かめてください（何も記録していません）: %(e)s") % {"e": problems}
    )


@rights_view
@require_POST
def receive(request, student_id: int):
    _answered_pupil(request, student_id)  # refused before the form is even read
    form = ReceiveForm(request.POST, prefix="receive")
    if not form.is_valid():
        _form_error(request, form)
        return _back(student_id)
    try:
        row = rights.do_receive_request(
            request.principal,
            request.tenant,
            student_id,
            form.cleaned_data["kind"],
            form.cleaned_data["received_on"],
        )
    except rights.RightsError as e:
        messages.error(request, str(e))
        return _back(student_id)
    messages.success(
        request,
        _("%(kind)s請求を受け付けました（受付番号 %(n)s）。")
        % {"kind": row.get_kind_display(), "n": row.pk},
    )
    return redirect("manage:rights_request", request_id=row.pk)


@rights_view
@require_POST
def opt_out(request, student_id: int):
    student = _staff_pupil(request, student_id)
    form = OptOutDateForm(request.POST, prefix="optout")
    if not form.is_valid():
        _form_error(request, form)
        return _back(student_id)
    day = form.cleaned_data["requested_on"]
    requested_at = _start_of(day) if day else None
    try:
        do_record_opt_out(request.principal, request.tenant, student, requested_at=requested_at)
    except OptOutError as e:
        messages.error(request, str(e))
    else:
        messages.success(
            request,
            _(
                "分析除外の申出を記録しました。この児童生徒は集計・アラートから除かれ、"
                "Microsoft 365 の利用と学習ツールの記録は取り込まず表示しません。"
            ),
        )
    return _back(student_id)


@rights_view
@require_POST
def opt_out_withdraw(request, student_id: int):
    student = _staff_pupil(request, student_id)
    form = OptOutDateForm(request.POST, prefix="optout")
    if not form.is_valid():
        _form_error(request, form)
        return _back(student_id)
    try:
        do_withdraw_opt_out(
            request.principal, request.tenant, student, form.cleaned_data["requested_on"]
        )
    except OptOutError as e:
        messages.error(request, str(e))
    else:
        messages.success(
            request, _("分析除外の申出を取り下げました。この児童生徒は再び集計に含まれます。")
        )
    return _back(student_id)


def _start_of(day: dt.date) -> dt.datetime:
    """A request date as the moment the opt-out takes effect (the day's start, Japan time)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


@rights_view
@require_POST
def correct(request, student_id: int):
    _answered_pupil(request, student_id)  # refused before the form is even read
    form = CorrectForm(request.POST, prefix="correct")
    if not form.is_valid():
        _form_error(request, form)
        return _back(student_id, "#correct")
    data = form.cleaned_data
    try:
        row = rights.do_correct_record(
            request.principal,
            request.tenant,
            student_id,
            target=data["target"],
            record_pk=data["record_id"],
            value=data["value"],
            reason=data["reason"],
            received_on=data["received_on"],
        )
    except rights.RightsError as e:
        messages.error(request, str(e))
        return _back(student_id, "#correct")
    messages.success(
        request,
        _(
            "訂正しました（受付番号 %(n)s）。集計は計算し直しました。連携元のシステムでも訂正して"
            "ください（次の取り込みで元の値に戻ります）。"
        )
        % {"n": row.pk},
    )
    return _back(student_id, "#correct")


@rights_view
@require_POST
def delete(request, student_id: int):
    _answered_pupil(request, student_id)  # refused before the form is even read
    form = DeleteForm(request.POST, prefix="delete")
    if not form.is_valid():
        _form_error(request, form)
        return _back(student_id, "#delete")
    data = form.cleaned_data
    try:
        row = rights.do_delete_records(
            request.principal,
            request.tenant,
            student_id,
            scope=data["scope"],
            kind=data["kind"],
            record_pk=data["record_id"],
            reason=data["reason"],
            received_on=data["received_on"],
        )
    except rights.RightsError as e:
        messages.error(request, str(e))
        return _back(student_id, "#delete")
    total = sum(row.outcome["deleted"].values())
    messages.success(
        request,
        _("%(n)s 件を削除しました（受付番号 %(id)s）。集計は計算し直しました。")
        % {"n": total, "id": row.pk},
    )
    if data["scope"] == rights.SCOPE_PUPIL:
        return redirect("manage:rights_request", request_id=row.pk)
    return _back(student_id, "#delete")


# -- one request --------------------------------------------------------------------------------


@rights_view
def request_detail(request, request_id: int):
    row, student = rights.request_for_answer(request.principal, request.tenant, request_id)
    return render(
        request,
        "dashboards/manage/rights/request.html",
        {
            "base_template": _base(request),
            "row": row,
            "outcome": rights.outcome_lines(row),
            "student": student,
            "decline_form": DeclineForm() if row.status == RightsRequest.Status.RECEIVED else None,
        },
    )


@rights_view
@require_POST
def decline(request, request_id: int):
    form = DeclineForm(request.POST)
    if not form.is_valid():
        _form_error(request, form)
    else:
        try:
            rights.do_decline_request(
                request.principal, request.tenant, request_id, form.cleaned_data["reason"]
            )
        except rights.RightsError as e:
            messages.error(request, str(e))
        else:
            messages.success(request, _("対応しない旨と理由を記録しました。"))
    return redirect("manage:rights_request", request_id=request_id)


def _disclosed(request, request_id: int, fmt: str):
    try:
        return rights.do_disclose(request.principal, request.tenant, request_id, fmt=fmt)
    except rights.RightsError as e:
        messages.error(request, str(e))
        return None


@rights_view
def disclosure_html(request, request_id: int):
    """The printable document (A4, print CSS): what is held, one section per kind."""
    found = _disclosed(request, request_id, "html")
    if found is None:
        return redirect("manage:rights_request", request_id=request_id)
    response = render(request, "dashboards/manage/rights/disclosure.html", {"d": found})
    response["Cache-Control"] = "no-store"
    return response


@rights_view
def disclosure_json(request, request_id: int):
    """The same as JSON (UTF-8), as a download."""
    found = _disclosed(request, request_id, "json")
    if found is None:
        return redirect("manage:rights_request", request_id=request_id)
    body = json.dumps(found.as_json(), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    stamp = timezone.localdate().strftime("%Y%m%d")
    response["Content-Disposition"] = (
        f'attachment; filename="disclosure-{request.tenant.code}-{request_id}-{stamp}.json"'
    )
    response["Cache-Control"] = "no-store"
    return response
