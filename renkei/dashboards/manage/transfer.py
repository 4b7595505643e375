"""管理 › 転校: the transfer package of a pupil who moves to another municipality (転出), and the
import of one from another municipality (転入). docs/transfer.md says how it goes.

Tenant admins and the managers (管理職) of the pupil's school, after step-up: the package holds
every record of the pupil. The transfer code is shown once, on the page that answers the
export, and stored nowhere.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_http_methods

from renkei.accounts import policy
from renkei.accounts.models import Role
from renkei.connectors.builtin.transfer import TransferConnector
from renkei.connectors.pipeline import do_import
from renkei.connectors.transfer import Consent, TransferError, do_export_transfer
from renkei.connectors.transfer_package import MAX_PACKAGE_BYTES
from renkei.dashboards.access import tenant_principal
from renkei.edudata.models import School, Student, StudentIdentity, TransferOut
from renkei.platform.storage import get_storage

FORBIDDEN = _l(
    "転校の画面は、自治体管理者と学校の管理職だけが使えます。必要なときは自治体管理者に"
    "役割の追加を依頼してください。"
)


def transfer_view(view):
    """Signed in, a tenant admin or a school manager here (403 otherwise); the page itself asks
    for step-up before it shows or does anything."""

    @login_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        principal = tenant_principal(request)
        roles = principal.roles_in(request.tenant)
        policy.require(bool(roles & {Role.TENANT_ADMIN, Role.SCHOOL_MANAGER}), str(FORBIDDEN))
        request.principal = principal
        if not principal.step_up:
            return render(
                request,
                "dashboards/manage/transfer_step_up.html",
                {"verify_href": f"{reverse('verify')}?next={request.path}"},
            )
        return view(request, *args, **kwargs)

    return wrapped


def _schools(principal, municipality):
    """The schools this principal may transfer pupils of (out or in)."""
    schools = School.objects.order_by("code")
    if policy.may_administer_tenant(principal, municipality):
        return schools
    return schools.filter(
        code__in=[
            code
            for code in principal.school_codes_in(municipality)
            if policy.may_transfer_pupil(principal, municipality, code)
        ]
    )


class ExportForm(forms.Form):
    school = forms.ModelChoiceField(
        label=_l("学校"), queryset=School.objects.none(), empty_label=_l("（学校を選んでください）")
    )
    source_id = forms.CharField(
        label=_l("児童生徒の ID（校務システムでの ID）"),
        max_length=100,
        help_text=_l("校務システム（C4th、スズキ校務、OneRoster など）に登録されている ID です。"),
    )
    destination_code = forms.CharField(
        label=_l("転出先の自治体コード（6 桁）"),
        max_length=6,
        help_text=_l("全国地方公共団体コード。例: 新宿区 131041"),
    )
    destination_school_code = forms.CharField(
        label=_l("転出先の学校コード（わかれば）"), max_length=13, required=False
    )
    consent_given_by = forms.CharField(
        label=_l("同意した保護者（氏名・続柄）"), max_length=100, required=False
    )
    consent_given_on = forms.DateField(
        label=_l("同意日"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    consent_confirmed = forms.BooleanField(label=_l("保護者の同意書を確認しました"), required=False)

    def __init__(self, schools, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].queryset = schools

    def clean(self):
        cleaned = super().clean()
        school, source_id = cleaned.get("school"), (cleaned.get("source_id") or "").strip()
        if school is None or not source_id:
            return cleaned
        students = set(
            StudentIdentity.objects.filter(student__school=school, source_id=source_id)
            .values_list("student_id", flat=True)
            .distinct()
        )
        if len(students) != 1:
            self.add_error(
                "source_id",
                _("%(school)s にこの ID の児童生徒はいません。") % {"school": school.name}
                if not students
                else _("この ID の児童生徒が複数います。校務システムの ID を確かめてください。"),
            )
            return cleaned
        cleaned["student"] = Student.objects.select_related("school").get(pk=students.pop())
        return cleaned

    def consent(self) -> Consent | None:
        """The consent as entered, or None when it is not confirmed (the action refuses)."""
        data = self.cleaned_data
        if not data.get("consent_confirmed") or data.get("consent_given_on") is None:
            return None
        return Consent(given_by=data.get("consent_given_by", ""), given_on=data["consent_given_on"])


class ImportForm(forms.Form):
    package = forms.FileField(label=_l("転校パッケージ（送付元から受け取った zip）"))
    transfer_code = forms.CharField(
        label=_l("転校コード"),
        max_length=40,
        help_text=_l("転学の書類に記された 4 文字 × 5 組のコード"),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    school = forms.ModelChoiceField(
        label=_l("転入先の学校"),
        queryset=School.objects.none(),
        required=False,
        empty_label=_l("（パッケージに記された学校）"),
    )

    def __init__(self, schools, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].queryset = schools

    def clean_package(self):
        package = self.cleaned_data["package"]
        if package.size > MAX_PACKAGE_BYTES:
            raise forms.ValidationError(_("転校パッケージが大きすぎます（200 MB まで）。"))
        return package


@transfer_view
@require_http_methods(["GET", "POST"])
def transfers(request):
    """転出: make a package (the code is shown once, on the answer), and the packages made."""
    principal, municipality = request.principal, request.tenant
    schools = _schools(principal, municipality)
    form = ExportForm(schools, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            exported = do_export_transfer(
                principal,
                municipality,
                form.cleaned_data["student"],
                destination_code=form.cleaned_data["destination_code"],
                destination_school_code=form.cleaned_data["destination_school_code"],
                consent=form.consent(),
            )
        except (TransferError, policy.AccessDenied) as e:
            form.add_error(None, str(e))
        else:
            return render(
                request,
                "dashboards/manage/transfer_done.html",
                {"exported": exported, "transfer": exported.transfer},
            )
    made = TransferOut.objects.select_related("student__school").filter(student__school__in=schools)
    return render(
        request,
        "dashboards/manage/transfers.html",
        {"form": form, "transfers": made[:50]},
        status=400 if request.method == "POST" else 200,
    )


@transfer_view
def transfer_package(request, transfer_pk: int):
    """The package file again (encrypted: useless without the code shown once)."""
    transfer = get_object_or_404(
        TransferOut.objects.select_related("student__school"), pk=transfer_pk
    )
    if not policy.may_transfer_pupil(
        request.principal, request.tenant, transfer.student.school.code
    ):
        raise Http404
    stored = get_storage().open(request.tenant.code, transfer.package_path)
    return FileResponse(
        stored,
        as_attachment=True,
        filename=Path(transfer.package_path).name,
        content_type="application/zip",
    )


@transfer_view
@require_http_methods(["GET", "POST"])
def transfer_in(request):
    """転入: import a package from another municipality through the ``transfer`` connector."""
    principal, municipality = request.principal, request.tenant
    schools = _schools(principal, municipality)
    form = ImportForm(schools, request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        school = form.cleaned_data["school"]
        if school is None and not policy.may_administer_tenant(principal, municipality):
            form.add_error("school", _("転入先の学校を選んでください。"))
        else:
            run = _import(request, form, school)
            return render(
                request,
                "dashboards/manage/transfer_in_done.html",
                {"run": run, "is_admin": policy.may_administer_tenant(principal, municipality)},
                status=200 if run.status == run.Status.SUCCEEDED else 400,
            )
    return render(
        request,
        "dashboards/manage/transfer_in.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )


def _import(request, form, school):
    upload = form.cleaned_data["package"]
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="renkei-transfer-in-") as tmp:
        path = Path(tmp) / f"transfer-in-{stamp}.zip"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        return do_import(
            TransferConnector,
            request.tenant,
            actor=request.principal.actor(request.tenant),
            paths=[path],
            config={
                "transfer_code": form.cleaned_data["transfer_code"],
                "school_code": school.code if school else "",
            },
        )
