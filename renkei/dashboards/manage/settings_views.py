"""What a municipality runs itself in 管理: its settings (alert thresholds, retention, k) and
its members' second factors (a reset when a phone is lost). Tenant admins only, and only
after step-up: both change how the municipality's data is protected."""

from __future__ import annotations

import functools
from collections import Counter

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.accounts import policy
from renkei.accounts import second_factor as sf
from renkei.accounts.models import Membership
from renkei.dashboards.manage.views import PAGE_SIZE, admin_view
from renkei.edudata.metrics.k_preview import preview_k
from renkei.tenants.actions import do_change_municipality_settings
from renkei.tenants.models import Municipality


def step_up_view(view):
    """A tenant admin who has passed the second factor in this session; others are sent to
    the step-up page and come back here."""

    @admin_view
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.principal.step_up:
            return redirect(f"{reverse('verify')}?next={request.path}")
        return view(request, *args, **kwargs)

    return wrapped


# -- settings -------------------------------------------------------------------------------


def _days(label, maximum: int):
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=maximum,
        error_messages={
            "min_value": gettext_lazy("1 日以上を指定してください。"),
            "max_value": gettext_lazy("%(limit_value)s 日以下を指定してください。"),
            "invalid": gettext_lazy("日数を半角数字で入力してください。"),
            "required": gettext_lazy("日数を入力してください。"),
        },
    )


class TenantSettingsForm(forms.Form):
    alert_consecutive_absence_days = _days(gettext_lazy("連続欠席アラート（日）"), 60)
    alert_monthly_absence_days = _days(gettext_lazy("月間欠席アラート（日）"), 31)
    alert_yearly_absence_days = _days(gettext_lazy("年間欠席アラート（日）"), 366)
    retention_years = forms.IntegerField(
        label=gettext_lazy("離籍（卒業・転出・退学）後の保存年数"),
        min_value=1,
        max_value=100,
        help_text=gettext_lazy(
            "卒業などで学校を離れてから記録を保存する年数。過ぎた記録は定期削除で消えます。"
            "指導要録（様式2）に合わせ既定は 5 年。"
        ),
        error_messages={
            "min_value": gettext_lazy("保存年数は 1 年以上にしてください（0 年にはできません）。"),
            "max_value": gettext_lazy("保存年数は %(limit_value)s 年以下にしてください。"),
            "invalid": gettext_lazy("保存年数を半角数字で入力してください。"),
            "required": gettext_lazy("保存年数を入力してください。"),
        },
    )
    min_cell_size = forms.IntegerField(
        label=gettext_lazy("最小セルサイズ k"),
        max_value=1000,
        help_text=gettext_lazy(
            "公開する集計の各セルに必要な最少人数。引き上げのみ可能で、下げることはできません。"
        ),
        error_messages={
            "max_value": gettext_lazy("k は %(limit_value)s 以下にしてください。"),
            "invalid": gettext_lazy("k を半角数字で入力してください。"),
            "required": gettext_lazy("k を入力してください。"),
        },
    )

    def __init__(self, municipality: Municipality, *args, **kwargs):
        initial = {name: getattr(municipality, name) for name in self.base_fields}
        super().__init__(*args, initial=initial, **kwargs)
        self.municipality = municipality

    def clean_min_cell_size(self) -> int:
        k = self.cleaned_data["min_cell_size"]
        current = self.municipality.min_cell_size
        if k < current:
            raise ValidationError(
                _(
                    "k は引き上げのみ可能です。現在の k は %(current)s なので、%(current)s 以上を"
                    "指定してください（%(k)s には下げられません）。"
                )
                % {"current": current, "k": k}
            )
        return k

    def changes(self) -> dict[str, int]:
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if value != getattr(self.municipality, name)
        }


def _needs_confirmation(municipality: Municipality, changes: dict[str, int]) -> bool:
    """A raised k cannot be lowered again, and a shorter retention deletes data for good."""
    return "min_cell_size" in changes or (
        "retention_years" in changes and changes["retention_years"] < municipality.retention_years
    )


@step_up_view
def tenant_settings(request):
    municipality = Municipality.objects.get(pk=request.tenant.pk)  # fresh: another admin
    form = TenantSettingsForm(municipality, request.POST or None)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            messages.info(request, _("変更はありません。"))
            return redirect("manage:settings")
        if _needs_confirmation(municipality, changes) and "confirmed" not in request.POST:
            return render(
                request,
                "dashboards/manage/settings_confirm.html",
                _confirmation(municipality, form, changes),
            )
        try:
            do_change_municipality_settings(
                municipality, actor=request.principal.actor(municipality), **changes
            )
        except ValidationError as e:  # changed by another admin meanwhile (k lowered)
            form.add_error(None, " ".join(e.messages))
        else:
            messages.success(request, _("自治体の設定を変更しました。"))
            return redirect("manage:settings")
    return render(
        request,
        "dashboards/manage/settings.html",
        {"form": form, "municipality": municipality},
        status=400 if form.errors else 200,
    )


def _confirmation(municipality: Municipality, form: TenantSettingsForm, changes: dict) -> dict:
    rows = [
        (form[name].label, getattr(municipality, name), value) for name, value in changes.items()
    ]
    return {
        "rows": rows,
        "values": form.cleaned_data,
        "k": preview_k(municipality, changes["min_cell_size"])
        if "min_cell_size" in changes
        else None,
        "retention": (municipality.retention_years, changes["retention_years"])
        if "retention_years" in changes
        and changes["retention_years"] < municipality.retention_years
        else None,
        "prefecture": municipality.prefecture,
    }


# -- members' second factors ----------------------------------------------------------------


def _members(municipality):
    return get_user_model().objects.filter(memberships__municipality=municipality).distinct()


@step_up_view
def second_factors(request):
    members = _members(request.tenant).order_by("username")
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    users = list(page)
    enrolled = set(
        TOTPDevice.objects.filter(user__in=users, confirmed=True).values_list("user_id", flat=True)
    )
    codes = Counter(
        StaticToken.objects.filter(device__user__in=users, device__confirmed=True).values_list(
            "device__user_id", flat=True
        )
    )
    roles: dict[int, list[str]] = {}
    for m in Membership.objects.filter(municipality=request.tenant, user__in=users):
        roles.setdefault(m.user_id, []).append(m.get_role_display())
    rows = [
        {
            "user": u,
            "roles": roles.get(u.pk, []),
            "enrolled": u.pk in enrolled,
            "codes_left": codes.get(u.pk, 0),
            "may_reset": u.pk != request.user.pk
            and policy.may_reset_second_factor(request.principal, request.tenant, u),
        }
        for u in users
    ]
    return render(request, "dashboards/manage/second_factors.html", {"rows": rows, "page": page})


@step_up_view
@require_POST
def second_factor_reset(request, user_id: int):
    member = get_object_or_404(_members(request.tenant), pk=user_id)
    try:
        removed = sf.do_reset_second_factor(request.principal, request.tenant, member)
    except (sf.SecondFactorError, policy.AccessDenied) as e:
        messages.error(request, str(e))
    except get_user_model().DoesNotExist:
        raise Http404 from None
    else:
        if removed:
            messages.success(
                request,
                _(
                    "「%(user)s」の二要素認証を解除しました。本人がアカウントのページで"
                    "認証アプリを登録し直すまで、要配慮情報は表示されません。"
                )
                % {"user": member.get_username()},
            )
        else:
            messages.info(
                request,
                _("「%(user)s」には登録済みの認証アプリがありません。")
                % {"user": member.get_username()},
            )
    return redirect("manage:second_factors")
